/**
 * The upgrade's front door (PROTOCOL.md, "WebSocket"): which tokens, Origins and handshakes open a socket, and how
 * every other upgrade is refused with plain HTTP before any socket exists.
 */
import { generateKeyPairSync } from 'node:crypto'
import { connect as connectTcp } from 'node:net'
import type { FastifyRequest } from 'fastify'
import t from 'tap'
import type { PovRealtimeUser } from '../index.js'
import { accessToken, activity, SECRET, sleep, SOCKET_TOKEN_KEY, socketToken, startServer, type TestServer } from './helpers/server.js'
import { attemptUpgrade, jwtSegments, resignJwt, type UpgradeOptions, type UpgradeOutcome } from './helpers/upgrade.js'
import { nextEvent } from './helpers/socket-waits.js'

const OTHER_SECRET = 'another-secret-that-is-also-long-enough!!'
const { privateKey: rsaPrivateKey } = generateKeyPairSync('rsa', {
  modulusLength: 2048,
  privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  publicKeyEncoding: { type: 'spki', format: 'pem' }
})

/** Every token that must not open a socket, by what is wrong with it. */
function refusedTokens (): Record<string, string> {
  const now = Math.floor(Date.now() / 1000)
  const valid = jwtSegments(socketToken())
  return {
    'a bad signature': `${valid.header}.${valid.payload}.${jwtSegments(socketToken({ userId: 'u2', sub: 'u2' })).signature}`,
    'alg none': socketToken({}, { algorithm: 'none', key: undefined }),
    'HS512 where HS256 is expected': socketToken({}, { algorithm: 'HS512' }),
    'RS256 where HS256 is expected': socketToken({}, { algorithm: 'RS256', key: rsaPrivateKey }),
    'an expired token': socketToken({ iat: now - 7200, exp: now - 60 }),
    'no exp': socketToken({ exp: undefined }),
    'exp as a string': resignJwt(socketToken(), { claims: { exp: String(now + 3600) } }, SOCKET_TOKEN_KEY),
    'nbf in the future': socketToken({ nbf: now + 3600 }),
    'a wrong aud': socketToken({ aud: 'another-app' }),
    'a sub that is not its userId': socketToken({ sub: 'u2' }),
    'no aud (an access token used as a WebSocket token)': accessToken(),
    'an empty signature': `${valid.header}.${valid.payload}.`,
    'a token signed with another secret': socketToken({}, { key: OTHER_SECRET }),
    'a token signed with the secret itself rather than its derived key': socketToken({}, { key: SECRET }),
    'a userId with a right-to-left override': socketToken({ userId: 'u1\u202e', sub: 'u1\u202e' }),
    'a userId with a control character': socketToken({ userId: 'u1\n', sub: 'u1\n' }),
    'a userId of 257 characters': socketToken({ userId: 'u'.repeat(257), sub: 'u'.repeat(257) }),
    'something that is not a JWT': 'not-a-jwt'
  }
}

function viaProtocol (server: TestServer, token: string): [string, UpgradeOptions] {
  return [server.wsUrl, { protocols: ['pov-realtime.v1', `bearer.${token}`] }]
}

function viaQuery (server: TestServer, token: string): [string, UpgradeOptions] {
  return [`${server.wsUrl}?token=${encodeURIComponent(token)}`, {}]
}

/** What a test compares against an expected refusal: the status, and the parsed body when there is one. */
function answer (outcome: UpgradeOutcome): { status: number, contentType?: string, body?: unknown } {
  if (outcome.opened) return { status: 101 }
  return { status: outcome.status, contentType: outcome.headers['content-type'], body: outcome.body ? JSON.parse(outcome.body) : undefined }
}

/** The expected refusal: `status` with a coded JSON body. */
function refusal (status: number, code: string) {
  return { status, contentType: /application\/json/, body: { statusCode: status, code, message: String } }
}

t.test('a bad WebSocket token is refused with 401 before any socket opens, through either transport', async (t) => {
  const server = await startServer(t)
  const tokens = refusedTokens()
  let attempts = 0
  for (const [name, token] of Object.entries(tokens)) {
    for (const [transport, request] of [['subprotocol', viaProtocol], ['query', viaQuery]] as const) {
      const outcome = await attemptUpgrade(t, ...request(server, token))
      attempts++
      t.match(answer(outcome), refusal(401, 'POV_REALTIME_UNAUTHORIZED'), `${name} via ${transport}: 401`)
    }
  }
  const stats = server.app.povRealtime.stats()
  t.equal(stats.connections, 0, 'no socket opened')
  t.equal(stats.authFailures, attempts, 'every refusal is counted')
  const opened = await attemptUpgrade(t, ...viaProtocol(server, await server.wsToken()))
  t.ok(opened.opened, 'a valid token still opens a socket on the same server')
})

