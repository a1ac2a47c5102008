/**
 * Hostile upgrade requests (PROTOCOL.md, "WebSocket"): hundreds of headers, a huge `Sec-WebSocket-Protocol`, bad keys
 * and versions, several bearer entries, a token in both places, a burst of bad tokens. Each is refused with plain HTTP
 * (4xx, or 431 from Node's HTTP parser for oversized headers) and no socket opens, the process keeps serving, the event
 * loop does not stall, and a client already connected keeps receiving its activities on time.
 *
 * The requests are written by hand on raw TCP sockets: the `ws` client refuses to send most of them.
 */
import { randomBytes } from 'node:crypto'
import net from 'node:net'
import { performance } from 'node:perf_hooks'
import t, { type Test } from 'tap'
import { activity, sleep, socketToken, startServer, waitFor, type TestServer } from './helpers/server.js'

/** What the server answered to one handshake: its status and headers, or nothing before it closed the connection. */
interface HandshakeAnswer {
  readonly status: number | undefined
  readonly headers: Readonly<Record<string, string>>
  readonly body: string
}

interface HandshakeRequest {
  /** Default `/ws`. */
  path?: string
  /** Default a random valid key; `null` leaves the header out. */
  key?: string | null
  /** Default `13`; `null` leaves the header out. */
  version?: string | null
  /** The `Sec-WebSocket-Protocol` value, if any. */
  protocol?: string
  /** Further header lines, as written. */
  extra?: readonly string[]
}

const HEADER_END = '\r\n\r\n'
/** Node's default `--max-http-header-size`. */
const NODE_HEADER_LIMIT = 16 * 1024

function requestHead (port: number, { path = '/ws', key, version = '13', protocol, extra = [] }: HandshakeRequest): string {
  const lines = [`GET ${path} HTTP/1.1`, `Host: 127.0.0.1:${port}`, 'Upgrade: websocket', 'Connection: Upgrade']
  if (key !== null) lines.push(`Sec-WebSocket-Key: ${key ?? randomBytes(16).toString('base64')}`)
  if (version !== null) lines.push(`Sec-WebSocket-Version: ${version}`)
  if (protocol !== undefined) lines.push(`Sec-WebSocket-Protocol: ${protocol}`)
  return [...lines, ...extra, '', ''].join('\r\n')
}

/**
 * Sends one hand-written upgrade request and resolves with the answer's status line and headers (the body too, for a
 * refusal that the server ends); the connection is destroyed afterwards. `status` is undefined when the server closed
 * the connection without answering.
 */
function handshake (port: number, request: HandshakeRequest, timeout = 10_000): Promise<HandshakeAnswer> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1')
    const chunks: Buffer[] = []
    let settled = false
    const finish = (): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      socket.destroy()
      const text = Buffer.concat(chunks).toString('latin1')
      const end = text.indexOf(HEADER_END)
      if (end === -1) return resolve({ status: undefined, headers: {}, body: '' })
      const [statusLine = '', ...headerLines] = text.slice(0, end).split('\r\n')
      const headers: Record<string, string> = {}
      for (const line of headerLines) {
        const colon = line.indexOf(':')
        headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim()
      }
      resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(statusLine)?.[1]), headers, body: text.slice(end + HEADER_END.length) })
    }
    const timer = setTimeout(() => {
      if (settled) return
      settled = true
      socket.destroy()
      reject(new Error(`no answer to the handshake within ${timeout} ms`))
    }, timeout)
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk)
      // A 101 never ends by itself: the headers are the whole answer.
      if (/^HTTP\/1\.1 101 /.test(Buffer.concat(chunks).toString('latin1')) && Buffer.concat(chunks).includes(HEADER_END)) finish()
    })
    socket.on('end', finish)
    socket.on('close', finish)
    // A server that resets the connection after answering (oversized headers) still answered.
    socket.on('error', finish)
    socket.write(requestHead(port, request))
  })
}

/** The process still serves: a new client connects, subscribes and gets an activity. */
async function assertStillServing (tt: Test, server: TestServer, povId: string): Promise<void> {
  const client = await server.connect({ claims: { userId: `check-${povId}` } })
  tt.match(await client.subscribe(povId), { type: 'subscribed', povId })
  await server.app.broadcastActivity(activity(povId, { id: `check-${povId}` }))
  tt.match(await client.next('activity', 5000), { data: { id: `check-${povId}` } }, 'a fresh client still receives activities')
  const faults = server.logs.filter((line) => (JSON.parse(line) as { level: number }).level >= 50)
  tt.same(faults, [], 'the server logged no error or fatal line')
}

const protocolWith = (token: string, ...more: string[]): string => ['pov-realtime.v1', `bearer.${token}`, ...more].join(', ')

