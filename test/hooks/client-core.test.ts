/**
 * The framework-free client core against a real server of the plugin on loopback (no React, no DOM).
 * Sockets are the `ws` package's WebSocket; the token route is called through Node's fetch with the access cookie.
 */
import t from 'tap'
import {
  HttpTokenProvider,
  RealtimeClient,
  type ActivityEvent,
  type ConnectionState,
  type RealtimeClientOptions,
  type ServerMessage,
  type TokenProvider
} from '../../hooks/index.js'
import { defaultTimers } from '../../hooks/client/connection/timers.js'
import { accessToken, activity, sleep, startServer, waitFor, type Teardown, type TestServer } from '../helpers/server.js'
import { startTcpProxy } from '../helpers/tcp-proxy.js'
import { clientSetup, cookieFetch, sentOfType } from '../helpers/hook-fixtures.js'

/** A client on `httpUrl` with everything it does recorded; released at teardown. */
function connectClient (t: Teardown, httpUrl: string, options: RealtimeClientOptions = {}, signedIn = true) {
  const setup = clientSetup(httpUrl, { batchWindow: 0, reconnect: { initialDelay: 100, maxDelay: 1000 }, ...options })
  if (!signedIn) setup.fetches.cookie = undefined
  const client = new RealtimeClient(setup.clientOptions)
  const messages: ServerMessage[] = []
  const states: ConnectionState[] = []
  client.onMessage((message) => messages.push(message))
  client.subscribeConnection(() => states.push(client.getConnection().state))
  const release = client.retain()
  t.teardown(() => {
    release()
    client.close()
  })
  const subscribedCount = (povId: string) => messages.filter((m) => m.type === 'subscribed' && m.povId === povId).length
  return { client, messages, states, release, subscribedCount, ...setup }
}

const ids = (client: RealtimeClient, povId: string) => client.getActivities(povId).activities.map((a) => a.id)
const status = (client: RealtimeClient) => client.getConnection().status

async function publish (server: TestServer, povId: string, id: string) {
  return server.app.broadcastActivity(activity(povId, { id }))
}

t.test('the client fetches a token with cookies, connects with the subprotocol, and receives the activities of the PoVs it watches', async (t) => {
  const server = await startServer(t)
  const { client, fetches, sockets, subscribedCount, messages } = connectClient(t, server.httpUrl)
  t.equal(status(client), 'disconnected', 'disconnected until the first open')
  client.watch('p1')
  await waitFor(() => subscribedCount('p1') === 1, 5000, 'subscribed')
  t.equal(status(client), 'connected', 'then connected')
  t.equal(fetches.calls.length, 1, 'one token request')
  t.equal(fetches.calls[0]!.init?.credentials, 'include', 'the token request carries the cookies')
  const protocols = sockets.protocols[0] as string[]
  t.equal(protocols[0], 'pov-realtime.v1')
  t.match(protocols[1], /^bearer\.[\w-]+\.[\w-]+\.[\w-]+$/, 'the token travels as a subprotocol')
  t.equal(sockets.sockets[0]!.protocol, 'pov-realtime.v1', 'the server selected the protocol, not the token')

  await publish(server, 'p2', 'elsewhere')
  await publish(server, 'p1', 'a1')
  await waitFor(() => ids(client, 'p1').length === 1, 5000, 'activity')
  t.same(ids(client, 'p1'), ['a1'])
  t.notOk(messages.some((m) => m.type === 'activity' && m.data.id === 'elsewhere'), 'nothing of a PoV it does not watch')
})