t.test('an upgrade without a token is refused with 401', async (t) => {
  const server = await startServer(t)
  const attempts: Record<string, [string, UpgradeOptions]> = {
    'no token at all': [server.wsUrl, {}],
    'only pov-realtime.v1 offered': [server.wsUrl, { protocols: ['pov-realtime.v1'] }],
    'an empty bearer entry': [server.wsUrl, { protocols: ['pov-realtime.v1', 'bearer.'] }],
    'an empty ?token=': [`${server.wsUrl}?token=`, {}]
  }
  for (const [name, [url, options]] of Object.entries(attempts)) {
    t.match(answer(await attemptUpgrade(t, url, options)), refusal(401, 'POV_REALTIME_UNAUTHORIZED'), `${name}: 401`)
  }
  t.equal(server.app.povRealtime.stats().connections, 0, 'no socket opened')
  t.equal(server.app.povRealtime.stats().authFailures, Object.keys(attempts).length, 'every refusal is counted')
})

t.test('more than one token, or a bearer entry without pov-realtime.v1, is a 400', async (t) => {
  const server = await startServer(t)
  const token = await server.wsToken()
  const other = await server.wsToken({ userId: 'u2' })
  const attempts: Record<string, [string, UpgradeOptions]> = {
    'a token in both the query and the subprotocol': [`${server.wsUrl}?token=${token}`, { protocols: ['pov-realtime.v1', `bearer.${token}`] }],
    'two bearer entries': [server.wsUrl, { protocols: ['pov-realtime.v1', `bearer.${token}`, `bearer.${other}`] }],
    'two ?token= parameters': [`${server.wsUrl}?token=${token}&token=${other}`, {}],
    'a bearer entry alone': [server.wsUrl, { protocols: [`bearer.${token}`] }],
    'a bearer entry with another subprotocol only': [server.wsUrl, { protocols: ['chat.v2', `bearer.${token}`] }]
  }
  for (const [name, [url, options]] of Object.entries(attempts)) {
    t.match(answer(await attemptUpgrade(t, url, options)), refusal(400, 'POV_REALTIME_BAD_HANDSHAKE'), `${name}: 400`)
  }
  t.equal(server.app.povRealtime.stats().connections, 0, 'no socket opened')
  t.equal(server.app.povRealtime.stats().authFailures, Object.keys(attempts).length, 'every refused upgrade is counted')
})

t.test('a token in the subprotocol opens a socket on which the server selects exactly pov-realtime.v1', async (t) => {
  const server = await startServer(t)
  const token = await server.wsToken()
  const offers: Record<string, string[]> = {
    'ours first': ['pov-realtime.v1', `bearer.${token}`],
    'the bearer entry first': [`bearer.${token}`, 'pov-realtime.v1'],
    'another subprotocol offered first': ['chat.v2', 'pov-realtime.v1', `bearer.${token}`]
  }
  for (const [name, protocols] of Object.entries(offers)) {
    const outcome = await attemptUpgrade(t, server.wsUrl, { protocols })
    if (!outcome.opened) {
      t.fail(`${name}: refused with ${outcome.status} ${outcome.body}`)
      continue
    }
    t.equal(outcome.protocol, 'pov-realtime.v1', `${name}: the client sees pov-realtime.v1 selected`)
    t.equal(outcome.responseHeaders['sec-websocket-protocol'], 'pov-realtime.v1', `${name}: the 101 names only pov-realtime.v1`)
  }
})

t.test('the app sees a subprotocol upgrade without its bearer entry, and the socket carries the token\'s user', async (t) => {
  const seen: Array<{ user: PovRealtimeUser, protocolHeader: unknown }> = []
  const hookSaw: unknown[] = []
  const server = await startServer(t, {
    authorizeSubscription (user, _povId, request) {
      seen.push({ user, protocolHeader: request.headers['sec-websocket-protocol'] })
      return true
    }
  }, (app) => {
    app.addHook('onRequest', async (request: FastifyRequest) => { if (request.headers.upgrade) hookSaw.push(request.headers['sec-websocket-protocol']) })
  })
  const client = await server.connect({ claims: { userId: 'u9', email: 'u9@example.com', role: 'admin' } })
  t.equal(client.ws.protocol, 'pov-realtime.v1')
  t.same(hookSaw, ['pov-realtime.v1'], 'the app\'s hooks see the offer without the bearer entry')
  t.match(await client.subscribe('p1'), { type: 'subscribed', povId: 'p1' })
  t.same(seen, [{ user: { userId: 'u9', email: 'u9@example.com', role: 'admin' }, protocolHeader: undefined }],
    'authorizeSubscription\'s view leaves the handshake\'s headers out')
  await server.app.broadcastActivity(activity('p1', { id: 'a1' }))
  t.match(await client.next('activity'), { data: { id: 'a1', povId: 'p1' } }, 'the socket receives activities')
})

