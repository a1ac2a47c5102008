/**
 * Typing indicators on one instance (PROTOCOL.md, "Presence, activity status and typing"): per user, to the PoV's
 * other members' sockets only; repeats absorbed; stopped by the client, by the timeout, by unsubscribe and by
 * disconnect.
 */
import t from 'tap'
import type { Message, TestClient } from './helpers/client.js'
import { settle } from './helpers/presence.js'
import { startServer } from './helpers/server.js'
import { closed } from './helpers/socket-waits.js'
import { connectAs, subscribedAs } from './helpers/members.js'

/** The typing events `client` received for `povId`, as `[userId, typing]`. */
const typingSeen = (client: TestClient, povId = 'p1') => client.messages
  .filter((m) => m.type === 'typing' && m.povId === povId)
  .map((m) => [m.userId, m.typing])

const typingEvent = (userId: string, typing: boolean) => (m: Message) => m.type === 'typing' && m.userId === userId && m.typing === typing

t.test('typing reaches the other members\' sockets, never any of the typist\'s own tabs', async (t) => {
  const server = await startServer(t, { presence: true })
  const [tabA, tabB, u2, u3] = await subscribedAs(server, 'p1', 'u1', 'u1', 'u2', 'u3')
  tabA!.send({ type: 'typing', povId: 'p1', typing: true })
  for (const other of [u2!, u3!]) {
    t.same(await other.next('typing'), { type: 'typing', povId: 'p1', userId: 'u1', typing: true })
  }
  await settle(tabA!, tabB!, u2!, u3!)
  t.same(typingSeen(tabA!), [], 'the typing tab hears nothing')
  t.same(typingSeen(tabB!), [], 'the typist\'s other tab hears nothing')
})

t.test('repeats inside the timeout are absorbed; a client\'s typing: false goes out at once', async (t) => {
  const server = await startServer(t, { presence: { typingTimeout: 5000 } })
  const [typist, reader] = await subscribedAs(server, 'p1', 'u1', 'u2')
  for (let i = 0; i < 5; i++) typist!.send({ type: 'typing', povId: 'p1', typing: true })
  await reader!.next(typingEvent('u1', true))
  await settle(typist!, reader!)
  t.same(typingSeen(reader!), [['u1', true]], 'five typing: true, one event')
  const sent = Date.now()
  typist!.send({ type: 'typing', povId: 'p1', typing: false })
  await reader!.next(typingEvent('u1', false))
  t.ok(Date.now() - sent < 1000, 'typing: false passed on at once, not at the timeout')
  typist!.send({ type: 'typing', povId: 'p1', typing: false })
  await settle(reader!)
  t.same(typingSeen(reader!), [['u1', true], ['u1', false]], 'a false while not typing sends nothing')
})

t.test('typing stops by itself typingTimeout ms after the last typing: true', async (t) => {
  const timeout = 400
  const server = await startServer(t, { presence: { typingTimeout: timeout } })
  const [typist, reader] = await subscribedAs(server, 'p1', 'u1', 'u2')
  typist!.send({ type: 'typing', povId: 'p1', typing: true })
  await reader!.next(typingEvent('u1', true))
  const started = Date.now()
  await reader!.next(typingEvent('u1', false), 3000)
  const alone = Date.now() - started
  t.ok(alone >= timeout - 50 && alone < timeout + 500, `stopped after ${alone} ms`)

  typist!.send({ type: 'typing', povId: 'p1', typing: true })
  await reader!.next(typingEvent('u1', true))
  const restarted = Date.now()
  await new Promise((resolve) => setTimeout(resolve, timeout / 2))
  typist!.send({ type: 'typing', povId: 'p1', typing: true })
  await reader!.next(typingEvent('u1', false), 3000)
  const refreshed = Date.now() - restarted
  t.ok(refreshed >= timeout * 1.5 - 50, `the timeout counts from the last typing: true (stopped after ${refreshed} ms)`)
  t.same(typingSeen(reader!), [['u1', true], ['u1', false], ['u1', true], ['u1', false]])
})

