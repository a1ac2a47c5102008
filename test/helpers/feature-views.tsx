/**
 * Small components that show what the presence and read-receipt hooks give, as an app would, and the queries that read
 * them back: shared by the tests of the hooks against a real server.
 */
import { useState } from 'react'
import type { within } from '@testing-library/react'
import { usePovActivities, usePresence, useReadReceipts, useTyping, useWebSocket } from '../../hooks/index.js'

/** Who is on the PoV, one `userId:status:name` per member. */
export function WhoIsHere ({ povId }: { povId: string }) {
  const members = usePresence(povId)
  return (
    <ul aria-label='members'>
      {members.map((m) => <li key={m.userId}>{m.userId}:{m.status}:{String(m.info.name ?? '')}</li>)}
    </ul>
  )
}

/** A note box that says the user is typing on every keystroke, and who else is typing under it. */
export function NoteBox ({ povId }: { povId: string }) {
  const { typingUserIds, setTyping } = useTyping(povId)
  const [text, setText] = useState('')
  return (
    <div>
      <input aria-label='note' value={text} onChange={(event) => { setText(event.target.value); setTyping(event.target.value !== '') }} />
      <p aria-label='typing'>{typingUserIds.length > 0 ? `${typingUserIds.join(', ')} typing…` : ''}</p>
    </div>
  )
}

/** A PoV's feed with its read receipts: each activity with who has seen it, the count, the user's mark, everyone's. */
export function Receipts ({ povId }: { povId: string }) {
  const { connectionStatus } = useWebSocket()
  const { activities } = usePovActivities(povId)
  const { reads, readCursor, unread, markRead, readersOf } = useReadReceipts(povId)
  return (
    <section>
      <p aria-label='connection'>{connectionStatus}</p>
      <ul aria-label='feed'>
        {activities.map((a) => <li key={a.id}>{a.id}{readersOf(a.id).length > 0 ? ` seen by ${readersOf(a.id).join(', ')}` : ''}</li>)}
      </ul>
      <p aria-label='unread'>{unread === null ? 'unknown' : String(unread)}</p>
      <p aria-label='mark'>{readCursor ?? 'none'}</p>
      <p aria-label='reads'>{reads.map((mark) => `${mark.userId}@${mark.cursor}`).join(' ')}</p>
      <button onClick={() => markRead()}>Mark all read</button>
    </section>
  )
}

/** What `Tab.show` returns: queries within one tab. */
export type View = ReturnType<typeof within>

const items = (view: View, name: string) => [...view.getByLabelText(name).querySelectorAll('li')].map((li) => li.textContent)

/** The members `WhoIsHere` shows. */
export const members = (view: View) => items(view, 'members')
/** The feed `Receipts` shows. */
export const feed = (view: View) => items(view, 'feed')
/** The text of the element labelled `name` (`typing`, `connection`, `unread`, `mark`, `reads`). */
export const label = (view: View, name: string) => view.getByLabelText(name).textContent
