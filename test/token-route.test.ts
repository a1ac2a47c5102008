import type { RouteOptions } from 'fastify'
import t from 'tap'
import { accessToken, socketToken, startServer, type TestServer } from './helpers/server.js'

const decode = (jwt: string) => JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString())

t.test('a valid access cookie is exchanged for a short-lived WebSocket token', async (t) => {
  const server = await startServer(t, { tokenExpiresIn: '2m' })
  const before = Date.now()
  const response = await fetch(`${server.httpUrl}/api/auth/ws-token`, {
    headers: { cookie: `accessToken=${accessToken({ userId: 'u7', email: 'u7@example.com', role: 'admin' })}` }
  })
  t.equal(response.status, 200)
  t.equal(response.headers.get('cache-control'), 'no-store')
  const body = await response.json() as { token: string, expiresAt: number }
  const claims = decode(body.token)
  t.match(claims, { userId: 'u7', email: 'u7@example.com', role: 'admin', sub: 'u7', aud: 'pov-realtime' })
  t.equal(JSON.parse(Buffer.from(body.token.split('.')[0]!, 'base64url').toString()).alg, 'HS256')
  t.equal(claims.exp * 1000, body.expiresAt, 'expiresAt is the token exp in ms')
  t.ok(body.expiresAt > before + 110_000 && body.expiresAt <= Date.now() + 120_000, 'lives about tokenExpiresIn')
})

t.test('the token route declares its responses (200, 401, 5xx) for tools such as @fastify/swagger, and answers by them', async (t) => {
  const routes: RouteOptions[] = []
  // What @fastify/swagger reads: each route's options as registered, through the onRoute hook.
  const server = await startServer(t, {}, (app) => { app.addHook('onRoute', (route) => { routes.push(route) }) })
  const route = routes.find(({ url, method }) => url === '/api/auth/ws-token' && method === 'GET')
  const response = (route?.schema as { response?: Record<string, { properties: Record<string, unknown>, required: string[] }> })?.response
  t.same(Object.keys(response ?? {}).sort(), ['200', '401', '5xx'])
  t.same(Object.keys(response?.[200]?.properties ?? {}).sort(), ['expiresAt', 'token'])
  t.same(response?.[200]?.required.sort(), ['expiresAt', 'token'])
  t.same(Object.keys(response?.[401]?.properties ?? {}).sort(), ['code', 'error', 'message', 'statusCode'])
  t.match(route?.schema, { summary: /WebSocket token/ })

  // The answers, serialized by that schema, are what they were: a token and its expiry, or the whole error body.
  const ok = await server.app.inject({ url: '/api/auth/ws-token', cookies: { accessToken: accessToken({ userId: 'u1' }) } })
  t.equal(ok.statusCode, 200)
  t.same(Object.keys(ok.json()).sort(), ['expiresAt', 'token'])
  t.match(ok.json(), { token: /^[\w-]+\.[\w-]+\.[\w-]+$/, expiresAt: Number })
  t.equal(decode(ok.json().token).exp * 1000, ok.json().expiresAt)
  const refused = await server.app.inject({ url: '/api/auth/ws-token' })
  t.equal(refused.statusCode, 401)
  t.same(refused.json(), {
    statusCode: 401, code: 'POV_REALTIME_UNAUTHORIZED', error: 'FastifyError', message: 'No access token (cookie "accessToken")'
  })
})

t.test('a bad access cookie is a 401 with a JSON body, never a 500', async (t) => {
  const server = await startServer(t)
  const cases: Record<string, string | undefined> = {
    missing: undefined,
    malformed: 'not-a-jwt',
    expired: accessToken({}, { expiresIn: -10_000 }),
    'wrong signature': accessToken({}, { key: 'another-secret-another-secret-another!' }),
    'alg none': `${Buffer.from('{"alg":"none","typ":"JWT"}').toString('base64url')}.${Buffer.from('{"userId":"u1"}').toString('base64url')}.`,
    'websocket token as access cookie': socketToken(),
    'no user id': accessToken({ userId: undefined, sub: undefined })
  }
  for (const [name, cookie] of Object.entries(cases)) {
    const response = await fetch(`${server.httpUrl}/api/auth/ws-token`, cookie === undefined ? {} : { headers: { cookie: `accessToken=${cookie}` } })
    t.equal(response.status, 401, `${name}: 401`)
    t.match(response.headers.get('content-type'), /application\/json/, `${name}: JSON`)
    const body = await response.json() as Record<string, unknown>
    t.match(body, { statusCode: 401, code: 'POV_REALTIME_UNAUTHORIZED', message: String }, `${name}: coded body`)
  }
  t.equal(server.app.povRealtime.stats().authFailures, Object.keys(cases).length, 'each refusal is counted')
  const refusals = server.logs.filter((line) => line.includes('access token refused'))
  t.equal(refusals.length, Object.keys(cases).length, 'each refusal is logged once')
  for (const line of refusals) t.match(JSON.parse(line), { reqId: String, reason: String })
})

/** The token route's answer to `cookie`, and the reasons it logged for refusing it. */
async function exchange (server: TestServer, cookie: string, cookieName = 'accessToken') {
  const logged = server.logs.length
  const response = await fetch(`${server.httpUrl}/api/auth/ws-token`, { headers: { cookie: `${cookieName}=${cookie}` } })
  const reasons = server.logs.slice(logged).map((line) => JSON.parse(line) as { reason?: string, msg: string })
    .filter((line) => line.msg.includes('access token refused')).map((line) => line.reason)
  return { status: response.status, body: await response.json() as Record<string, unknown>, reasons }
}