t.test('two watchers of a PoV make one subscription, and the last to leave unsubscribes', async (t) => {
  const server = await startServer(t)
  const { client, sockets, messages } = connectClient(t, server.httpUrl)
  const first = client.watch('p1')
  const second = client.watch('p1')
  await waitFor(() => messages.some((m) => m.type === 'subscribed'), 5000, 'subscribed')
  first()
  await sleep(50)
  t.equal(sentOfType(sockets, 'subscribe', 'p1').length, 1, 'one subscribe for two watchers')
  t.equal(sentOfType(sockets, 'unsubscribe').length, 0, 'still watched by the second')
  await publish(server, 'p1', 'a1')
  await waitFor(() => ids(client, 'p1').length === 1, 5000, 'activity')
  second()
  await waitFor(() => messages.some((m) => m.type === 'unsubscribed' && m.povId === 'p1'), 5000, 'unsubscribed')
  t.equal(sentOfType(sockets, 'unsubscribe', 'p1').length, 1)
  await waitFor(() => server.app.povRealtime.stats().subscriptions === 0, 5000, 'server-side subscription gone')
  t.same(client.getActivities('p1').activities, [], 'its activities are let go')
})

t.test('a dropped connection comes back as reconnected, resubscribes with since, and what was published meanwhile arrives once', async (t) => {
  const server = await startServer(t)
  const proxy = await startTcpProxy(t, server.port)
  const { client, sockets, messages, states } = connectClient(t, proxy.httpUrl)
  client.watch('p1')
  await waitFor(() => messages.some((m) => m.type === 'subscribed'), 5000, 'subscribed')
  const { cursor } = await publish(server, 'p1', 'a1')
  await waitFor(() => ids(client, 'p1').length === 1, 5000, 'a1')

  proxy.cut()
  await waitFor(() => client.getConnection().state === 'waiting', 5000, 'the client notices the drop')
  t.equal(status(client), 'disconnected')
  await publish(server, 'p1', 'a2')
  await publish(server, 'p1', 'a3')
  proxy.restore()
  await waitFor(() => status(client) === 'reconnected', 10_000, 'reconnected')
  await waitFor(() => ids(client, 'p1').length === 3, 5000, 'the missed activities')
  t.pass('reconnected')

  t.same(sentOfType(sockets, 'subscribe', 'p1').at(-1), { type: 'subscribe', povId: 'p1', since: cursor }, 'resubscribed after the last cursor seen')
  t.same(ids(client, 'p1'), ['a1', 'a2', 'a3'], 'each activity once, in order')
  const delivered = messages.filter((m) => m.type === 'activity').map((m) => m.type === 'activity' && m.data.id)
  t.same(delivered, ['a1', 'a2', 'a3'], 'the server replayed only what was missed')
  t.ok(messages.some((m) => m.type === 'subscribed' && m.recovered === true), 'the resume was exact')
  t.ok(sockets.maxOpen <= 1, 'never two sockets open at once')
  t.ok(states.includes('waiting'), 'it went through waiting')
})

t.test('a token with life left is reused for the reconnection', async (t) => {
  const server = await startServer(t, { tokenExpiresIn: '1h' })
  const proxy = await startTcpProxy(t, server.port)
  const { client, fetches, sockets } = connectClient(t, proxy.httpUrl, { reconnect: { initialDelay: 300, jitter: 0 } })
  await waitFor(() => status(client) === 'connected', 5000, 'connected')
  proxy.cut()
  proxy.restore() // the cut connection is gone; the next attempt gets through
  await waitFor(() => status(client) === 'reconnected', 10_000, 'reconnected')
  t.equal(sockets.sockets.length, 2, 'a second socket')
  t.equal(fetches.calls.length, 1, 'no second token request')
  t.equal(sockets.protocols[0]![1], sockets.protocols[1]![1], 'the same token')
})

