/**
 * The plugin's options (PROTOCOL.md, "Registering the plugin"): malformed ones fail registration with a coded error
 * that names the option; the custom ones change what users see end to end.
 */
import Fastify, { type FastifyPluginAsync, type FastifyRequest } from 'fastify'
import t from 'tap'
import povRealtime, { type PovRealtimeOptions, type PovRealtimeUser } from '../index.js'
import { accessToken, activity, SECRET, startServer, waitFor } from './helpers/server.js'
import { attemptUpgrade, jwtSegments } from './helpers/upgrade.js'
import { closed } from './helpers/socket-waits.js'

/** The error that registering the plugin with `options` (on top of a valid secret) fails with, if any. */
async function registrationError (options: Record<string, unknown>): Promise<unknown> {
  const app = Fastify({ logger: false })
  try {
    await app.register(povRealtime, { secret: SECRET, ...options } as unknown as PovRealtimeOptions)
    await app.ready()
    return undefined
  } catch (err) {
    return err
  } finally {
    await app.close().catch(() => {})
  }
}

const claimsOf = (jwt: string) => JSON.parse(Buffer.from(jwtSegments(jwt).payload, 'base64url').toString()) as Record<string, unknown>

const completeBroker = {
  start () {},
  async publish () { return { cursor: '1', delivered: 0 } },
  watch () {},
  unwatch () {},
  async replay () { return { recovered: false, entries: [] } },
  async close () {}
}

const completeReadMarks = {
  start () {},
  async markRead () { return null },
  async reads () { return [] },
  async markOf () { return null },
  async unreadAfter () { return null }
}

const completeRelay = {
  instanceId: 'i1',
  start () {},
  announce () {},
  typing () {},
  async members () { return [] }
}

/** Malformed options, each with the option name its error must mention. */
const malformed: Array<[what: string, options: Record<string, unknown>, names: string]> = [
  ['no secret', { secret: undefined }, 'secret'],
  ['an empty secret', { secret: '' }, 'secret'],
  ['a secret that is not a string', { secret: 42 }, 'secret'],
  ...['heartbeatInterval', 'maxPayload', 'maxSubscriptions', 'maxBufferedBytes', 'maxSocketsPerUser'].flatMap((name) =>
    [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, '1000'].map((value): [string, Record<string, unknown>, string] =>
      [`${name}: ${String(value)} (${typeof value})`, { [name]: value }, name])),
  ...['abc', 0, '500ms', -60, 0.5, ''].map((value): [string, Record<string, unknown>, string] =>
    [`tokenExpiresIn: ${JSON.stringify(value)}`, { tokenExpiresIn: value }, 'tokenExpiresIn']),
  ['allowedOrigins as a single string', { allowedOrigins: 'https://app.example.com' }, 'allowedOrigins'],
  ['allowedOrigins with a non-string entry', { allowedOrigins: ['https://app.example.com', 42] }, 'allowedOrigins'],
  ['allowedOrigins as an object', { allowedOrigins: { 'https://app.example.com': true } }, 'allowedOrigins'],
  ['allowedOrigins: null', { allowedOrigins: null }, 'allowedOrigins'],
  ['rateLimit.max: 0', { rateLimit: { max: 0, timeWindow: 1000 } }, 'rateLimit.max'],
  ['rateLimit.max: 1.5', { rateLimit: { max: 1.5 } }, 'rateLimit.max'],
  ['rateLimit.max as a string', { rateLimit: { max: '10' } }, 'rateLimit.max'],
  ['rateLimit.timeWindow: -1', { rateLimit: { max: 10, timeWindow: -1 } }, 'rateLimit.timeWindow'],
  ['rateLimit as a string', { rateLimit: 'fast' }, 'rateLimit'],
  ['rateLimit as a number', { rateLimit: 10 }, 'rateLimit'],
  ['rateLimit as an array', { rateLimit: [10, 1000] }, 'rateLimit'],
  ['history.size: 0', { history: { size: 0 } }, 'history.size'],
  ['history.size: 2.5', { history: { size: 2.5 } }, 'history.size'],
  ['history.ttl: -5', { history: { ttl: -5 } }, 'history.ttl'],
  ['history.maxBytes: 0', { history: { maxBytes: 0 } }, 'history.maxBytes'],
  ['history.maxBytes: 1.5', { history: { maxBytes: 1.5 } }, 'history.maxBytes'],
  ['history.maxBytes as a string', { history: { maxBytes: '1mb' } }, 'history.maxBytes'],
  ['history.maxTotalBytes: -1', { history: { maxTotalBytes: -1 } }, 'history.maxTotalBytes'],
  ['history.maxTotalBytes: Infinity', { history: { maxTotalBytes: Number.POSITIVE_INFINITY } }, 'history.maxTotalBytes'],
  ['history as a string', { history: 'on' }, 'history'],
  ['history as a number', { history: 100 }, 'history'],
  ['a broker with no methods', { broker: {} }, 'broker'],
  ['a broker without watch()', { broker: { ...completeBroker, watch: undefined } }, 'watch'],
  ['a broker without close()', { broker: { ...completeBroker, close: 'yes' } }, 'close'],
  ['a broker given as a URL string', { broker: 'redis://127.0.0.1:6379' }, 'broker'],
  ['broker: null', { broker: null }, 'broker'],
  ['equal routes', { tokenRoute: '/realtime', wsRoute: '/realtime' }, 'wsRoute'],
  ['a tokenRoute without a leading slash', { tokenRoute: 'api/ws-token' }, 'tokenRoute'],
  ['an empty wsRoute', { wsRoute: '' }, 'wsRoute'],
  ['an empty cookieName', { cookieName: '' }, 'cookieName'],
  ['verifyAccessToken that is not a function', { verifyAccessToken: 'jwt' }, 'verifyAccessToken'],
  ['authorizeSubscription that is not a function', { authorizeSubscription: true }, 'authorizeSubscription'],
  ['readReceipts as a string', { readReceipts: 'yes' }, 'readReceipts'],
  ['readReceipts with a broker that stores no read marks', { readReceipts: true, broker: completeBroker }, 'readReceipts'],
  ['readReceipts with a broker whose readMarks lacks unreadAfter()',
    { readReceipts: true, broker: { ...completeBroker, readMarks: { ...completeReadMarks, unreadAfter: undefined } } }, 'readReceipts'],
  ['presence as a string', { presence: 'on' }, 'presence'],
  ['presence as an array', { presence: [] }, 'presence'],
  ['presence.typingTimeout: 0', { presence: { typingTimeout: 0 } }, 'presence.typingTimeout'],
  ['presence.typingTimeout as a string', { presence: { typingTimeout: '5s' } }, 'presence.typingTimeout'],
  ['presence.info that is not a function', { presence: { info: { name: 'x' } } }, 'presence.info'],
  ['presence with a custom broker that has no presence relay', { presence: true, broker: completeBroker }, 'presence'],
  ['presence with a broker whose relay lacks members()', { presence: true, broker: { ...completeBroker, presence: { ...completeRelay, members: undefined } } }, 'members'],
  ['presence with a broker whose relay has no instanceId', { presence: true, broker: { ...completeBroker, presence: { ...completeRelay, instanceId: 7 } } }, 'instanceId']
]