t.test('a token of the WebSocket audience signed with the app\'s own secret is no access cookie either', async (t) => {
  // The derived key keeps the plugin's own tokens out; one signed with `secret` (by an older version, or by the app)
  // carrying the WebSocket audience must not mint WebSocket tokens.
  const server = await startServer(t)
  const { status, body, reasons } = await exchange(server, accessToken({ userId: 'u1', sub: 'u1', aud: 'pov-realtime' }))
  t.equal(status, 401)
  t.match(body, { code: 'POV_REALTIME_UNAUTHORIZED' })
  t.same(reasons, ['websocket-token-as-access-token'], 'refused for what it is')
})

t.test('an access cookie without exp is a 401, never a token: a leaked one would mint tokens for ever', async (t) => {
  const server = await startServer(t)
  const answer = await exchange(server, accessToken({ exp: undefined }))
  t.equal(answer.status, 401)
  t.match(answer.body, { statusCode: 401, code: 'POV_REALTIME_UNAUTHORIZED' })
  t.notOk('token' in answer.body, 'no token')
  t.same(answer.reasons, ['no-expiry'], 'logged once with its reason')
  t.equal(server.app.povRealtime.stats().authFailures, 1, 'counted')
  t.equal((await exchange(server, accessToken())).status, 200, 'the same cookie with an exp is exchanged')
})

t.test('a userId the plugin cannot carry safely is a 401, never a token, through the default verifier', async (t) => {
  const server = await startServer(t)
  const unsafe: Record<string, Record<string, unknown>> = {
    '257 characters': { userId: 'u'.repeat(257) },
    'a NUL': { userId: 'u1\u0000' },
    'a line feed (a forged log line)': { userId: 'u1\nadmin' },
    DEL: { userId: 'u1\u007f' },
    'a C1 control (NEL)': { userId: 'u1\u0085' },
    'a C1 control (CSI)': { userId: 'u1\u009b31m' },
    'a right-to-left override': { userId: 'admin\u202egnp.exe' },
    'a left-to-right embedding': { userId: '\u202aalice' },
    'a pop directional formatting': { userId: 'alice\u202c' },
    'a right-to-left isolate': { userId: '\u2067alice\u2069' },
    'a first-strong isolate': { userId: '\u2068alice' },
    'a right-to-left mark': { userId: 'alice\u200f' },
    'a left-to-right mark': { userId: '\u200ealice' },
    'an Arabic letter mark': { userId: 'alice\u061c' },
    'in sub, without a userId': { userId: undefined, sub: 'alice\u202e' }
  }
  for (const [what, claims] of Object.entries(unsafe)) {
    const answer = await exchange(server, accessToken(claims))
    t.equal(answer.status, 401, `${what}: 401`)
    t.notOk('token' in answer.body, `${what}: no token`)
    t.same(answer.reasons, ['unsafe-identity'], `${what}: logged once as unsafe-identity`)
  }
  t.equal(server.app.povRealtime.stats().authFailures, Object.keys(unsafe).length, 'each refusal is counted')

  const longest = await exchange(server, accessToken({ userId: 'u'.repeat(256) }))
  t.equal(longest.status, 200, '256 characters is still a userId')
  const unicode = await exchange(server, accessToken({ userId: 'Zoë-ñ 李 عليّ 😀' }))
  t.equal(unicode.status, 200, 'letters of any script, spaces and emoji are fine')
  t.equal(decode(unicode.body.token as string).userId, 'Zoë-ñ 李 عليّ 😀')
})

t.test('a custom verifyAccessToken returning a userId the plugin cannot carry is a 401 too', async (t) => {
  let userId = ''
  const server = await startServer(t, { verifyAccessToken: () => ({ userId }) })
  for (const unsafe of ['u'.repeat(257), 'u1\r\n', 'admin\u202e', '\u2066u1']) {
    userId = unsafe
    const answer = await exchange(server, 'opaque-session')
    t.equal(answer.status, 401, `${JSON.stringify(unsafe.slice(0, 12))}: 401`)
    t.same(answer.reasons, ['unsafe-identity'], 'logged with its reason')
  }
  userId = 'u'.repeat(256)
  t.equal((await exchange(server, 'opaque-session')).status, 200, 'a carriable userId from the app is exchanged')
})

t.test('a 401 from the token route names the cookie it looked for, never the cookie\'s value', async (t) => {
  const cookieName = '__Host-pov-session'
  const server = await startServer(t, { cookieName })
  const missing = await fetch(`${server.httpUrl}/api/auth/ws-token`, { headers: { cookie: `accessToken=${accessToken()}` } })
  t.equal(missing.status, 401, 'the default cookie name is not read when another is configured')
  t.match(await missing.json(), { message: /^No access token.*"__Host-pov-session"/ }, 'missing: names the cookie')
  const bad: Record<string, string> = {
    forged: accessToken({}, { key: 'another-secret-another-secret-another!' }),
    expired: accessToken({}, { expiresIn: -10_000 }),
    'not a JWT': 'secret-session-value-1234',
    'a WebSocket token': socketToken()
  }
  for (const [what, value] of Object.entries(bad)) {
    const answer = await exchange(server, value, cookieName)
    t.equal(answer.status, 401, `${what}: 401`)
    t.match(answer.body.message, /"__Host-pov-session"/, `${what}: names the cookie`)
    const body = JSON.stringify(answer.body)
    for (const part of value.split('.').filter((segment) => segment.length >= 8)) {
      t.notOk(body.includes(part), `${what}: the body holds no part of the cookie's value`)
    }
  }
})