t.test('a PoV that had no activity yet gets a resync after a drop, since nothing tells what was missed', async (t) => {
  const server = await startServer(t)
  const proxy = await startTcpProxy(t, server.port)
  const { client, sockets, messages } = connectClient(t, proxy.httpUrl)
  const events: ActivityEvent[] = []
  client.onActivity('quiet', (event) => events.push(event))
  client.watch('quiet')
  await waitFor(() => messages.some((m) => m.type === 'subscribed'), 5000, 'subscribed')
  t.same(events, [], 'the first subscription is no reason to resync')

  proxy.cut()
  await waitFor(() => status(client) === 'disconnected', 5000, 'the drop is noticed')
  await publish(server, 'quiet', 'missed-1') // published while the client is away: no cursor can recover it
  proxy.restore()
  await waitFor(() => status(client) === 'reconnected', 10_000, 'reconnected')
  await waitFor(() => events.some((e) => e.type === 'resync'), 5000, 'resync')

  t.same(sentOfType(sockets, 'subscribe', 'quiet').at(-1), { type: 'subscribe', povId: 'quiet' }, 'resubscribed without since')
  t.same(events.map((e) => e.type), ['resync'], 'exactly one resync')
})

t.test('a server restart: reconnected, resubscribed, and a resync because the new server cannot resume', async (t) => {
  const first = await startServer(t)
  // The proxy keeps the address: the client reconnects to "the same server" that came back with an empty history.
  const proxy = await startTcpProxy(t, first.port)
  const { client, sockets, messages } = connectClient(t, proxy.httpUrl)
  const events: ActivityEvent[] = []
  client.onActivity('p1', (event) => events.push(event))
  client.watch('p1')
  await waitFor(() => messages.some((m) => m.type === 'subscribed'), 5000, 'subscribed')
  const { cursor } = await publish(first, 'p1', 'a1')
  await waitFor(() => events.length === 1, 5000, 'a1')

  await first.app.close()
  await waitFor(() => status(client) === 'disconnected', 5000, 'the client notices the shutdown')
  const second = await startServer(t)
  proxy.retarget(second.port)
  await waitFor(() => status(client) === 'reconnected', 10_000, 'reconnected')
  await waitFor(() => events.some((e) => e.type === 'resync'), 5000, 'resync')

  t.same(sentOfType(sockets, 'subscribe', 'p1').at(-1), { type: 'subscribe', povId: 'p1', since: cursor }, 'resubscribed with since')
  t.ok(messages.some((m) => m.type === 'subscribed' && m.recovered === false), 'the new server could not resume')
  t.same(events.map((e) => e.type), ['activity', 'resync'], 'one resync, after the activity')
  await publish(second, 'p1', 'b1')
  await waitFor(() => ids(client, 'p1').includes('b1'), 5000, 'activity from the new server')
  t.same(ids(client, 'p1'), ['a1', 'b1'])
  t.ok(sockets.maxOpen <= 1, 'never two sockets open at once')
})

t.test('a token route answering 401 stops the client with an auth error, and it does not retry until told to', async (t) => {
  const server = await startServer(t)
  const { client, fetches, sockets } = connectClient(t, server.httpUrl, {}, false)
  await waitFor(() => client.getConnection().state === 'auth-failed', 5000, 'auth-failed')
  const { authError } = client.getConnection()
  t.equal(authError?.status, 401, 'the auth error carries the status')
  t.equal(authError?.name, 'AuthError')
  const requests = fetches.calls.length
  await sleep(1500) // well past several backoff delays (100 ms initial)
  t.equal(fetches.calls.length, requests, 'no retry on its own')
  t.equal(sockets.sockets.length, 0, 'no socket was attempted')
  t.equal(status(client), 'disconnected', 'shown as disconnected')

  fetches.cookie = clientSetup(server.httpUrl).fetches.cookie // signed in again
  client.reconnect()
  await waitFor(() => status(client) === 'connected', 5000, 'connected after signing in')
  t.equal(client.getConnection().authError, null, 'the error is cleared')
})

