/**
 * `usePresence`, `useTyping` and the idle status, rendered in jsdom inside `MockWebSocketProvider` and driven by the
 * test doubles' `simulate*` calls, on a hand-driven clock and a stand-in page. What the components show, and what they
 * put on the wire (`getSentMessages()`).
 */
import 'global-jsdom/register'
import { useState } from 'react'
import { act, cleanup, fireEvent, render, screen } from '@testing-library/react'
import t from 'tap'
import { usePovActivities, usePresence, useTyping } from '../../hooks/index.js'
import {
  MOCK_USER_ID, MockWebSocketProvider, getSentMessages, resetWebSocketMock, simulateConnectionStatus, simulateJoin,
  simulateLeave, simulatePresence, simulateStatus, simulateTyping
} from '../../hooks/testing/index.js'
import { manualClock, type ManualClock } from '../helpers/manual-clock.js'
import { FakePage } from '../helpers/page-doubles.js'

function WhoIsHere ({ povId }: { povId: string }) {
  const members = usePresence(povId)
  return <ul aria-label='members'>{members.map((m) => <li key={m.userId}>{m.userId}:{m.status}{m.info.name ? `:${String(m.info.name)}` : ''}</li>)}</ul>
}

function NoteBox ({ povId }: { povId: string }) {
  const { typingUserIds, setTyping } = useTyping(povId)
  const [text, setText] = useState('')
  return (
    <div>
      <input
        aria-label='note' value={text}
        onChange={(event) => { setText(event.target.value); setTyping(event.target.value !== '') }}
        onBlur={() => setTyping(false)}
      />
      <p role='status'>{typingUserIds.length > 0 ? `${typingUserIds.join(', ')} typing…` : ''}</p>
    </div>
  )
}

function Feed ({ povId }: { povId: string }) {
  const { activities } = usePovActivities(povId)
  return <p>{activities.length} activities</p>
}

const members = () => screen.getByRole('list', { name: 'members' }).textContent === ''
  ? []
  : [...screen.getByRole('list', { name: 'members' }).querySelectorAll('li')].map((li) => li.textContent)
const typingLine = () => screen.getByRole('status').textContent
const sent = (type: string) => getSentMessages().filter((message) => message.type === type) as Array<Record<string, unknown>>

let clock: ManualClock
let page: FakePage

function renderMock (ui: React.ReactNode, options = {}) {
  return render(<MockWebSocketProvider options={{ timers: clock, document: page, ...options }}>{ui}</MockWebSocketProvider>)
}

t.beforeEach(() => {
  resetWebSocketMock()
  clock = manualClock()
  page = new FakePage()
})
t.afterEach(() => cleanup())

t.test('usePresence lists the snapshot sorted, follows joins, leaves and status changes, and starts over on each snapshot', async (t) => {
  renderMock(<WhoIsHere povId='p1' />)
  t.same(members(), [], 'nobody before the snapshot')
  t.same(getSentMessages(), [{ type: 'subscribe', povId: 'p1' }], 'the hook watches the PoV')
  act(() => simulatePresence('p1', ['li', MOCK_USER_ID, { userId: 'ana', status: 'idle', info: { name: 'Ana' } }]))
  t.same(members(), ['ana:idle:Ana', 'li:active', `${MOCK_USER_ID}:active`], 'everyone, the user included, by userId')
  act(() => simulateJoin('p1', 'bo'))
  act(() => simulateLeave('p1', 'li'))
  act(() => simulateStatus('p1', 'ana', 'active', { name: 'Ana' }))
  t.same(members(), ['ana:active:Ana', 'bo:active', `${MOCK_USER_ID}:active`])
  act(() => simulatePresence('p2', ['zed']))
  t.same(members(), ['ana:active:Ana', 'bo:active', `${MOCK_USER_ID}:active`], 'another PoV changes nothing here')

  act(() => simulateConnectionStatus('disconnected'))
  act(() => simulateConnectionStatus('reconnected'))
  act(() => simulatePresence('p1', [MOCK_USER_ID, 'cy']))
  t.same(members(), ['cy:active', `${MOCK_USER_ID}:active`], 'the snapshot of the resubscription replaces the list')
})

