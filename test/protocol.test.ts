import t from 'tap'
import type { Message, TestClient } from './helpers/client.js'
import { RawWebSocket } from './helpers/raw-socket.js'
import { activity, sleep, startServer, waitFor } from './helpers/server.js'
import { closed } from './helpers/socket-waits.js'

/** What the socket answers to a frame it must refuse, and to the ping sent right after it. */
async function refusalThenPing (client: TestClient, send: () => void): Promise<{ error: Message, pong: Message }> {
  const error = client.next('error')
  send()
  return { error: await error, pong: await client.request({ type: 'ping' }, 'pong') }
}

/** The socket answers INVALID_MESSAGE and then still answers a ping. */
const refusedAsInvalid = { error: { type: 'error', code: 'INVALID_MESSAGE', message: String }, pong: { type: 'pong' } }

t.test('ping is answered with pong', async (t) => {
  const server = await startServer(t)
  const client = await server.connect()
  t.same(await client.request({ type: 'ping' }, 'pong'), { type: 'pong' })
})

t.test('subscribe is answered with subscribed, unsubscribe with unsubscribed', async (t) => {
  const server = await startServer(t)
  const client = await server.connect()
  t.same(await client.subscribe('p1'), { type: 'subscribed', povId: 'p1' })
  t.equal(server.app.povRealtime.stats().subscriptions, 1)
  t.same(await client.request({ type: 'unsubscribe', povId: 'p1' }, 'unsubscribed'), { type: 'unsubscribed', povId: 'p1' })
  t.equal(server.app.povRealtime.stats().subscriptions, 0)
  t.equal(server.app.povRealtime.stats().povs, 0)
})

t.test('unsubscribe from a PoV that was never subscribed is answered unsubscribed too', async (t) => {
  const server = await startServer(t)
  const client = await server.connect()
  t.same(await client.request({ type: 'unsubscribe', povId: 'never' }, 'unsubscribed'), { type: 'unsubscribed', povId: 'never' })
  t.same(await client.request({ type: 'ping' }, 'pong'), { type: 'pong' })
})

t.test('a subscriber receives the activity with its cursor and data', async (t) => {
  const server = await startServer(t)
  const client = await server.connect()
  await client.subscribe('p1')
  const input = activity('p1', { severity: 'success', actionUrl: '/povs/p1/notes/9', metadata: { noteId: 9 } })
  const result = await server.app.broadcastActivity(input)
  const message = await client.next('activity')
  t.equal(message.cursor, result.cursor)
  t.match(message.data, { ...input, createdAt: String })
})

t.test('a duplicate subscribe is answered again and still delivers one copy of each activity', async (t) => {
  const server = await startServer(t)
  const client = await server.connect()
  t.same(await client.subscribe('p1'), { type: 'subscribed', povId: 'p1' })
  t.same(await client.subscribe('p1'), { type: 'subscribed', povId: 'p1' })
  t.equal(server.app.povRealtime.stats().subscriptions, 1, 'still one subscription')
  const first = await server.app.broadcastActivity(activity('p1'))
  t.equal(first.delivered, 1, 'written once')
  const second = await server.app.broadcastActivity(activity('p1'))
  await client.next((m) => m.type === 'activity' && m.cursor === second.cursor)
  t.same(client.messages.filter((m) => m.type === 'activity').map((m) => m.cursor), [first.cursor, second.cursor])
})

t.test('a socket not subscribed to p1 never receives p1 activity', async (t) => {
  const server = await startServer(t)
  const watcher = await server.connect()
  const other = await server.connect({ claims: { userId: 'u2' } })
  await watcher.subscribe('p1')
  await watcher.subscribe('p2')
  await other.subscribe('p2')
  await other.subscribe('p10') // a PoV whose id starts like p1's must not match it
  const p1 = await server.app.broadcastActivity(activity('p1'))
  t.equal(p1.delivered, 1, 'only the p1 subscriber')
  const sentinel = await server.app.broadcastActivity(activity('p2'))
  await other.next((m) => m.type === 'activity' && m.cursor === sentinel.cursor)
  t.same(other.activities('p1'), [], 'the p2 subscriber got no p1 activity')
  await watcher.next((m) => m.type === 'activity' && m.cursor === sentinel.cursor)
  t.equal(watcher.activities('p1').length, 1)

  await watcher.request({ type: 'unsubscribe', povId: 'p1' }, 'unsubscribed')
  t.equal((await server.app.broadcastActivity(activity('p1'))).delivered, 0, 'nobody watches p1 any more')
  const last = await server.app.broadcastActivity(activity('p2'))
  await watcher.next((m) => m.type === 'activity' && m.cursor === last.cursor)
  t.equal(watcher.activities('p1').length, 1, 'no p1 activity after unsubscribe')
})