t.test('disconnecting or unsubscribing while typing stops the typing at once', async (t) => {
  const server = await startServer(t, { presence: { typingTimeout: 60_000 } })
  const [typist, reader, other] = await subscribedAs(server, 'p1', 'u1', 'u2', 'u3')
  typist!.send({ type: 'typing', povId: 'p1', typing: true })
  await reader!.next(typingEvent('u1', true))
  typist!.terminate()
  t.same(await reader!.next(typingEvent('u1', false)), { type: 'typing', povId: 'p1', userId: 'u1', typing: false }, 'disconnect')

  other!.send({ type: 'typing', povId: 'p1', typing: true })
  await reader!.next(typingEvent('u3', true))
  await other!.request({ type: 'unsubscribe', povId: 'p1' }, 'unsubscribed')
  await reader!.next(typingEvent('u3', false))
  t.pass('unsubscribe')
})

t.test('another tab of the typist going away does not stop the typing; the typing tab going away does', async (t) => {
  const server = await startServer(t, { presence: { typingTimeout: 60_000 } })
  const [typingTab, quietTab, reader] = await subscribedAs(server, 'p1', 'u1', 'u1', 'u2')
  typingTab!.send({ type: 'typing', povId: 'p1', typing: true })
  await reader!.next(typingEvent('u1', true))
  quietTab!.close()
  await closed(quietTab!)
  await settle(reader!)
  t.same(typingSeen(reader!), [['u1', true]], 'still typing')
  typingTab!.close()
  await reader!.next(typingEvent('u1', false))
  t.same(typingSeen(reader!), [['u1', true], ['u1', false]], 'stopped when the typing tab left')
})

t.test('typing on a PoV the socket has not subscribed is INVALID_MESSAGE, and reaches no one', async (t) => {
  const server = await startServer(t, {
    presence: true,
    authorizeSubscription: (_user, povId) => povId !== 'secret'
  })
  const [reader] = await subscribedAs(server, 'p1', 'u2')
  await reader!.subscribe('p2')
  const outsider = await connectAs(server, 'u1')
  t.match(await outsider.request({ type: 'typing', povId: 'p1', typing: true }, 'error'),
    { type: 'error', code: 'INVALID_MESSAGE', povId: 'p1', message: /subscribe/ }, 'never subscribed')
  t.match(await outsider.subscribe('secret'), { type: 'error', code: 'FORBIDDEN' })
  t.match(await outsider.request({ type: 'typing', povId: 'secret', typing: true }, 'error'),
    { code: 'INVALID_MESSAGE', povId: 'secret' }, 'refused by authorizeSubscription')
  await outsider.subscribe('p2')
  await outsider.request({ type: 'unsubscribe', povId: 'p2' }, 'unsubscribed')
  t.match(await outsider.request({ type: 'typing', povId: 'p2', typing: true }, 'error'),
    { code: 'INVALID_MESSAGE', povId: 'p2' }, 'after unsubscribing')
  await settle(reader!)
  t.same([...typingSeen(reader!, 'p1'), ...typingSeen(reader!, 'p2')], [], 'the members heard nothing')
  t.equal(outsider.ws.readyState, outsider.ws.OPEN)
})

t.test('typing messages count toward the rate limit like any other', async (t) => {
  const server = await startServer(t, { presence: true, rateLimit: { max: 6, timeWindow: 60_000 } })
  const [typist, reader] = await subscribedAs(server, 'p1', 'u1', 'u2')
  // Subscribing took one message; five typing messages pass, the sixth and seventh are over the limit.
  for (let i = 0; i < 7; i++) typist!.send({ type: 'typing', povId: 'p1', typing: i % 2 === 0 })
  t.match(await typist!.next('error'), { code: 'RATE_LIMITED' })
  await settle(reader!)
  t.same(typingSeen(reader!), [['u1', true], ['u1', false], ['u1', true], ['u1', false], ['u1', true]],
    'only the messages inside the limit were passed on')
  t.equal(server.app.povRealtime.stats().rejected.RATE_LIMITED, 1)
})

t.test('a member who subscribes while someone types is told after its snapshot; the typist\'s own new tab is not', async (t) => {
  const server = await startServer(t, { presence: { typingTimeout: 60_000 } })
  const [typist] = await subscribedAs(server, 'p1', 'u1')
  typist!.send({ type: 'typing', povId: 'p1', typing: true })
  await settle(typist!)
  const [newcomer, typistTab] = await subscribedAs(server, 'p1', 'u2', 'u1')
  await newcomer!.next(typingEvent('u1', true))
  const types = newcomer!.messages.map((m) => m.type)
  t.same(types.slice(0, 3), ['subscribed', 'presence', 'typing'])
  await settle(typistTab!)
  t.same(typingSeen(typistTab!), [])
})
