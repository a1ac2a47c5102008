import t from 'tap'
import { accessToken, socketToken, startServer } from './helpers/server.js'

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