t.test('activities arrive in publish order', async (t) => {
  const server = await startServer(t)
  const client = await server.connect()
  await client.subscribe('p1')
  const inputs = Array.from({ length: 200 }, (_, i) => activity('p1', { id: `a${i}` }))
  // Published back to back, without waiting for each other.
  const results = await Promise.all(inputs.map((input) => server.app.broadcastActivity(input)))
  await client.next((m) => m.type === 'activity' && m.cursor === results.at(-1)!.cursor, 10_000)
  t.same(client.activities('p1').map((data) => data.id), inputs.map((input) => input.id))
  t.same(client.messages.filter((m) => m.type === 'activity').map((m) => m.cursor), results.map((r) => r.cursor))
})

t.test('bad frames get INVALID_MESSAGE and leave the socket usable', async (t) => {
  const server = await startServer(t)
  const client = await server.connect()
  const frames: Record<string, unknown> = {
    'not JSON': '{"type": "ping"',
    'plain text': 'hello',
    'an empty frame': '',
    'a JSON array': '[{"type":"ping"}]',
    'a JSON number': '42',
    'a JSON string': '"ping"',
    'JSON null': 'null',
    'no type': { povId: 'p1' },
    'a numeric type': { type: 7 },
    'an unknown type': { type: 'hello' },
    'subscribe without povId': { type: 'subscribe' },
    'unsubscribe without povId': { type: 'unsubscribe' },
    'a numeric povId': { type: 'subscribe', povId: 42 },
    'an empty povId': { type: 'subscribe', povId: '' },
    'a povId with a space': { type: 'subscribe', povId: 'p 1' },
    'a povId with a slash': { type: 'subscribe', povId: 'p1/../p2' },
    'a povId of 129 characters': { type: 'subscribe', povId: 'a'.repeat(129) },
    'a malformed cursor': { type: 'subscribe', povId: 'p1', since: 'not a cursor' },
    'an extra field on ping': { type: 'ping', extra: true },
    'an extra field on subscribe': { type: 'subscribe', povId: 'p1', role: 'admin' },
    'auth without token': { type: 'auth' },
    'a __proto__ key': '{"type":"ping","__proto__":{"polluted":"yes"}}',
    'a nested __proto__ key': '{"type":"subscribe","povId":"p1","x":{"__proto__":{"polluted":"yes"}}}',
    'a constructor.prototype key': '{"type":"ping","constructor":{"prototype":{"polluted":"yes"}}}'
  }
  for (const [name, frame] of Object.entries(frames)) {
    t.match(await refusalThenPing(client, () => client.send(frame)), refusedAsInvalid, name)
  }
  t.match(await refusalThenPing(client, () => client.ws.send(Buffer.from('{"type":"ping"}'), { binary: true })), refusedAsInvalid, 'a binary frame')

  t.equal(({} as Record<string, unknown>).polluted, undefined, 'Object.prototype is not polluted')
  t.notOk(Object.hasOwn(Object.prototype, 'polluted'))
  t.same(client.activities(), [])
  t.equal(client.messages.filter((m) => m.type === 'subscribed').length, 0, 'nothing got subscribed')
  const stats = server.app.povRealtime.stats()
  t.equal(stats.rejected.INVALID_MESSAGE, Object.keys(frames).length + 1, 'every error sent is counted')
  t.equal(stats.subscriptions, 0)
})

t.test('a povId of 128 characters of the allowed alphabet is accepted', async (t) => {
  const server = await startServer(t)
  const client = await server.connect()
  const povId = ('Az09_-.:'.repeat(16)).slice(0, 128)
  t.same(await client.subscribe(povId), { type: 'subscribed', povId })
})

t.test('a frame larger than maxPayload closes the socket with 1009', async (t) => {
  const server = await startServer(t, { maxPayload: 1024 })
  const client = await server.connect()
  const justUnder = JSON.stringify({ type: 'ping', pad: 'x'.repeat(1000) })
  t.ok(Buffer.byteLength(justUnder) <= 1024)
  t.match(await refusalThenPing(client, () => client.send(justUnder)), refusedAsInvalid, 'a frame within maxPayload')
  client.send({ type: 'ping', pad: 'x'.repeat(2000) })
  t.equal((await closed(client)).code, 1009)
  t.equal(server.app.povRealtime.stats().closed['1009'], 1, 'the close is counted')
  // ws sends the 1009 at once and tells the server's socket it closed only when the TCP connection has ended.
  await waitFor(() => server.app.povRealtime.stats().connections === 0, 2000, 'the server to drop the connection')
  t.equal(server.app.povRealtime.stats().connections, 0)
})