t.test('a token in ?token= opens a socket, and the app sees the other query parameters but not the token', async (t) => {
  const seen: Array<{ query: unknown, url: string }> = []
  const server = await startServer(t, {
    authorizeSubscription (_user, _povId, request) {
      seen.push({ query: Object.fromEntries(new URL(request.url, 'http://localhost').searchParams), url: request.url })
      return true
    }
  })
  const token = await server.wsToken()
  const outcome = await attemptUpgrade(t, `${server.wsUrl}?client=cli&token=${encodeURIComponent(token)}&v=2`)
  if (!outcome.opened) throw new Error(`refused with ${outcome.status}: ${outcome.body}`)
  t.equal(outcome.protocol, '', 'no subprotocol was offered, none is selected')
  const subscribed = nextEvent<[Buffer]>(outcome.ws, 'message', 'the socket opened with ?token=')
  outcome.ws.send(JSON.stringify({ type: 'subscribe', povId: 'p1' }))
  t.match(JSON.parse((await subscribed)[0].toString()), { type: 'subscribed', povId: 'p1' })
  t.same(seen, [{ query: { client: 'cli', v: '2' }, url: '/ws?client=cli&v=2' }])
})

t.test('allowedOrigins as an array: a disallowed Origin is a 403, an allowed one or none passes', async (t) => {
  const server = await startServer(t, { allowedOrigins: ['https://app.example.com'] })
  const token = await server.wsToken()
  const [url, options] = viaProtocol(server, token)
  t.match(answer(await attemptUpgrade(t, url, { ...options, headers: { origin: 'https://evil.example.com' } })),
    refusal(403, 'POV_REALTIME_FORBIDDEN_ORIGIN'), 'a disallowed Origin with a valid token: 403')
  t.match(answer(await attemptUpgrade(t, url, { ...options, headers: { origin: 'null' } })),
    refusal(403, 'POV_REALTIME_FORBIDDEN_ORIGIN'), 'the opaque Origin "null": 403')
  t.equal(server.app.povRealtime.stats().connections, 0, 'no socket opened for a disallowed Origin')
  t.equal(server.app.povRealtime.stats().authFailures, 2, 'each refused upgrade is counted')
  t.ok((await attemptUpgrade(t, url, { ...options, headers: { origin: 'https://app.example.com' } })).opened, 'an allowed Origin passes')
  t.ok((await attemptUpgrade(t, url, options)).opened, 'no Origin header (a non-browser client) passes')
  t.equal(server.app.povRealtime.stats().connections, 2)
})

t.test('allowedOrigins as a predicate: it decides for each Origin sent, and no Origin passes', async (t) => {
  const asked: string[] = []
  const server = await startServer(t, {
    allowedOrigins: (origin) => {
      asked.push(origin)
      return origin.endsWith('.example.com')
    }
  })
  const [url, options] = viaQuery(server, await server.wsToken())
  t.match(answer(await attemptUpgrade(t, url, { ...options, headers: { origin: 'https://example.com.evil.test' } })),
    refusal(403, 'POV_REALTIME_FORBIDDEN_ORIGIN'), 'an Origin the predicate refuses: 403')
  t.ok((await attemptUpgrade(t, url, { ...options, headers: { origin: 'https://app.example.com' } })).opened, 'an Origin the predicate allows passes')
  t.ok((await attemptUpgrade(t, url, options)).opened, 'no Origin header passes')
  t.same(asked, ['https://example.com.evil.test', 'https://app.example.com'], 'the predicate is asked only about Origins actually sent')
  t.equal(server.app.povRealtime.stats().connections, 2)
})

t.test('an upgrade to a path the plugin does not serve is answered, its connection closed, and close() still finishes', async (t) => {
  // The server is closed by the test itself: a connection left behind would make a teardown `close()` hang forever.
  const server = await startServer({ teardown () {} })
  const socket = connectTcp(server.port, '127.0.0.1')
  socket.on('error', () => {})
  let response = ''
  socket.setEncoding('utf8')
  socket.on('data', (chunk: string) => { response += chunk })
  const closedByServer = new Promise<boolean>((resolve) => {
    socket.once('end', () => resolve(true))
    setTimeout(() => resolve(false), 3000).unref()
  })
  socket.write([
    'GET /elsewhere HTTP/1.1', `Host: 127.0.0.1:${server.port}`, 'Connection: Upgrade', 'Upgrade: websocket',
    'Sec-WebSocket-Version: 13', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==', '', ''
  ].join('\r\n'))
  // The client keeps its end open, as a careless or hostile one would: the server must not keep the socket.
  t.ok(await closedByServer, 'the server closed the connection within 3 s')
  t.match(response, /^HTTP\/1\.1 404 /, 'the upgrade was answered with a 404')
  socket.destroy()
  const shutdown = await Promise.race([server.app.close().then(() => 'closed'), sleep(5000).then(() => 'still closing')])
  t.equal(shutdown, 'closed', 'fastify.close() finishes within 5 s once the client has gone')
})