t.test('a silent (half-open) connection is noticed by the missing pong and replaced', async (t) => {
  const server = await startServer(t)
  const proxy = await startTcpProxy(t, server.port)
  const { client, sockets, messages } = connectClient(t, proxy.httpUrl, { pingInterval: 300, pongTimeout: 1500 })
  client.watch('p1')
  await waitFor(() => messages.some((m) => m.type === 'subscribed'), 5000, 'subscribed')
  const { cursor } = await publish(server, 'p1', 'a1')
  await waitFor(() => ids(client, 'p1').length === 1, 5000, 'a1')
  await sleep(2000)
  t.equal(status(client), 'connected', 'pongs keep a live connection')
  t.ok(sentOfType(sockets, 'ping').length >= 1, 'it pings')
  t.notOk(messages.some((m) => (m.type as string) === 'pong'), 'pong is never passed on')

  proxy.freeze() // nothing passes, nothing closes
  await publish(server, 'p1', 'a2')
  await waitFor(() => status(client) === 'reconnected', 10_000, 'replaced the silent connection')
  t.same(sentOfType(sockets, 'subscribe', 'p1').at(-1), { type: 'subscribe', povId: 'p1', since: cursor })
  await waitFor(() => ids(client, 'p1').length === 2, 5000, 'a2 through the resume')
  t.same(ids(client, 'p1'), ['a1', 'a2'])
})

t.test('the online event retries at once instead of waiting out the backoff', async (t) => {
  const server = await startServer(t)
  const proxy = await startTcpProxy(t, server.port)
  const online = new EventTarget()
  const network = {
    onOnline (listener: () => void) {
      online.addEventListener('online', listener)
      return () => online.removeEventListener('online', listener)
    }
  }
  const { client } = connectClient(t, proxy.httpUrl, { network, reconnect: { initialDelay: 60_000, jitter: 0 } })
  await waitFor(() => status(client) === 'connected', 5000, 'connected')
  proxy.cut()
  await waitFor(() => client.getConnection().state === 'waiting', 5000, 'waiting a minute')
  proxy.restore()
  await sleep(300)
  t.equal(client.getConnection().state, 'waiting', 'still waiting')
  online.dispatchEvent(new Event('online'))
  await waitFor(() => status(client) === 'reconnected', 5000, 'reconnected at once')
  t.pass('reconnected long before the 60 s backoff')
})

t.test('messages sent while disconnected are queued, at most maxQueuedMessages (the oldest dropped), and sent on reconnect', async (t) => {
  const server = await startServer(t)
  const proxy = await startTcpProxy(t, server.port)
  const { client, sockets, messages } = connectClient(t, proxy.httpUrl, { maxQueuedMessages: 2 })
  await waitFor(() => status(client) === 'connected', 5000, 'connected')
  proxy.cut()
  await waitFor(() => client.getConnection().state === 'waiting', 5000, 'disconnected')
  for (const povId of ['x1', 'x2', 'x3']) client.send({ type: 'unsubscribe', povId })
  t.equal(sentOfType(sockets, 'unsubscribe').length, 0, 'nothing sent while down')
  proxy.restore()
  await waitFor(() => messages.filter((m) => m.type === 'unsubscribed').length === 2, 10_000, 'the queued messages answered')
  t.same(sentOfType(sockets, 'unsubscribe').map((m) => m.povId), ['x2', 'x3'], 'the oldest was dropped')
})

t.test('a refused server causes no storm: attempts back off, one socket at a time', async (t) => {
  const server = await startServer(t)
  const proxy = await startTcpProxy(t, server.port)
  const { client, fetches, sockets } = connectClient(t, proxy.httpUrl, { reconnect: { initialDelay: 100, maxDelay: 400 } })
  await waitFor(() => status(client) === 'connected', 5000, 'connected')
  proxy.cut() // refuses every new connection, the token route's included
  const before = fetches.calls.length
  await sleep(2000)
  const attempts = fetches.calls.length - before
  // 100 + 200 + 400 + 400 … with jitter taking up to half off: at most about 2000 / 50 even in the worst case,
  // and far fewer in practice; without backoff it would be thousands.
  t.ok(attempts >= 3 && attempts <= 12, `backed off: ${attempts} attempts in 2 s`)
  t.ok(sockets.maxOpen <= 1, 'never two sockets open at once')
})