t.test('malformed options fail registration with POV_REALTIME_INVALID_OPTION naming the option', async (t) => {
  for (const [what, options, name] of malformed) {
    const escaped = name.replace(/\./g, '\\.')
    t.match(await registrationError(options), {
      code: 'POV_REALTIME_INVALID_OPTION',
      message: new RegExp(`(^|[^\\w.])${escaped}([^\\w]|$)`)
    }, what)
  }
})

t.test('registering with no options at all fails with the coded error that asks for a secret', async (t) => {
  const app = Fastify({ logger: false })
  // As a JavaScript caller would, without the types that insist on options.
  app.register(povRealtime as unknown as FastifyPluginAsync)
  await t.rejects(async () => { await app.ready() }, { code: 'POV_REALTIME_INVALID_OPTION', message: /secret/ })
  await app.close().catch(() => {})
})

t.test('well-formed options register', async (t) => {
  t.equal(await registrationError({
    cookieName: 'session',
    tokenRoute: '/auth/socket-token',
    wsRoute: '/realtime',
    tokenExpiresIn: 90,
    heartbeatInterval: 5000,
    maxPayload: 4096,
    maxSubscriptions: 10,
    rateLimit: { max: 50 },
    maxBufferedBytes: 65_536,
    history: { size: 10, maxBytes: 65_536, maxTotalBytes: 1_048_576 },
    maxSocketsPerUser: 4,
    broker: completeBroker,
    allowedOrigins: (origin: string) => origin === 'https://app.example.com',
    presence: false,
    readReceipts: false
  }), undefined)
  t.equal(await registrationError({ rateLimit: false, history: false, tokenExpiresIn: '15m', allowedOrigins: [] }), undefined)
  t.equal(await registrationError({ readReceipts: true }), undefined, 'read receipts with the default broker')
  t.equal(await registrationError({ readReceipts: true, broker: { ...completeBroker, readMarks: completeReadMarks } }), undefined,
    'read receipts with a broker that stores read marks')
  t.equal(await registrationError({ presence: true }), undefined, 'presence with the in-process broker needs no relay')
  t.equal(await registrationError({ presence: { info: () => ({}), typingTimeout: 1000 } }), undefined)
  t.equal(await registrationError({ presence: true, broker: { ...completeBroker, presence: completeRelay } }), undefined,
    'presence with a custom broker that has a relay')
  t.equal(await registrationError({ broker: completeBroker, presence: false }), undefined, 'a broker without a relay while presence is off')
})

