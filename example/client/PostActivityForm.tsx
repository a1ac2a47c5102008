import { useEffect, useState, type FormEvent } from 'react'
import { usePovActivities, useTyping, type Activity } from 'fastify-pov-realtime/hooks'
import type { Severity } from 'fastify-pov-realtime'
import { postActivity } from './api.js'
import { useConnectionPhase } from './connection-phase.js'
import { describePostFailure } from './post-failure.js'
import { TypingIndicator } from './TypingIndicator.js'

/** The activity schema's severities (`types/schemas.ts`), as the picker offers them: the usual one first. */
const SEVERITY_CHOICES: ReadonlyArray<{ value: Severity, label: string }> = [
  { value: 'info', label: 'Info' },
  { value: 'success', label: 'Success' },
  { value: 'warning', label: 'Warning' },
  { value: 'error', label: 'Error' }
]

/** An id made in the page, so the optimistic copy and the server's share it (works on plain-http pages too). */
function newActivityId (): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16))
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, '0')).join('')
}

/**
 * Posts a note to the PoV. It shows at once (optimistic, marked pending), the server's copy replaces it when the
 * broadcast arrives; if the post fails it is dropped, the typed text comes back into the boxes and the form says why.
 * While the socket is down, Post is disabled (the boxes stay usable) and a line says posting waits for the
 * connection; the failure's words go once the connection is back. While the user types, the others see "… is typing"
 * (and this form shows who else is); the user's own post is marked read (`onPosted` gets its cursor).
 */
export function PostActivityForm ({ povId, userId, onPosted }: {
  povId: string
  userId: string
  onPosted: (activity: Activity, cursor: string) => void
}) {
  // A second watcher of the PoV (the feed is the first): still one subscription.
  const { addOptimistic, removeOptimistic } = usePovActivities(povId)
  const phase = useConnectionPhase()
  const isConnected = phase === 'online'
  // Called on every keystroke: the hook sends `typing: true` at most every 3 s, and `false` after a pause.
  const { typingUserIds, setTyping } = useTyping(povId)
  const [title, setTitle] = useState('')
  const [message, setMessage] = useState('')
  const [severity, setSeverity] = useState<Severity>('info')
  const [error, setError] = useState<string>()

  // Back online: what went wrong before is no longer the news (the text it kept is still in the boxes).
  useEffect(() => {
    if (isConnected) setError(undefined)
  }, [isConnected])

  async function submit (event: FormEvent) {
    event.preventDefault()
    setTyping(false)
    const id = newActivityId()
    addOptimistic({ id, type: 'note', action: 'created', povId, userId, title, message, severity })
    setTitle('')
    setMessage('')
    setError(undefined)
    try {
      const posted = await postActivity(povId, { id, title, message, severity })
      onPosted(posted.activity, posted.cursor)
    } catch (err) {
      removeOptimistic(id)
      // Put the text back, unless the user has started typing something else meanwhile.
      setTitle((typed) => typed === '' ? title : typed)
      setMessage((typed) => typed === '' ? message : typed)
      setError(describePostFailure(err))
    }
  }

  return (
    <section>
      <form onSubmit={submit} data-testid='post-form' className='post-form'>
        <input
          data-testid='post-title-input' aria-label='Title' placeholder='Title' required maxLength={120}
          value={title} onChange={(event) => { setTitle(event.target.value); setTyping(event.target.value !== '') }}
        />
        <input
          data-testid='post-message-input' aria-label='Message' placeholder='Message' maxLength={2000}
          value={message} onChange={(event) => { setMessage(event.target.value); setTyping(event.target.value !== '') }}
        />
        <select
          data-testid='post-severity' aria-label='Severity' value={severity}
          onChange={(event) => setSeverity(event.target.value as Severity)}
        >
          {SEVERITY_CHOICES.map((choice) => <option key={choice.value} value={choice.value}>{choice.label}</option>)}
        </select>
        <button data-testid='post-submit' type='submit' disabled={!isConnected}>Post</button>
      </form>
      {!isConnected && (
        <p className='offline' data-testid='post-offline'>
          {phase === 'retrying'
            ? 'Disconnected: reconnecting… Posting resumes once the connection is back; what you type is kept.'
            : phase === 'ended'
              ? 'Posting is off: the server ended this session.'
              : 'Connecting…'}
        </p>
      )}
      <TypingIndicator userIds={typingUserIds} />
      {error && <p className='notice' data-testid='post-error' role='alert'>{error}</p>}
    </section>
  )
}
