/**
 * No credential ever reaches a log line (PROTOCOL.md: "The token must never reach a log line"), and every refused
 * credential leaves exactly one log line that says why, with the request id, never the credential itself.
 * The harness captures every line the server writes, at trace level, in `server.logs`.
 */
import t from 'tap'
import { accessToken, activity, socketToken, startServer, waitFor, type TestServer } from './helpers/server.js'
import { attemptUpgrade, jwtSegments } from './helpers/upgrade.js'

interface LogLine { msg?: string, reqId?: string, reason?: unknown, req?: { url?: string }, [key: string]: unknown }

const logLines = (server: TestServer): LogLine[] => server.logs.map((line) => JSON.parse(line) as LogLine)

/** The recognisable parts of a JWT: the whole, its claims segment and its signature segment. */
function secretParts (jwt: string): string[] {
  const { payload, signature } = jwtSegments(jwt)
  return [jwt, encodeURIComponent(jwt), payload, signature]
}

/** Fails for each log line that contains any recognisable part of any of `jwts`. */
function assertNotLogged (t: { notOk (value: unknown, message: string): void }, server: TestServer, jwts: Record<string, string>): void {
  for (const [name, jwt] of Object.entries(jwts)) {
    const leaking = server.logs.filter((line) => secretParts(jwt).some((part) => line.includes(part)))
    t.notOk(leaking.length, `no log line contains ${name} or a part of it${leaking.length ? `; found: ${leaking.join('')}` : ''}`)
  }
}

/** The URLs logged for requests to `path`, whatever their query. */
function loggedUrls (server: TestServer, path: string): string[] {
  return logLines(server).map((line) => line.req?.url).filter((url): url is string => url !== undefined && url.split('?')[0] === path)
}

t.test('the access cookie and the WebSocket token, sent either way, never reach a log line', async (t) => {
  const server = await startServer(t)
  const cookie = accessToken({ userId: 'u1' })
  const fetchToken = async () => {
    const response = await fetch(`${server.httpUrl}/api/auth/ws-token`, { headers: { cookie: `accessToken=${cookie}` } })
    t.equal(response.status, 200, 'the token route answers')
    return (await response.json() as { token: string }).token
  }
  const protocolToken = await fetchToken()
  const queryToken = await fetchToken()
  const refreshToken = await fetchToken()
  const viaProtocol = await server.connect({ token: protocolToken, via: 'protocol' })
  const viaQuery = await server.connect({ token: queryToken, via: 'query' })
  for (const client of [viaProtocol, viaQuery]) t.match(await client.subscribe('p1'), { type: 'subscribed' })
  t.match(await viaQuery.request({ type: 'auth', token: refreshToken }, 'authenticated'), { type: 'authenticated' }, 'an in-band refresh works')
  await server.app.broadcastActivity(activity('p1'))
  for (const client of [viaProtocol, viaQuery]) await client.next('activity')
  viaProtocol.close()
  viaQuery.close()
  await waitFor(() => server.app.povRealtime.stats().connections === 0, 5000, 'both sockets to go')

  t.equal(loggedUrls(server, '/ws').length, 2, 'both upgrades were logged (so the check below looks at them)')
  t.same(loggedUrls(server, '/ws').filter((url) => url.includes('token=')), [], 'no logged upgrade URL has token=')
  t.ok(server.logs.length > 0 && logLines(server).some((line) => line.req?.url === '/api/auth/ws-token'), 'the token route requests were logged')
  assertNotLogged(t, server, {
    'the access cookie': cookie,
    'the subprotocol token': protocolToken,
    'the query token': queryToken,
    'the in-band refresh token': refreshToken
  })
})

t.test('a token in ?token= is taken out of the logged URL, the other parameters stay', async (t) => {
  const server = await startServer(t)
  const token = await server.wsToken()
  const outcome = await attemptUpgrade(t, `${server.wsUrl}?client=cli&token=${encodeURIComponent(token)}&v=2`)
  t.ok(outcome.opened, 'the socket opened')
  t.same(loggedUrls(server, '/ws'), ['/ws?client=cli&v=2'])
  assertNotLogged(t, server, { 'the query token': token })
})

t.test('a token in the query of a percent-encoded path to the socket route is not logged either', async (t) => {
  const server = await startServer(t)
  const token = await server.wsToken()
  // `/%77s` is `/ws`: the router decodes it and serves the socket route, so its token is honoured, and must be hidden.
  const outcome = await attemptUpgrade(t, `ws://127.0.0.1:${server.port}/%77s?token=${encodeURIComponent(token)}`)
  t.ok(outcome.opened, 'the socket route served the upgrade')
  assertNotLogged(t, server, { 'the query token': token })
})