t.test('the socket closes linger ms after the last user releases it, unless someone retains it meanwhile', async (t) => {
  const server = await startServer(t)
  const { client, sockets, release } = connectClient(t, server.httpUrl, { linger: 300 })
  await waitFor(() => status(client) === 'connected', 5000, 'connected')
  release()
  const again = client.retain() // as StrictMode's remount does
  await sleep(500)
  t.equal(sockets.sockets.length, 1, 'the same socket')
  t.equal(status(client), 'connected', 'never dropped')
  again()
  await sleep(100)
  t.equal(server.app.povRealtime.stats().connections, 1, 'still open during the linger')
  await waitFor(() => server.app.povRealtime.stats().connections === 0, 5000, 'closed once nobody needs it')
  t.equal(client.getConnection().state, 'idle', 'the client is idle')
})

t.test('a socket the server closes for token expiry (4002) reconnects with a new token', async (t) => {
  const server = await startServer(t, { tokenExpiresIn: '2s' })
  const { fetch, log } = cookieFetch()
  // The app's token source, with refreshing turned off, so that the server's expiry close happens.
  const http = new HttpTokenProvider({ url: server.httpUrl + '/api/auth/ws-token', fetch, timers: defaultTimers })
  const neverRefreshing: TokenProvider = {
    usable: () => http.usable(),
    fetch: () => http.fetch(),
    refreshAt: () => Number.POSITIVE_INFINITY,
    invalidate: () => http.invalidate()
  }
  const { client, sockets } = connectClient(t, server.httpUrl, { tokens: neverRefreshing })
  await waitFor(() => status(client) === 'connected', 5000, 'connected')
  await waitFor(() => status(client) === 'reconnected', 10_000, 'reconnected after the expiry close')
  t.equal(server.app.povRealtime.stats().closed[4002], 1, 'the server closed it with 4002')
  t.equal(log.calls.length, 2, 'a second token was fetched')
  t.not(sockets.protocols[0]![1], sockets.protocols[1]![1], 'and used for the new socket')
})

t.test('signing out while connected: the next refresh gets 401, the socket closes and the client stops', async (t) => {
  const server = await startServer(t, { tokenExpiresIn: '3s' })
  const { client, fetches, sockets } = connectClient(t, server.httpUrl)
  await waitFor(() => status(client) === 'connected', 5000, 'connected')
  fetches.cookie = undefined
  await waitFor(() => client.getConnection().state === 'auth-failed', 10_000, 'auth-failed at the refresh')
  t.equal(client.getConnection().authError?.status, 401)
  await waitFor(() => server.app.povRealtime.stats().connections === 0, 5000, 'socket closed')
  t.equal(sockets.sockets.length, 1, 'no reconnection attempt')
  t.equal(server.app.povRealtime.stats().closed[4002] ?? 0, 0, 'closed by the client before the server had to')
})

t.test('close() forgets the token: the next session fetches one for whoever is signed in now', async (t) => {
  const server = await startServer(t)
  const { client, fetches, sockets } = connectClient(t, server.httpUrl)
  await waitFor(() => status(client) === 'connected', 5000, 'connected')
  client.close() // the app signs the user out
  fetches.cookie = `accessToken=${accessToken({ userId: 'u2', email: 'u2@example.com' })}` // and someone else in
  client.retain()
  await waitFor(() => status(client) === 'connected' && sockets.sockets.length === 2, 5000, 'connected again')
  t.equal(fetches.calls.length, 2, 'a new token was fetched')
  const userOf = (protocols: string | string[] | undefined) =>
    JSON.parse(Buffer.from(String((protocols as string[])[1]).split('.')[2]!, 'base64url').toString()).userId
  t.equal(userOf(sockets.protocols[1]), 'u2', "the new socket is the new user's")
  t.equal(userOf(sockets.protocols[0]), 'u1')

  client.close()
  client.reconnect() // users still hold the client (retained twice now): it connects again
  await waitFor(() => status(client) === 'connected' && sockets.sockets.length === 3, 5000, 'reconnect() after close()')
  t.pass('reconnect() restarts a closed client that is still in use')
})