t.test('hundreds of small headers within Node\'s limits: a good token opens a socket, a bad one gets 401', async (tt) => {
  const server = await startServer(tt)
  const token = await server.wsToken()
  // 800 headers of 5 bytes: Node 20 takes 2,500 of them, Node 22 and 24 answer 431 themselves from about 1,000 on.
  const extra = Array.from({ length: 800 }, () => 'a:1')
  tt.ok(requestHead(server.port, { protocol: protocolWith(token), extra }).length < NODE_HEADER_LIMIT, 'the request fits the header limit')

  const opened = await handshake(server.port, { protocol: protocolWith(token), extra })
  tt.equal(opened.status, 101, 'the socket opens')
  tt.equal(opened.headers['sec-websocket-protocol'], 'pov-realtime.v1', 'our subprotocol is selected, the token never echoed')

  const refused = await handshake(server.port, { protocol: protocolWith('not-a-jwt'), extra })
  tt.equal(refused.status, 401, 'a bad token is refused with 401')
  await assertStillServing(tt, server, 'many-headers')
})

t.test('headers past 16 KiB are refused by the HTTP parser (431) without opening a socket', async (tt) => {
  const server = await startServer(tt)
  const token = await server.wsToken()
  const manyHeaders = await handshake(server.port, { protocol: protocolWith(token), extra: Array.from({ length: 5000 }, (_, i) => `x-h${i}: 1`) })
  tt.ok(manyHeaders.status === 431 || manyHeaders.status === 400, `5,000 headers: answered ${manyHeaders.status}`)

  const hugeProtocol = Array.from({ length: 2000 }, (_, i) => `junk${i}`).join(', ') // about 18 KiB
  tt.ok(hugeProtocol.length > NODE_HEADER_LIMIT)
  const overLimit = await handshake(server.port, { protocol: protocolWith(token, hugeProtocol) })
  tt.ok(overLimit.status === 431 || overLimit.status === 400, `a Sec-WebSocket-Protocol over 16 KiB: answered ${overLimit.status}`)
  tt.equal(server.app.povRealtime.stats().connections, 0, 'no socket opened')
  await assertStillServing(tt, server, 'over-limit')
})

t.test('a Sec-WebSocket-Protocol near 16 KiB with one bearer entry opens a socket and selects only pov-realtime.v1', async (tt) => {
  const server = await startServer(tt)
  const token = await server.wsToken()
  // Junk subprotocols that fill the request to within about 200 bytes of the limit.
  const room = NODE_HEADER_LIMIT - requestHead(server.port, { protocol: protocolWith(token, '') }).length - 200
  let junk = Array.from({ length: 2000 }, (_, i) => `junk${i}`).join(', ')
  junk = junk.slice(0, junk.lastIndexOf(',', room))
  const head = requestHead(server.port, { protocol: protocolWith(token, junk) })
  tt.ok(head.length > NODE_HEADER_LIMIT - 512 && head.length < NODE_HEADER_LIMIT, `the request is ${head.length} bytes`)

  const opened = await handshake(server.port, { protocol: protocolWith(token, junk) })
  tt.equal(opened.status, 101)
  tt.equal(opened.headers['sec-websocket-protocol'], 'pov-realtime.v1')

  const refused = await handshake(server.port, { protocol: protocolWith(socketToken({}, { key: 'another-secret-that-is-also-long-enough!!' }), junk) })
  tt.equal(refused.status, 401, 'the same header with a wrongly signed token gets 401')
  tt.notMatch(refused.body, token.split('.')[2]!, 'the refusal does not echo a token')
  await assertStillServing(tt, server, 'near-limit')
})

t.test('a bad Sec-WebSocket-Key or Sec-WebSocket-Version is refused with 400 even with a good token', async (tt) => {
  const server = await startServer(tt)
  const token = await server.wsToken()
  const cases: Array<[string, HandshakeRequest]> = [
    ['no key', { key: null }],
    ['an empty key', { key: '' }],
    ['a key that is not base64', { key: '!!!!!!!!!!!!!!!!!!!!!!==' }],
    ['a key of 15 bytes', { key: randomBytes(15).toString('base64') }],
    ['a key of 32 bytes', { key: randomBytes(32).toString('base64') }],
    ['a 16 KiB-ish key', { key: 'A'.repeat(12_000) }],
    ['no version', { version: null }],
    ['version 12', { version: '12' }],
    ['version 14', { version: '14' }],
    ['version abc', { version: 'abc' }],
    ['version 13, 13', { version: '13, 13' }]
  ]
  for (const [name, request] of cases) {
    const answer = await handshake(server.port, { ...request, protocol: protocolWith(token) })
    tt.ok(answer.status !== undefined && answer.status >= 400 && answer.status < 500, `${name}: answered ${answer.status}`)
  }
  tt.equal(server.app.povRealtime.stats().connections, 0, 'no socket opened')
  await assertStillServing(tt, server, 'bad-keys')
})