t.test('an app that logs every URL and header it sees never sees the WebSocket token', async (t) => {
  const server = await startServer(t, {}, (app) => {
    app.addHook('onRequest', async (request) => {
      const { cookie: _redacted, ...headers } = request.headers
      const rawHeaders = request.raw.rawHeaders.filter((_, i, all) => all[i - (i % 2)]!.toLowerCase() !== 'cookie')
      request.log.trace({ url: request.url, rawUrl: request.raw.url, headers, rawHeaders }, 'app: request seen')
    })
  })
  const protocolToken = await server.wsToken()
  const queryToken = await server.wsToken()
  await server.connect({ token: protocolToken, via: 'protocol' })
  await server.connect({ token: queryToken, via: 'query' })
  const seen = logLines(server).filter((line) => line.msg === 'app: request seen' && line.url?.toString().startsWith('/ws'))
  t.equal(seen.length, 2, 'the app saw both upgrades')
  t.same(seen.map((line) => (line.headers as Record<string, unknown>)['sec-websocket-protocol']), ['pov-realtime.v1', undefined],
    'the subprotocol header the app sees has no bearer entry')
  assertNotLogged(t, server, { 'the subprotocol token': protocolToken, 'the query token': queryToken })
})

t.test('every refused credential is logged once with its reason and request id, counted, and never logged itself', async (t) => {
  const server = await startServer(t)
  const now = Math.floor(Date.now() / 1000)
  const refused = {
    expiredCookie: accessToken({}, { expiresIn: -10_000 }),
    forgedCookie: accessToken({}, { key: 'another-secret-that-is-also-long-enough!!' }),
    expiredToken: socketToken({ iat: now - 7200, exp: now - 60 }),
    forgedToken: socketToken({}, { key: 'another-secret-that-is-also-long-enough!!' }),
    accessAsToken: accessToken(),
    first: await server.wsToken(),
    second: await server.wsToken({ userId: 'u2' })
  }
  const routeStatuses = [
    (await fetch(`${server.httpUrl}/api/auth/ws-token`)).status,
    (await fetch(`${server.httpUrl}/api/auth/ws-token`, { headers: { cookie: `accessToken=${refused.expiredCookie}` } })).status,
    (await fetch(`${server.httpUrl}/api/auth/ws-token`, { headers: { cookie: `accessToken=${refused.forgedCookie}` } })).status
  ]
  t.same(routeStatuses, [401, 401, 401], 'the token route refused the missing, expired and forged cookies')
  const upgrades = await Promise.all([
    attemptUpgrade(t, server.wsUrl),
    attemptUpgrade(t, server.wsUrl, { protocols: ['pov-realtime.v1', `bearer.${refused.expiredToken}`] }),
    attemptUpgrade(t, `${server.wsUrl}?token=${refused.forgedToken}`),
    attemptUpgrade(t, `${server.wsUrl}?token=${refused.accessAsToken}`),
    attemptUpgrade(t, `${server.wsUrl}?token=${refused.first}`, { protocols: ['pov-realtime.v1', `bearer.${refused.second}`] })
  ])
  t.same(upgrades.map((outcome) => outcome.opened ? 101 : outcome.status), [401, 401, 401, 401, 400], 'the upgrades were refused')
  const refusals = routeStatuses.length + upgrades.length

  const refusalLines = logLines(server).filter((line) => /refused/.test(line.msg ?? ''))
  t.equal(refusalLines.length, refusals, 'one refusal line per refused request')
  t.equal(new Set(refusalLines.map((line) => line.reqId)).size, refusals, 'each from its own request')
  for (const line of refusalLines) t.match(line, { reqId: /^req-/, reason: /^[a-z-]+$/ }, `${line.msg}: reason and reqId`)
  t.equal(server.app.povRealtime.stats().authFailures, refusals, 'each refusal is counted in authFailures')
  t.equal(server.app.povRealtime.stats().connections, 0)
  assertNotLogged(t, server, refused)
})

t.test('a refused in-band token is logged once with its reason, and never logged itself', async (t) => {
  const server = await startServer(t)
  const client = await server.connect()
  const forged = socketToken({}, { key: 'another-secret-that-is-also-long-enough!!' })
  t.match(await client.request({ type: 'auth', token: forged }, 'error'), { type: 'error', code: 'INVALID_TOKEN' })
  const refusalLines = logLines(server).filter((line) => /refused/.test(line.msg ?? ''))
  t.equal(refusalLines.length, 1, 'one refusal line')
  t.match(refusalLines[0], { reqId: /^req-/, reason: /^[a-z-]+$/ })
  assertNotLogged(t, server, { 'the refused in-band token': forged })
})
