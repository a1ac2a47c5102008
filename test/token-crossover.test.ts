/**
 * Tokens cannot cross over (PROTOCOL.md, "Additions"): a WebSocket token is signed with a key derived from `secret`, so
 * an app that verifies its own sessions with `secret` (the example app, the usual @fastify/jwt set-up) refuses it, and
 * an access token signed with `secret` never opens a socket. Real servers on loopback; the example app as built.
 */
import { randomBytes } from 'node:crypto'
import fastifyCookie from '@fastify/cookie'
import fastifyJwt from '@fastify/jwt'
import { createVerifier } from 'fast-jwt'
import t from 'tap'
import { buildExampleApp } from '../example/app.mjs'
import { deriveSocketTokenKey } from '../lib/auth/socket-token-key.js'
import { accessToken, SECRET, socketToken, startServer } from './helpers/server.js'
import { attemptUpgrade } from './helpers/upgrade.js'

/** Fetches `path` with `cookie` as the `accessToken` cookie (and `init`'s method and JSON body). */
async function withCookie (url: string, cookie: string, init: { method?: string, body?: unknown } = {}): Promise<number> {
  const response = await fetch(url, {
    method: init.method ?? 'GET',
    headers: { cookie: `accessToken=${cookie}`, ...(init.body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: init.body === undefined ? undefined : JSON.stringify(init.body)
  })
  await response.arrayBuffer()
  return response.status
}

/** The refusal reasons logged since `from` (a log length) for `what` ('access token' or 'websocket token'). */
function reasonsSince (logs: readonly string[], from: number, what: string): Array<string | undefined> {
  return logs.slice(from).map((line) => JSON.parse(line) as { reason?: string, msg: string })
    .filter((line) => line.msg === `pov-realtime: ${what} refused`).map((line) => line.reason)
}

t.test('the example app\'s own routes refuse a WebSocket token presented as their access cookie', async (t) => {
  const secret = randomBytes(32).toString('base64url')
  const app = await buildExampleApp({ secret })
  t.teardown(() => app.close())
  await app.listen({ port: 0, host: '127.0.0.1' })
  const address = app.server.address()
  const origin = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`

  const signIn = await fetch(`${origin}/api/demo/sign-in`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ userName: 'alice' })
  })
  t.equal(signIn.status, 200, 'signed in')
  const session = /accessToken=([^;]+)/.exec(signIn.headers.get('set-cookie') ?? '')?.[1] ?? ''
  const minted = await fetch(`${origin}/api/auth/ws-token`, { headers: { cookie: `accessToken=${session}` } })
  t.equal(minted.status, 200, 'the token route exchanges the session for a WebSocket token')
  const { token } = await minted.json() as { token: string }
  const socket = await attemptUpgrade(t, `ws://${origin.slice('http://'.length)}/ws`, { protocols: ['pov-realtime.v1', `bearer.${token}`] })
  t.ok(socket.opened, 'the WebSocket token opens a socket')

  const routes: Array<[what: string, path: string, init?: { method: string, body: unknown }]> = [
    ['GET /api/me', '/api/me'],
    ['GET /api/unread', '/api/unread'],
    ['POST an activity', '/api/povs/billing-migration/activities', { method: 'POST', body: { title: 'Hi', message: 'From a socket token' } }]
  ]
  for (const [what, path, init] of routes) {
    t.equal(await withCookie(origin + path, session, init), what.startsWith('POST') ? 201 : 200, `${what}: the session is accepted`)
    t.equal(await withCookie(origin + path, token, init), 401, `${what}: the WebSocket token is refused`)
  }
  const activities = await (await fetch(`${origin}/api/povs/billing-migration/activities`, { headers: { cookie: `accessToken=${session}` } })).json() as { activities: Array<{ message: string }> }
  t.equal(activities.activities.filter((activity) => activity.message === 'From a socket token').length, 1,
    'only the session\'s post was stored')
  t.equal(await withCookie(`${origin}/api/auth/ws-token`, token), 401, 'and the token route does not exchange it for another')
})

t.test('an app that verifies its sessions with @fastify/jwt and the same secret refuses a WebSocket token', async (t) => {
  const server = await startServer(t, {}, async (app) => {
    await app.register(fastifyCookie)
    await app.register(fastifyJwt, { secret: SECRET, cookie: { cookieName: 'accessToken', signed: false } })
    app.get('/app/me', { onRequest: (request) => request.jwtVerify() }, async (request) => request.user)
    app.get('/app/bearer', { onRequest: (request) => request.jwtVerify({ onlyCookie: false }) }, async (request) => request.user)
  })
  const token = await server.wsToken({ userId: 'u1' })
  t.equal(await withCookie(`${server.httpUrl}/app/me`, accessToken()), 200, 'the app takes its own access cookie')
  t.equal(await withCookie(`${server.httpUrl}/app/me`, token), 401, 'the WebSocket token as the cookie: 401')
  const bearer = await fetch(`${server.httpUrl}/app/bearer`, { headers: { authorization: `Bearer ${token}` } })
  t.equal(bearer.status, 401, 'the WebSocket token as a bearer header: 401')
  t.throws(() => server.app.jwt.verify(token), { code: 'FAST_JWT_INVALID_SIGNATURE' }, 'app.jwt.verify refuses it')

  const logged = server.logs.length
  const exchanged = await fetch(`${server.httpUrl}/api/auth/ws-token`, { headers: { cookie: `accessToken=${token}` } })
  t.equal(exchanged.status, 401, 'the token route does not take it as an access cookie')
  t.same(reasonsSince(server.logs, logged, 'access token'), ['websocket-token-as-access-token'], 'and says why in the log')
})

t.test('an access token signed with the secret is refused on the upgrade, with 401, before any socket opens', async (t) => {
  const server = await startServer(t)
  const cookies: Record<string, string> = {
    'the access cookie': accessToken(),
    // What an app could sign with `secret` (or an older version of the plugin did): every claim of a WebSocket token.
    'an access token with every WebSocket token claim': socketToken({}, { key: SECRET })
  }
  for (const [what, cookie] of Object.entries(cookies)) {
    for (const [transport, url, protocols] of [
      ['subprotocol', server.wsUrl, ['pov-realtime.v1', `bearer.${cookie}`]],
      ['query', `${server.wsUrl}?token=${cookie}`, undefined]
    ] as const) {
      const logged = server.logs.length
      const outcome = await attemptUpgrade(t, url, { protocols: protocols ? [...protocols] : undefined })
      t.equal(outcome.opened ? 101 : outcome.status, 401, `${what} via ${transport}: 401`)
      t.same(reasonsSince(server.logs, logged, 'websocket token'), ['access-token-as-websocket-token'], `${what} via ${transport}: logged why`)
    }
  }
  t.equal(server.app.povRealtime.stats().connections, 0, 'no socket opened')
  t.equal(server.app.povRealtime.stats().authFailures, 4, 'each refusal is counted')
})

t.test('the WebSocket token is signed with the key derived from the secret, the same on every instance', async (t) => {
  const first = await startServer(t)
  const second = await startServer(t)
  const token = await first.wsToken()
  t.throws(() => createVerifier({ key: SECRET })(token), { code: 'FAST_JWT_INVALID_SIGNATURE' }, 'not signed with the secret')
  t.match(createVerifier({ key: deriveSocketTokenKey(SECRET), allowedAud: 'pov-realtime' })(token), { userId: 'u1', aud: 'pov-realtime' },
    'signed with the derived key')
  t.equal(deriveSocketTokenKey(SECRET).length, 32, 'a 256-bit key')
  t.not(deriveSocketTokenKey(SECRET).toString('hex'), deriveSocketTokenKey(`${SECRET}x`).toString('hex'), 'another secret, another key')
  const elsewhere = await attemptUpgrade(t, second.wsUrl, { protocols: ['pov-realtime.v1', `bearer.${token}`] })
  t.ok(elsewhere.opened, 'another instance with the same secret accepts it')
})