t.test('several bearer entries, or a token in both places, are refused with 400', async (tt) => {
  const server = await startServer(tt)
  const token = await server.wsToken()
  const other = await server.wsToken({ userId: 'u2' })
  const manyProtocols = Array.from({ length: 300 }, (_, i) => `proto${i}`)
  const cases: Array<[string, HandshakeRequest]> = [
    ['two bearer entries', { protocol: protocolWith(token, `bearer.${other}`) }],
    ['the same bearer entry twice', { protocol: protocolWith(token, `bearer.${token}`) }],
    ['five bearer entries among 300 subprotocols', {
      protocol: ['pov-realtime.v1', ...manyProtocols.slice(0, 150), ...Array.from({ length: 5 }, () => `bearer.${token}`), ...manyProtocols.slice(150)].join(', ')
    }],
    ['a bearer entry without pov-realtime.v1', { protocol: `bearer.${token}` }],
    ['a token in the subprotocol and in the query', { protocol: protocolWith(token), path: `/ws?token=${token}` }],
    ['two tokens in the query', { path: `/ws?token=${token}&token=${other}` }]
  ]
  for (const [name, request] of cases) {
    const answer = await handshake(server.port, request)
    tt.equal(answer.status, 400, `${name}: refused with 400`)
    tt.notOk(answer.body.includes(token) || answer.body.includes(other), `${name}: the refusal echoes no token`)
  }
  tt.equal(server.app.povRealtime.stats().connections, 0, 'no socket opened')
  await assertStillServing(tt, server, 'many-bearers')
})

/** Measures how late a timer scheduled every `interval` ms fires, until stopped. */
function watchEventLoop (interval = 10): { stop (): number } {
  let worst = 0
  let expected = performance.now() + interval
  const timer = setInterval(() => {
    const now = performance.now()
    worst = Math.max(worst, now - expected)
    expected = now + interval
  }, interval)
  return {
    stop () {
      clearInterval(timer)
      return worst
    }
  }
}

t.test('a burst of 500 concurrent upgrades with bad tokens: each gets 401, no stall, a live client keeps its activities on time', async (tt) => {
  const server = await startServer(tt)
  const watcher = await server.connect({ claims: { userId: 'watcher' } })
  await watcher.subscribe('burst')
  const sentAt = new Map<string, number>()
  const latencies: number[] = []
  watcher.ws.on('message', (data) => {
    const message = JSON.parse(data.toString()) as { type: string, data?: { id: string } }
    if (message.type === 'activity' && sentAt.has(message.data!.id)) latencies.push(performance.now() - sentAt.get(message.data!.id)!)
  })
  const failuresBefore = server.app.povRealtime.stats().authFailures
  const now = Math.floor(Date.now() / 1000)
  const badTokens = [
    'not-a-jwt',
    socketToken({}, { key: 'another-secret-that-is-also-long-enough!!' }),
    socketToken({ iat: now - 7200, exp: now - 60 }),
    socketToken({ aud: 'another-app' }),
    socketToken({}, { algorithm: 'none', key: undefined })
  ]

  // A broadcast every 20 ms while the burst runs.
  const burst = { running: true }
  let published = 0
  const broadcasts = (async () => {
    while (burst.running) {
      const id = `burst-${published++}`
      sentAt.set(id, performance.now())
      await server.app.broadcastActivity(activity('burst', { id }))
      await sleep(20)
    }
  })()

  const loop = watchEventLoop()
  const started = performance.now()
  const attempts: Array<Promise<HandshakeAnswer>> = []
  for (let i = 0; i < 500; i++) {
    const token = badTokens[i % badTokens.length]!
    attempts.push(handshake(server.port, i % 2 === 0 ? { protocol: protocolWith(token) } : { path: `/ws?token=${encodeURIComponent(token)}` }, 30_000))
    // The attackers share this event loop: open them 50 at a time (all still in flight together) so that the lag
    // measured is mostly the server's, not the cost of creating 500 client sockets in one go.
    if (i % 50 === 49) await new Promise((resolve) => setImmediate(resolve))
  }
  const answers = await Promise.all(attempts)
  const burstMs = performance.now() - started
  const worstLag = loop.stop()
  burst.running = false
  await broadcasts
  await waitFor(() => latencies.length === published, 10_000, 'every activity published during the burst to arrive')

  const statuses = new Map<number | undefined, number>()
  for (const { status } of answers) statuses.set(status, (statuses.get(status) ?? 0) + 1)
  tt.same(Object.fromEntries(statuses), { 401: 500 }, 'each of the 500 attempts got 401')
  tt.equal(server.app.povRealtime.stats().authFailures - failuresBefore, 500, 'each counted as an auth failure')
  tt.equal(server.app.povRealtime.stats().connections, 1, 'only the watcher is connected')

  const sorted = [...latencies].sort((a, b) => a - b)
  const p50 = sorted[Math.floor(sorted.length / 2)]!
  const max = sorted[sorted.length - 1]!
  tt.comment(`burst of 500 bad upgrades took ${burstMs.toFixed(0)} ms; worst event-loop lag ${worstLag.toFixed(1)} ms; ` +
    `${latencies.length} activities to the live client meanwhile, latency p50 ${p50.toFixed(1)} ms, max ${max.toFixed(1)} ms`)
  tt.ok(published >= 2, `activities were broadcast during the burst (${published})`)
  tt.ok(worstLag < 250, `a 10 ms timer never fired more than 250 ms late (worst ${worstLag.toFixed(1)} ms)`)
  tt.ok(max < 1000, `the live client got every activity within a second (max ${max.toFixed(1)} ms)`)
  await assertStillServing(tt, server, 'after-burst')
})
