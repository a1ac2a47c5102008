import { useState, type FormEvent } from 'react'
import { usePovActivities, useTyping, type Activity } from 'fastify-pov-realtime/hooks'
import { postActivity } from './api.js'
import { TypingIndicator } from './TypingIndicator.js'

/** An id made in the page, so the optimistic copy and the server's share it (works on plain-http pages too). */
function newActivityId (): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16))
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, '0')).join('')
}

/**
 * Posts a note to the PoV. It shows at once (optimistic, marked pending), the server's copy replaces it when the
 * broadcast arrives, and it is dropped if the post fails. While the user types, the others see "… is typing" (and
 * this form shows who else is); the user's own post is marked read (`onPosted` gets its cursor).
 */
export function PostActivityForm ({ povId, userId, onPosted }: {
  povId: string
  userId: string
  onPosted: (activity: Activity, cursor: string) => void
}) {
  // A second watcher of the PoV (the feed is the first): still one subscription.
  const { addOptimistic, removeOptimistic } = usePovActivities(povId)
  // Called on every keystroke: the hook sends `typing: true` at most every 3 s, and `false` after a pause.
  const { typingUserIds, setTyping } = useTyping(povId)
  const [title, setTitle] = useState('')
  const [message, setMessage] = useState('')
  const [error, setError] = useState<string>()

  async function submit (event: FormEvent) {
    event.preventDefault()
    setTyping(false)
    const id = newActivityId()
    addOptimistic({ id, type: 'note', action: 'created', povId, userId, title, message })
    setTitle('')
    setMessage('')
    setError(undefined)
    try {
      const posted = await postActivity(povId, { id, title, message })
      onPosted(posted.activity, posted.cursor)
    } catch (err) {
      removeOptimistic(id)
      setError(`Not posted: ${(err as Error).message}`)
    }
  }

  return (
    <section>
      <form onSubmit={submit} data-testid='post-form'>
        <input
          data-testid='post-title-input' aria-label='Title' placeholder='Title' required maxLength={120}
          value={title} onChange={(event) => { setTitle(event.target.value); setTyping(event.target.value !== '') }}
        />
        <input
          data-testid='post-message-input' aria-label='Message' placeholder='Message' maxLength={2000}
          value={message} onChange={(event) => { setMessage(event.target.value); setTyping(event.target.value !== '') }}
        />
        <button data-testid='post-submit' type='submit'>Post</button>
      </form>
      <TypingIndicator userIds={typingUserIds} />
      {error && <p className='notice' data-testid='post-error'>{error}</p>}
    </section>
  )
}
