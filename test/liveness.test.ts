import t from 'tap'
import { TestClient } from './helpers/client.js'
import { RawWebSocket } from './helpers/raw-socket.js'
import { accessToken, sleep, socketToken, startServer, waitFor, type Teardown, type TestServer } from './helpers/server.js'
import { closed, opened } from './helpers/socket-waits.js'

/** The `exp` of a JWT, in ms since epoch. */
function expiryOf (jwt: string): number {
  return (JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString()) as { exp: number }).exp * 1000
}

/** A client whose `ws` does not answer the server's pings: a peer that has silently gone away. */
async function connectDeaf (t: Teardown, server: TestServer): Promise<TestClient> {
  const token = await server.wsToken()
  const client = new TestClient(server.wsUrl, ['pov-realtime.v1', `bearer.${token}`], undefined, { autoPong: false })
  t.teardown(() => client.terminate())
  await opened(client)
  return client
}

t.test('a peer that does not answer pings is terminated after about two heartbeats, and its resources freed', async (t) => {
  const heartbeatInterval = 1000
  const server = await startServer(t, { heartbeatInterval })
  const healthy = await server.connect({ claims: { userId: 'u2' } })
  // Measured from before the upgrade: the server's first ping cannot come earlier than that.
  const connectingAt = Date.now()
  const deaf = await connectDeaf(t, server)
  await deaf.subscribe('p1')
  await deaf.subscribe('p2')
  await healthy.subscribe('p1')
  t.match(server.app.povRealtime.stats(), { connections: 2, subscriptions: 3, povs: 2 })

  const { code } = await closed(deaf, { within: 10_000 })
  const elapsed = Date.now() - connectingAt
  t.equal(code, 1006, 'terminated without a close frame')
  t.ok(elapsed >= heartbeatInterval * 0.9, `not before one interval has passed (${elapsed} ms)`)
  t.ok(elapsed < 10_000, `within a bounded time (${elapsed} ms)`)
  await waitFor(() => server.app.povRealtime.stats().connections === 1, 5000, 'the deaf socket to be forgotten')
  t.match(server.app.povRealtime.stats(), { connections: 1, subscriptions: 1, povs: 1 })

  // The healthy peer answers every ping and outlives several intervals.
  await sleep(heartbeatInterval * 3)
  t.same(await healthy.request({ type: 'ping' }, 'pong'), { type: 'pong' })
  t.equal(healthy.ws.readyState, healthy.ws.OPEN, 'the healthy peer is still connected')
  healthy.close()
  await closed(healthy)
  await waitFor(() => server.app.povRealtime.stats().connections === 0, 5000, 'the healthy socket to be forgotten')
  t.match(server.app.povRealtime.stats(), { connections: 0, subscriptions: 0, povs: 0 })
})

const OPCODE_PING = 0x9
const OPCODE_PONG = 0xa

/** A raw peer that answers each of the server's pings with a pong whose payload `answer` makes of the ping's. */
function answerPings (peer: RawWebSocket, answer: (payload: Buffer) => Buffer): void {
  let answered = 0
  peer.socket.on('data', () => {
    const pings = peer.frames().filter((frame) => frame.opcode === OPCODE_PING)
    for (; answered < pings.length; answered++) peer.sendFrame(OPCODE_PONG, answer(pings[answered]!.payload))
  })
}

t.test('a peer that reads nothing is terminated by the heartbeat, however many pongs of its own it sends', async (t) => {
  const heartbeatInterval = 500
  const server = await startServer(t, { heartbeatInterval })
  const peer = await RawWebSocket.open(server.port, '/ws', await server.wsToken())
  t.teardown(() => peer.destroy())
  peer.send({ type: 'subscribe', povId: 'p1' })
  await peer.waitForMessage('subscribed')
  peer.stopReading()
  const openedAt = Date.now()
  // Unsolicited pongs, empty and with a payload, ten times per interval.
  const pongs = setInterval(() => {
    peer.sendFrame(OPCODE_PONG, Buffer.alloc(0))
    peer.sendFrame(OPCODE_PONG, Buffer.from('still here'))
  }, heartbeatInterval / 10)
  t.teardown(() => clearInterval(pongs))
  await waitFor(() => server.app.povRealtime.stats().connections === 0, 10 * heartbeatInterval, 'the server to let go of the peer')
  const elapsed = Date.now() - openedAt
  t.ok(elapsed <= 3 * heartbeatInterval, `within about two intervals (${elapsed} ms)`)
  t.match(server.app.povRealtime.stats(), { subscriptions: 0, povs: 0 })
})

t.test('a pong must echo the ping\'s payload to keep a peer alive', async (t) => {
  const heartbeatInterval = 300
  const server = await startServer(t, { heartbeatInterval })
  const echoing = await RawWebSocket.open(server.port, '/ws', await server.wsToken({ userId: 'u1' }))
  const wrong = await RawWebSocket.open(server.port, '/ws', await server.wsToken({ userId: 'u2' }))
  t.teardown(() => { echoing.destroy(); wrong.destroy() })
  answerPings(echoing, (payload) => payload)
  answerPings(wrong, (payload) => Buffer.from(payload.map((byte) => byte ^ 0xff)))
  await waitFor(() => wrong.socket.closed, 10 * heartbeatInterval, 'the peer whose pongs do not echo the ping to be terminated')
  t.ok(wrong.frames().some((frame) => frame.opcode === OPCODE_PING), 'the peer answered pings, wrongly')
  await sleep(heartbeatInterval * 4)
  t.equal(echoing.socket.readyState, 'open', 'the peer that echoes the payload outlives several intervals')
  t.equal(server.app.povRealtime.stats().connections, 1)
  echoing.send({ type: 'ping' })
  t.same(await echoing.waitForMessage('pong'), { type: 'pong' }, 'and is still served')
})

