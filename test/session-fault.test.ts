/**
 * An unexpected fault while one socket's message is handled (PROTOCOL.md, "Close codes": 1011 internal error) ends
 * that socket only: it is closed with 1011, the fault is logged at error (without the socket's token), counted in
 * `stats().closed`, and every other socket, the same user's other tab included, goes on as before.
 *
 * The path: the session's `#drain` catches what its handlers throw. The app's own callbacks are guarded where they are
 * called (`authorizeSubscription` refuses, `presence.info` falls back to `{}`, a failing read-mark store or history
 * costs an answer), so the one realistic unguarded call is the broker's `watch`, which a `subscribe` awaits: the
 * `broker` option takes any object implementing `Broker`, and a custom one whose backend refuses the subscription
 * rejects there. (The plugin's own brokers never reject `watch`: that is what makes it unexpected.)
 */
import t from 'tap'
import { InProcessBroker } from '../lib/in-process/index.js'
import { activity, startServer, waitFor } from './helpers/server.js'
import { closed } from './helpers/socket-waits.js'

/** A custom broker whose `watch` of one PoV rejects, as a backend that refuses the subscription would make it. */
function brokerFailingToWatch (povId: string): InProcessBroker {
  const broker = new InProcessBroker()
  const watch = broker.watch.bind(broker)
  return Object.assign(broker, {
    watch: (watched: string) => watched === povId ? Promise.reject(new Error('backend refused the subscription')) : watch()
  })
}

t.test('a fault while handling one socket\'s message closes that socket with 1011, logged at error and counted', async (t) => {
  const server = await startServer(t, { broker: brokerFailingToWatch('broken') })
  const token = await server.wsToken({ userId: 'u1' })
  const faulty = await server.connect({ token })
  const sameUser = await server.connect({ claims: { userId: 'u1' } })
  const colleague = await server.connect({ claims: { userId: 'u2' } })
  for (const client of [faulty, sameUser, colleague]) t.same(await client.subscribe('p1'), { type: 'subscribed', povId: 'p1' })

  faulty.send({ type: 'subscribe', povId: 'broken' })
  t.match(await closed(faulty), { code: 1011, reason: 'internal error' }, 'the socket is closed with 1011')
  t.notOk(faulty.messages.some((m) => m.povId === 'broken'), 'it was told nothing of the PoV it could not get')

  const errors = server.logs.filter((line) => (JSON.parse(line) as { level: number }).level >= 50)
  t.equal(errors.length, 1, 'one error-level line')
  t.match(JSON.parse(errors[0]!), { level: 50, msg: /unexpected fault/, err: { message: 'backend refused the subscription' } },
    'it says what failed')
  const [, payload = '', signature = ''] = token.split('.')
  t.notOk(server.logs.some((line) => line.includes(payload) || line.includes(signature)), 'no log line holds the token')

  // The client sees the close frame before the server sees the socket's end.
  await waitFor(() => server.app.povRealtime.stats().connections === 2, 5000, 'the server to forget the closed socket')
  t.same(server.app.povRealtime.stats().closed, { 1011: 1 }, 'the close is counted once')

  const sent = await server.app.broadcastActivity(activity('p1', { id: 'after-fault' }))
  t.equal(sent.delivered, 2, 'the activity reaches the two other sockets')
  for (const client of [sameUser, colleague]) {
    t.match(await client.next('activity', 5000), { cursor: sent.cursor, data: { id: 'after-fault' } })
    t.same(await client.request({ type: 'ping' }, 'pong', 5000), { type: 'pong' })
  }
  t.same(await colleague.subscribe('p2'), { type: 'subscribed', povId: 'p2' }, 'the other sockets still subscribe')
})