t.test('a custom cookieName is the cookie the token route reads', async (t) => {
  const server = await startServer(t, { cookieName: 'session' })
  const withDefaultName = await fetch(`${server.httpUrl}/api/auth/ws-token`, { headers: { cookie: `accessToken=${accessToken()}` } })
  t.equal(withDefaultName.status, 401, 'the default cookie name is not read')
  const withCustomName = await fetch(`${server.httpUrl}/api/auth/ws-token`, { headers: { cookie: `accessToken=x; session=${accessToken({ userId: 'u5' })}` } })
  t.equal(withCustomName.status, 200, 'the custom cookie is read')
  t.match(claimsOf((await withCustomName.json() as { token: string }).token), { userId: 'u5' })
})

t.test('a custom tokenRoute and wsRoute serve the whole flow, and the default paths are not served', async (t) => {
  const server = await startServer(t, { tokenRoute: '/auth/socket-token', wsRoute: '/realtime' })
  t.equal((await fetch(`${server.httpUrl}/api/auth/ws-token`, { headers: { cookie: `accessToken=${accessToken()}` } })).status, 404,
    'no token route at the default path')
  t.notOk(server.app.hasRoute({ method: 'GET', url: '/ws' }), 'no socket route at the default path')
  const viaProtocol = await server.connect()
  const token = await server.wsToken()
  const viaQuery = await server.connect({ token, via: 'query' })
  for (const client of [viaProtocol, viaQuery]) t.match(await client.subscribe('p1'), { type: 'subscribed', povId: 'p1' })
  await server.app.broadcastActivity(activity('p1', { id: 'a1' }))
  for (const client of [viaProtocol, viaQuery]) t.match(await client.next('activity'), { data: { id: 'a1' } })
  t.notOk(server.logs.some((line) => line.includes(jwtSegments(token).signature)), 'the query token on the custom route is not logged')
})

t.test('tokenExpiresIn as a number is seconds', async (t) => {
  const server = await startServer(t, { tokenExpiresIn: 90 })
  const before = Date.now()
  const response = await fetch(`${server.httpUrl}/api/auth/ws-token`, { headers: { cookie: `accessToken=${accessToken()}` } })
  const { token, expiresAt } = await response.json() as { token: string, expiresAt: number }
  t.ok(expiresAt >= before + 88_000 && expiresAt <= Date.now() + 90_000, `expiresAt is 90 s away (got ${expiresAt - before} ms)`)
  t.equal(claimsOf(token).exp, expiresAt / 1000, 'the token exp says the same')
})

t.test('tokenExpiresIn as a string: a 2s token closes its socket with 4002 and then opens none', async (t) => {
  const server = await startServer(t, { tokenExpiresIn: '2s' })
  const before = Date.now()
  const response = await fetch(`${server.httpUrl}/api/auth/ws-token`, { headers: { cookie: `accessToken=${accessToken()}` } })
  const { token, expiresAt } = await response.json() as { token: string, expiresAt: number }
  // exp is whole seconds, so the token lives between 1 and 2 s from issue.
  t.ok(expiresAt > before && expiresAt <= Date.now() + 2000, `expiresAt is about 2 s away (got ${expiresAt - before} ms)`)
  const client = await server.connect({ token })
  t.match(await closed(client), { code: 4002 }, 'the live socket is closed with 4002 at expiry')
  t.ok(Date.now() >= expiresAt - 50, 'not before the token expired')
  await waitFor(() => Date.now() > expiresAt + 100, 1000, 'the expiry to be clearly past')
  const late = await attemptUpgrade(t, server.wsUrl, { protocols: ['pov-realtime.v1', `bearer.${token}`] })
  t.equal(late.opened ? 101 : late.status, 401, 'the expired token opens no new socket')
})

t.test('a custom verifyAccessToken gets the cookie and the request, and its user ends up in the token', async (t) => {
  const calls: Array<{ token: string, url: string, cookies: unknown }> = []
  const seenBySubscription: PovRealtimeUser[] = []
  const server = await startServer(t, {
    async verifyAccessToken (token, request: FastifyRequest) {
      calls.push({ token, url: request.url, cookies: { ...request.cookies } })
      if (token !== 'opaque-session-42') throw new Error('unknown session')
      return { userId: 'u42', email: 'u42@example.com', role: 'owner' }
    },
    authorizeSubscription (user) {
      seenBySubscription.push(user)
      return true
    }
  })
  const response = await fetch(`${server.httpUrl}/api/auth/ws-token`, { headers: { cookie: 'accessToken=opaque-session-42; theme=dark' } })
  t.equal(response.status, 200, 'an opaque (non-JWT) cookie is accepted by the app\'s own check')
  const { token } = await response.json() as { token: string }
  t.same(calls, [{ token: 'opaque-session-42', url: '/api/auth/ws-token', cookies: { accessToken: 'opaque-session-42', theme: 'dark' } }])
  t.match(claimsOf(token), { userId: 'u42', email: 'u42@example.com', role: 'owner', sub: 'u42', aud: 'pov-realtime' })
  const client = await server.connect({ token })
  await client.subscribe('p1')
  t.same(seenBySubscription, [{ userId: 'u42', email: 'u42@example.com', role: 'owner' }], 'the socket carries that user')

  const jwtCookie = await fetch(`${server.httpUrl}/api/auth/ws-token`, { headers: { cookie: `accessToken=${accessToken()}` } })
  t.equal(jwtCookie.status, 401, 'a cookie the app\'s check refuses is a 401, even a JWT the default check would take')
})

