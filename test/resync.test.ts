/**
 * A gap in a live feed that the broker cannot fill is told in-band: each subscriber of the PoV gets `resync` on its
 * open socket and stays subscribed; no socket is closed for it (closing them all would be a reconnect storm). The
 * in-process broker here stands in for a broker of several instances: the test reports the lost gap through its
 * sink, as the Redis broker does when Redis lost entries (the Redis fault tests show that end: test/redis/).
 */
import t from 'tap'
import WebSocket from 'ws'
import type { BrokerSink, BrokerStartContext } from '../index.js'
import { RealtimeClient, type ActivityEvent } from '../hooks/index.js'
import { InProcessBroker } from '../lib/in-process/index.js'
import { clientSetup, sentOfType } from './helpers/hook-fixtures.js'
import { activity, sleep, startServer, waitFor } from './helpers/server.js'
import { startTcpProxy } from './helpers/tcp-proxy.js'

/** The in-process broker, with a way for the test to report a lost gap as a broker for several instances would. */
class InterruptibleBroker extends InProcessBroker {
  sink: BrokerSink | undefined

  override start (context: BrokerStartContext): void {
    this.sink = context.sink
    super.start(context)
  }
}

t.test('an interrupted feed: each of its subscribers gets resync in-band, stays subscribed, and gets what follows', async (t) => {
  const broker = new InterruptibleBroker()
  const server = await startServer(t, { broker })
  const first = await server.connect({ claims: { userId: 'u1' } })
  const second = await server.connect({ claims: { userId: 'u2' } })
  const elsewhere = await server.connect({ claims: { userId: 'u3' } })
  await first.subscribe('p1')
  await second.subscribe('p1')
  await elsewhere.subscribe('p2')
  const { cursor } = await server.app.broadcastActivity(activity('p1', { id: 'a1' }))

  broker.sink!.interrupted('p1', cursor)
  broker.sink!.interrupted('p1', null)
  for (const client of [first, second]) {
    await waitFor(() => client.messages.filter((m) => m.type === 'resync').length === 2, 5000, 'the resyncs')
    t.same(client.messages.filter((m) => m.type === 'resync'), [
      { type: 'resync', povId: 'p1', cursor },
      { type: 'resync', povId: 'p1', cursor: null }
    ], 'resync names the PoV and where live delivery goes on (null: nothing left to name)')
    t.equal(client.ws.readyState, WebSocket.OPEN, 'the socket stays open')
  }
  await server.app.broadcastActivity(activity('p1', { id: 'a2' }))
  await server.app.broadcastActivity(activity('p2', { id: 'b1' }))
  await waitFor(() => first.activities('p1').length === 2 && second.activities('p1').length === 2, 5000, 'a2')
  t.same(first.activities('p1').map((a) => a.id), ['a1', 'a2'], 'the subscription stays: live activities follow')
  await waitFor(() => elsewhere.activities('p2').length === 1, 5000, 'b1')
  t.notOk(elsewhere.messages.some((m) => m.type === 'resync'), 'a subscriber of another PoV is told nothing')

  const stats = server.app.povRealtime.stats()
  t.match(stats, { feedInterruptions: 2, resyncs: 4, closed: {} }, 'counted: two interruptions, four resyncs, no close')
  t.same(stats.closed, {}, 'no socket was closed')
  const logged = server.logs.map((line) => JSON.parse(line) as Record<string, unknown>)
    .filter((line) => line.level === 40 && line.povId === 'p1' && /lost in transit/.test(String(line.msg)))
  t.match(logged, [{ povId: 'p1', subscribers: 2 }, { povId: 'p1', subscribers: 2 }], 'a warn line names the PoV and how many were told')
})

t.test('the client core: resync is the same event as recovered: false, on the same socket, and the next resume starts at its cursor', async (t) => {
  const broker = new InterruptibleBroker()
  const server = await startServer(t, { broker })
  const proxy = await startTcpProxy(t, server.port)
  const setup = clientSetup(proxy.httpUrl, { batchWindow: 0, reconnect: { initialDelay: 100, maxDelay: 1000 } })
  const client = new RealtimeClient(setup.clientOptions)
  const release = client.retain()
  t.teardown(() => {
    release()
    client.close()
  })
  const events: ActivityEvent[] = []
  client.onActivity('p1', (event) => events.push(event))
  client.onActivity('p2', (event) => events.push(event))
  // A cursor of p1 that the client never sees (published before it subscribes).
  const { cursor: unseenCursor } = await server.app.broadcastActivity(activity('p1', { id: 'a0' }))
  client.watch('p1')
  await waitFor(() => server.app.povRealtime.stats().subscriptions === 1, 5000, 'subscribed')
  await server.app.broadcastActivity(activity('p1', { id: 'a1' }))
  await waitFor(() => events.length === 1, 5000, 'a1')

  // The broker lost entries; delivery goes on after a cursor other than the last the client saw.
  broker.sink!.interrupted('p1', unseenCursor)
  broker.sink!.interrupted('p2', null) // a PoV the client does not watch: nothing for it
  await waitFor(() => events.length === 2, 5000, 'the resync event')
  await sleep(100)
  t.same(events.map((e) => e.type === 'activity' ? `activity ${e.activity.id}` : `${e.type} ${e.povId}`),
    ['activity a1', 'resync p1'], 'one resync event, for the watched PoV only')
  t.equal(client.getConnection().status, 'connected', 'still connected: no reconnect')
  t.equal(setup.sockets.sockets.length, 1, 'one socket')
  t.equal(setup.fetches.calls.length, 1, 'one token request')

  proxy.cut()
  await waitFor(() => client.getConnection().status === 'disconnected', 5000, 'the drop')
  proxy.restore()
  await waitFor(() => client.getConnection().status === 'reconnected', 10_000, 'reconnected')
  await waitFor(() => sentOfType(setup.sockets, 'subscribe', 'p1').length === 2, 5000, 'the resubscription')
  t.same(sentOfType(setup.sockets, 'subscribe', 'p1').at(-1), { type: 'subscribe', povId: 'p1', since: unseenCursor },
    'the resume starts where the resync said live delivery goes on')
})