t.test('20 invalid messages in a row close the socket with 1008', async (t) => {
  const server = await startServer(t)
  const client = await server.connect()
  for (let i = 0; i < 19; i++) client.send('not json')
  // A valid message between resets the streak.
  await client.request({ type: 'ping' }, 'pong')
  for (let i = 0; i < 19; i++) client.send({ type: 'nope' })
  await client.request({ type: 'ping' }, 'pong')
  t.equal(client.ws.readyState, client.ws.OPEN, '19 in a row are tolerated')
  for (let i = 0; i < 20; i++) client.send('[]')
  t.equal((await closed(client)).code, 1008)
  const stats = server.app.povRealtime.stats()
  t.equal(stats.rejected.INVALID_MESSAGE, 58, 'each invalid message was answered')
  t.equal(stats.closed['1008'], 1)
  t.equal(client.messages.filter((m) => m.type === 'error').length, 58)
})

t.test('more than maxSubscriptions PoVs is SUBSCRIPTION_LIMIT, naming the PoV', async (t) => {
  const server = await startServer(t, { maxSubscriptions: 2 })
  const client = await server.connect()
  await client.subscribe('p1')
  await client.subscribe('p2')
  t.same(await client.subscribe('p1'), { type: 'subscribed', povId: 'p1' }, 'a repeated subscribe does not count')
  t.match(await client.subscribe('p3'), { type: 'error', code: 'SUBSCRIPTION_LIMIT', povId: 'p3', message: String })
  t.equal((await server.app.broadcastActivity(activity('p3'))).delivered, 0, 'p3 was not subscribed')
  await client.request({ type: 'unsubscribe', povId: 'p1' }, 'unsubscribed')
  t.same(await client.subscribe('p3'), { type: 'subscribed', povId: 'p3' }, 'room again after an unsubscribe')
  const stats = server.app.povRealtime.stats()
  t.equal(stats.rejected.SUBSCRIPTION_LIMIT, 1)
  t.equal(stats.subscriptions, 2)
})

t.test('rateLimit: one RATE_LIMITED, then 4008 after another max messages in the window, ping included', async (t) => {
  const server = await startServer(t, { rateLimit: { max: 5, timeWindow: 60_000 } })
  const client = await server.connect()
  for (let i = 0; i < 5; i++) await client.request({ type: 'ping' }, 'pong')
  t.match(await client.request({ type: 'ping' }, 'error'), { code: 'RATE_LIMITED', message: String }, 'the 6th message')
  for (let i = 0; i < 4; i++) client.send({ type: 'ping' })
  await sleep(200)
  t.equal(client.ws.readyState, client.ws.OPEN, 'still open after 4 more')
  client.send({ type: 'ping' })
  t.equal((await closed(client)).code, 4008, 'closed on the 5th message after RATE_LIMITED')
  t.equal(client.messages.filter((m) => m.type === 'pong').length, 5, 'messages past the limit are not answered')
  t.equal(client.messages.filter((m) => m.type === 'error').length, 1, 'RATE_LIMITED is sent once')
  const stats = server.app.povRealtime.stats()
  t.equal(stats.rejected.RATE_LIMITED, 1)
  t.equal(stats.closed['4008'], 1)
})

t.test('rateLimit: a new window lets messages through again', async (t) => {
  const server = await startServer(t, { rateLimit: { max: 3, timeWindow: 1000 } })
  const client = await server.connect()
  for (let i = 0; i < 3; i++) client.send({ type: 'ping' })
  t.match(await client.request({ type: 'ping' }, 'error'), { code: 'RATE_LIMITED' })
  await sleep(1200)
  t.same(await client.request({ type: 'ping' }, 'pong'), { type: 'pong' })
  t.equal(client.ws.readyState, client.ws.OPEN)
})

t.test('rateLimit: false lets a burst through', async (t) => {
  const server = await startServer(t, { rateLimit: false })
  const client = await server.connect()
  for (let i = 0; i < 500; i++) client.send({ type: 'ping' })
  await client.request({ type: 'ping' }, (m) => m.type === 'pong' && client.messages.length === 501, 10_000)
  t.equal(client.messages.filter((m) => m.type === 'pong').length, 501)
})

t.test('status, typing, read and reads are NOT_ENABLED while their features are off', async (t) => {
  const server = await startServer(t)
  const client = await server.connect()
  await client.subscribe('p1')
  const messages = [
    { type: 'status', status: 'idle' },
    { type: 'typing', povId: 'p1', typing: true },
    { type: 'read', povId: 'p1', cursor: 'c1' },
    { type: 'reads', povId: 'p1' }
  ]
  for (const message of messages) {
    t.match(await client.request(message, 'error'), { type: 'error', code: 'NOT_ENABLED', message: String }, message.type)
    await client.request({ type: 'ping' }, 'pong')
  }
  t.equal(server.app.povRealtime.stats().rejected.NOT_ENABLED, 4)
})