t.test('a custom verifyAccessToken that throws or returns no valid user is a 401', async (t) => {
  const answers: Array<[what: string, answer: () => unknown]> = [
    ['throws', () => { throw new Error('no such session') }],
    ['rejects', () => Promise.reject(new Error('no such session'))],
    ['throws a 401 of its own', () => { throw Object.assign(new Error('expired session'), { statusCode: 401 }) }],
    ['returns null', () => null],
    ['returns undefined', () => undefined],
    ['returns a string', () => 'u1'],
    ['returns no userId', () => ({ email: 'u1@example.com' })],
    ['returns an empty userId', () => ({ userId: '' })],
    ['returns a numeric userId', () => ({ userId: 42 })],
    ['returns a non-string email', () => ({ userId: 'u1', email: ['u1@example.com'] })],
    ['resolves null', async () => null]
  ]
  let current: () => unknown = () => undefined
  const server = await startServer(t, { verifyAccessToken: () => current() as PovRealtimeUser })
  for (const [what, answer] of answers) {
    current = answer
    const response = await fetch(`${server.httpUrl}/api/auth/ws-token`, { headers: { cookie: 'accessToken=some-session' } })
    t.equal(response.status, 401, `${what}: 401`)
    t.match(await response.json(), { statusCode: 401, code: 'POV_REALTIME_UNAUTHORIZED' }, `${what}: coded JSON body`)
  }
  t.equal(server.app.povRealtime.stats().authFailures, answers.length, 'each refusal is counted')
})

t.test('a custom verifyAccessToken that fails with a 503 of its own is a 5xx, not a 401, and leaks no detail', async (t) => {
  const server = await startServer(t, {
    verifyAccessToken () {
      throw Object.assign(new Error('session store at 10.0.0.7 is down'), { statusCode: 503 })
    }
  })
  const response = await fetch(`${server.httpUrl}/api/auth/ws-token`, { headers: { cookie: 'accessToken=some-session' } })
  t.ok(response.status >= 500 && response.status < 600, `a server error (got ${response.status})`)
  const body = await response.text()
  t.match(JSON.parse(body), { statusCode: response.status }, 'a JSON body')
  t.notMatch(body, /10\.0\.0\.7/, 'the internal error message is not sent to the client')
  await t.resolves(waitFor(() => server.logs.some((line) => line.includes('10.0.0.7')), 2000, 'the fault to be logged'),
    'the fault is logged for the operator')
})

t.test('a secret shorter than 32 characters logs one warning at registration; a long enough one none', async (t) => {
  const warningsOf = (logs: readonly string[]) => logs.map((line) => JSON.parse(line) as { level: number, msg: string })
    .filter((line) => line.level === 40 && /secret is shorter than 32 characters/.test(line.msg))
  const short = await startServer(t, { secret: 'x'.repeat(31) })
  for (let i = 0; i < 3; i++) await (await fetch(`${short.httpUrl}/api/auth/ws-token`)).arrayBuffer()
  t.equal(warningsOf(short.logs).length, 1, '31 characters: warned once, not on every request')
  const long = await startServer(t, { secret: 'x'.repeat(32) })
  t.equal(warningsOf(long.logs).length, 0, '32 characters: no warning')
})

t.test('history has byte bounds by default, for a real app: 1 MiB per PoV, 128 MiB per instance; a broker is given them', async (t) => {
  const given: unknown[] = []
  const broker = { ...completeBroker, start (context: { history: unknown }) { given.push(context.history) } }
  t.equal(await registrationError({ broker }), undefined)
  t.equal(await registrationError({ broker, history: { size: 5, maxBytes: 4096 } }), undefined)
  t.same(given, [
    { size: 100, ttl: 600_000, maxBytes: 1024 * 1024, maxTotalBytes: 128 * 1024 * 1024 },
    { size: 5, ttl: 600_000, maxBytes: 4096, maxTotalBytes: 128 * 1024 * 1024 }
  ])
})