t.test('nothing of presence goes to a server that has not shown presence is on: no status, no typing', async (t) => {
  renderMock(<><WhoIsHere povId='p1' /><NoteBox povId='p1' /></>, { idleTimeout: 1000 })
  act(() => clock.advance(5000))
  act(() => page.hide())
  fireEvent.change(screen.getByLabelText('note'), { target: { value: 'h' } })
  fireEvent.blur(screen.getByLabelText('note'))
  t.same(getSentMessages(), [{ type: 'subscribe', povId: 'p1' }], 'only the subscription (the server would answer NOT_ENABLED)')
})

t.test('the page reports idle after the timeout and active on input, changes only, and idle again first after a reconnect', async (t) => {
  const view = renderMock(<WhoIsHere povId='p1' />)
  act(() => simulatePresence('p1', [MOCK_USER_ID]))
  act(() => clock.advance(59_999))
  t.same(sent('status'), [], 'active for the first 60 s (the default idleTimeout)')
  act(() => clock.advance(1))
  t.same(sent('status'), [{ type: 'status', status: 'idle' }], 'idle after 60 s without input')
  act(() => { for (let i = 0; i < 50; i++) page.input('pointermove') })
  t.same(sent('status').map((m) => m.status), ['idle', 'active'], 'one active for fifty pointer moves')
  act(() => page.input('keydown'))
  act(() => page.hide())
  t.same(sent('status').map((m) => m.status), ['idle', 'active', 'idle'], 'hidden: idle at once')

  act(() => simulateConnectionStatus('disconnected'))
  act(() => page.show())
  act(() => page.hide())
  const before = getSentMessages().length
  act(() => simulateConnectionStatus('reconnected'))
  t.same(getSentMessages().slice(before), [{ type: 'status', status: 'idle' }, { type: 'subscribe', povId: 'p1' }],
    'the new connection hears idle first (it starts active), then the subscription: members see no flicker')

  view.unmount()
  t.same(sent('status').at(-1), { type: 'status', status: 'active' }, 'the last presence hook gone, the server is set back to active')
  act(() => clock.advance(120_000))
  t.equal(page.listenerCount, 0, 'and the page is no longer watched')
})

t.test('idleTimeout: false never reports a status', async (t) => {
  renderMock(<WhoIsHere povId='p1' />, { idleTimeout: false })
  act(() => simulatePresence('p1', [MOCK_USER_ID]))
  act(() => page.hide())
  act(() => clock.advance(600_000))
  t.same(sent('status'), [])
  t.equal(page.listenerCount, 0, 'the page is not even watched')
})

t.test('an app that uses no presence hook never reports a status, even when the server has presence on', async (t) => {
  renderMock(<Feed povId='p1' />, { idleTimeout: 1000 })
  act(() => simulatePresence('p1', [MOCK_USER_ID]))
  act(() => page.hide())
  act(() => clock.advance(5000))
  t.same(sent('status'), [])
})

t.test("jsdom's own document works as the page: hidden is idle, a key press is active", async (t) => {
  let visibility = 'visible'
  Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => visibility })
  t.teardown(() => { delete (document as { visibilityState?: unknown }).visibilityState })
  render(<MockWebSocketProvider options={{ timers: clock }}><WhoIsHere povId='p1' /></MockWebSocketProvider>)
  act(() => simulatePresence('p1', [MOCK_USER_ID]))
  visibility = 'hidden'
  act(() => { document.dispatchEvent(new window.Event('visibilitychange')) })
  visibility = 'visible'
  act(() => { document.dispatchEvent(new window.Event('visibilitychange')) })
  act(() => clock.advance(60_000))
  fireEvent.keyDown(document.body, { key: 'a' })
  t.same(sent('status').map((m) => m.status), ['idle', 'active', 'idle', 'active'])
})