t.test('a token that expires on a live connection closes it with 4002', async (t) => {
  const server = await startServer(t, { tokenExpiresIn: '2s' })
  const token = await server.wsToken()
  const expiresAt = expiryOf(token)
  const client = await server.connect({ token })
  await client.subscribe('p1')
  const { code } = await closed(client)
  const closedAt = Date.now()
  t.equal(code, 4002)
  t.ok(closedAt >= expiresAt - 100, `not before the token's exp (${closedAt - expiresAt} ms)`)
  t.ok(closedAt <= expiresAt + 2000, `within a second or two of exp (${closedAt - expiresAt} ms)`)
  t.equal(server.app.povRealtime.stats().closed['4002'], 1)
  await waitFor(() => server.app.povRealtime.stats().connections === 0, 5000, 'the socket to be forgotten')
  t.match(server.app.povRealtime.stats(), { subscriptions: 0, povs: 0 })
})

t.test('an auth with a fresh token for the same user keeps the socket open past the old expiry', async (t) => {
  const server = await startServer(t)
  const now = Math.floor(Date.now() / 1000)
  const shortLived = socketToken({ iat: now, exp: now + 3 })
  const client = await server.connect({ token: shortLived })
  await client.subscribe('p1')
  const fresh = await server.wsToken({ userId: 'u1', role: 'admin' })
  t.same(await client.request({ type: 'auth', token: fresh }, 'authenticated'), { type: 'authenticated', expiresAt: expiryOf(fresh) })

  await sleep(Math.max(0, expiryOf(shortLived) + 1500 - Date.now()))
  t.equal(client.ws.readyState, client.ws.OPEN, 'open past the old expiry')
  t.same(await client.request({ type: 'ping' }, 'pong'), { type: 'pong' })
  const result = await server.app.broadcastActivity({
    id: 'a1', type: 'note', action: 'created', povId: 'p1', userId: 'u1', title: 't', message: 'm'
  })
  t.equal((await client.next('activity')).cursor, result.cursor, 'and still subscribed')
  t.equal(server.app.povRealtime.stats().closed['4002'], undefined)
})

t.test('an auth with a token for another user closes the socket with 4003', async (t) => {
  const server = await startServer(t)
  const client = await server.connect({ claims: { userId: 'u1' } })
  await client.subscribe('p1')
  client.send({ type: 'auth', token: await server.wsToken({ userId: 'u2' }) })
  t.equal((await closed(client)).code, 4003)
  t.same(client.messages.filter((m) => m.type === 'authenticated'), [])
  t.equal(server.app.povRealtime.stats().closed['4003'], 1)
})

t.test('an invalid auth token gets INVALID_TOKEN and the socket stays open on its current token', async (t) => {
  const server = await startServer(t)
  const client = await server.connect()
  const now = Math.floor(Date.now() / 1000)
  const refused: Record<string, string> = {
    garbage: 'not-a-jwt',
    expired: socketToken({ iat: now - 60, exp: now - 30 }),
    'wrong signature': socketToken({}, { key: 'another-secret-another-secret-another!' }),
    'an access token': accessToken(),
    'wrong audience': socketToken({ aud: 'someone-else' }),
    'sub not the user': socketToken({ sub: 'u2' }),
    'alg none': `${Buffer.from('{"alg":"none","typ":"JWT"}').toString('base64url')}.${Buffer.from(JSON.stringify({ userId: 'u1', sub: 'u1', aud: 'pov-realtime', exp: now + 3600 })).toString('base64url')}.`
  }
  for (const [name, token] of Object.entries(refused)) {
    t.match(await client.request({ type: 'auth', token }, 'error'), { type: 'error', code: 'INVALID_TOKEN', message: String }, name)
    t.same(await client.request({ type: 'ping' }, 'pong'), { type: 'pong' }, `${name}: still open`)
  }
  t.same(client.messages.filter((m) => m.type === 'authenticated'), [])
  t.equal(server.app.povRealtime.stats().rejected.INVALID_TOKEN, Object.keys(refused).length)
  t.equal(server.app.povRealtime.stats().closed['4003'], undefined, 'an invalid token is not an identity change')
})

t.test('after a refused auth the connection still closes at its current token expiry', async (t) => {
  const server = await startServer(t)
  const now = Math.floor(Date.now() / 1000)
  const client = await server.connect({ token: socketToken({ iat: now, exp: now + 2 }) })
  t.match(await client.request({ type: 'auth', token: 'not-a-jwt' }, 'error'), { code: 'INVALID_TOKEN' })
  t.equal((await closed(client)).code, 4002)
})