t.test('with readReceipts on, read and reads are handled while status and typing stay NOT_ENABLED', async (t) => {
  const server = await startServer(t, { readReceipts: true })
  const { cursor } = await server.app.broadcastActivity(activity('p1'))
  const client = await server.connect()
  t.same(await client.subscribe('p1'), { type: 'subscribed', povId: 'p1', readCursor: null, unread: 1 })
  t.match(await client.request({ type: 'read', povId: 'p1', cursor }, 'read'), { type: 'read', povId: 'p1', userId: 'u1', cursor })
  t.match(await client.request({ type: 'reads', povId: 'p1' }, 'reads'), { type: 'reads', povId: 'p1', reads: [{ userId: 'u1', cursor }] })
  for (const message of [{ type: 'status', status: 'idle' }, { type: 'typing', povId: 'p1', typing: true }]) {
    t.match(await client.request(message, 'error'), { type: 'error', code: 'NOT_ENABLED' }, message.type)
  }
  t.equal(server.app.povRealtime.stats().rejected.NOT_ENABLED, 2)
})

t.test('with presence on, status and typing are accepted while read and reads stay NOT_ENABLED', async (t) => {
  const server = await startServer(t, { presence: true })
  const client = await server.connect()
  await client.subscribe('p1')
  client.send({ type: 'status', status: 'idle' })
  client.send({ type: 'typing', povId: 'p1', typing: true })
  await client.request({ type: 'ping' }, 'pong')
  t.same(client.messages.filter((m) => m.type === 'error'), [], 'status and typing are not refused (nor answered)')
  for (const message of [{ type: 'read', povId: 'p1', cursor: 'c1' }, { type: 'reads', povId: 'p1' }]) {
    t.match(await client.request(message, 'error'), { type: 'error', code: 'NOT_ENABLED' }, message.type)
  }
})

t.test('messages of a feature that is off are not abuse: a client that keeps sending them is not disconnected', async (t) => {
  const server = await startServer(t)
  const client = await server.connect()
  await client.subscribe('p1')
  for (let i = 0; i < 30; i++) client.send({ type: 'typing', povId: 'p1', typing: i % 2 === 0 })
  const outcome = await Promise.race([
    client.request({ type: 'ping' }, 'pong', 5000).then(() => 'answered'),
    client.closed.then(({ code }) => `closed with ${code}`)
  ])
  t.equal(outcome, 'answered', 'the socket still answers a ping')
  t.equal(client.messages.filter((m) => m.type === 'error' && m.code === 'NOT_ENABLED').length, 30)
  t.equal(client.ws.readyState, client.ws.OPEN)
  t.equal(server.app.povRealtime.stats().closed['1008'], undefined)
})

t.test('frames that break the WebSocket framing close only that socket, with the RFC 6455 code, and are counted', async (t) => {
  const server = await startServer(t)
  const bystander = await server.connect({ claims: { userId: 'u2' } })
  await bystander.subscribe('p1')
  const token = await server.wsToken()
  const violations: Record<string, { code: number, send: (raw: RawWebSocket) => void }> = {
    'a text frame that is not UTF-8': { code: 1007, send: (raw) => raw.sendFrame(0x1, Buffer.from([0x7b, 0xff, 0xfe, 0x7d])) },
    'an unmasked client frame': { code: 1002, send: (raw) => raw.write(Buffer.from([0x81, 0x02, 0x7b, 0x7d])) },
    'a reserved opcode': { code: 1002, send: (raw) => raw.sendFrame(0x3, Buffer.from('{}')) },
    'a continuation frame with nothing to continue': { code: 1002, send: (raw) => raw.sendFrame(0x0, Buffer.from('{}')) }
  }
  for (const [name, { code, send }] of Object.entries(violations)) {
    const raw = await RawWebSocket.open(server.port, '/ws', token)
    t.teardown(() => raw.destroy())
    send(raw)
    await waitFor(() => raw.socket.closed || raw.closeCodes().length > 0, 5000, `${name}: the server to close`)
    t.same(raw.closeCodes(), [code], `${name}: closed with ${code}`)
    await waitFor(() => raw.socket.closed, 5000, `${name}: the connection to end`)
  }
  await waitFor(() => server.app.povRealtime.stats().connections === 1, 5000, 'the broken sockets to be forgotten')
  const result = await server.app.broadcastActivity(activity('p1'))
  t.equal((await bystander.next('activity')).cursor, result.cursor, 'the other socket is unaffected')
  const { closed } = server.app.povRealtime.stats()
  t.same({ 1002: closed['1002'], 1007: closed['1007'] }, { 1002: 3, 1007: 1 }, 'each close is counted by its code')
})