t.test('typing on every keystroke: typing true once per 3 s, false once after a 3 s pause', async (t) => {
  renderMock(<NoteBox povId='p1' />)
  act(() => simulatePresence('p1', [MOCK_USER_ID, 'li']))
  const input = screen.getByLabelText('note')
  let text = ''
  for (let i = 0; i < 70; i++) {
    text += 'x'
    fireEvent.change(input, { target: { value: text } })
    act(() => clock.advance(100))
  }
  t.same(sent('typing'), [true, true, true].map((typing) => ({ type: 'typing', povId: 'p1', typing })),
    '70 keystrokes over 7 s: typing true at 0, 3 and 6 s (below the server\'s 5 s typingTimeout)')
  act(() => clock.advance(3000))
  t.same(sent('typing').at(-1), { type: 'typing', povId: 'p1', typing: false }, 'false after the pause')
  t.equal(sent('typing').length, 4, 'once')
})

t.test('typing stops with one false on blur, and on unmount', async (t) => {
  const view = renderMock(<NoteBox povId='p1' />)
  act(() => simulatePresence('p1', [MOCK_USER_ID]))
  const input = screen.getByLabelText('note')
  fireEvent.change(input, { target: { value: 'a' } })
  fireEvent.blur(input)
  fireEvent.blur(input)
  t.same(sent('typing').map((m) => m.typing), [true, false], 'blur: false, once')
  fireEvent.change(input, { target: { value: 'ab' } })
  view.unmount()
  t.same(sent('typing').map((m) => m.typing), [true, false, true, false], 'unmount: false')
  act(() => clock.advance(10_000))
  t.equal(sent('typing').length, 4, 'nothing after')
})

t.test('typing is not queued while disconnected, and the next keystroke after the new snapshot sends it again', async (t) => {
  renderMock(<NoteBox povId='p1' />)
  act(() => simulatePresence('p1', [MOCK_USER_ID]))
  const input = screen.getByLabelText('note')
  fireEvent.change(input, { target: { value: 'a' } })
  act(() => simulateConnectionStatus('disconnected'))
  fireEvent.change(input, { target: { value: 'ab' } })
  act(() => clock.advance(5000))
  act(() => simulateConnectionStatus('reconnected'))
  t.same(sent('typing').map((m) => m.typing), [true], 'nothing while offline, nothing replayed on reconnect')
  fireEvent.change(input, { target: { value: 'abc' } })
  t.same(sent('typing').map((m) => m.typing), [true], 'not before the PoV is subscribed again with presence')
  act(() => simulatePresence('p1', [MOCK_USER_ID]))
  fireEvent.change(input, { target: { value: 'abcd' } })
  t.same(sent('typing').map((m) => m.typing), [true, true], 'then at once')
})

t.test("others' typing: sorted, never the user, gone on false, on leaving, on a reconnect, and after the local expiry", async (t) => {
  renderMock(<NoteBox povId='p1' />, { typingExpiry: 30_000 })
  act(() => simulatePresence('p1', [MOCK_USER_ID, 'li', 'ana']))
  act(() => {
    simulateTyping('p1', 'li')
    simulateTyping('p1', 'ana')
    simulateTyping('p1', MOCK_USER_ID)
    simulateTyping('p2', 'zed')
  })
  t.equal(typingLine(), 'ana, li typing…', 'the user\'s own typing (another tab) is not shown, nor another PoV\'s')
  act(() => simulateTyping('p1', 'ana', false))
  t.equal(typingLine(), 'li typing…')
  act(() => simulateLeave('p1', 'li'))
  t.equal(typingLine(), '', 'a member who leaves stops typing')

  act(() => simulateTyping('p1', 'ana'))
  act(() => simulateConnectionStatus('disconnected'))
  t.equal(typingLine(), '', 'the connection dropped: nobody is known to type')
  act(() => simulateConnectionStatus('reconnected'))
  act(() => simulatePresence('p1', [MOCK_USER_ID, 'ana']))
  act(() => simulateTyping('p1', 'ana'))
  act(() => clock.advance(29_999))
  t.equal(typingLine(), 'ana typing…')
  act(() => clock.advance(1))
  t.equal(typingLine(), '', 'her false was lost: the indicator lapses after typingExpiry')
})
