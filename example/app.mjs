/**
 * The example app: a Fastify server with a demo sign-in, an activity "database" and PoV membership, and the
 * plugin registered the way a user registers it (presence and read receipts on, with the unread-counts route the page
 * uses; `authorizeSubscription` asking the membership, and `revoke` when a user leaves a PoV).
 * `server.mjs` runs it (`npm start`); the end-to-end test starts and stops it in-process through the same functions.
 */
import { randomUUID } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import fastifyCookie from '@fastify/cookie'
import fastifyJwt from '@fastify/jwt'
import { Type } from '@sinclair/typebox'
import Fastify from 'fastify'
import povRealtime, { SEVERITIES } from 'fastify-pov-realtime'
import { ActivityStore } from './activity-store.mjs'
import { bundlePage } from './bundle.mjs'
import { DEMO_POVS } from './demo-povs.mjs'

/** The cookie the plugin reads by default (`cookieName`), holding the app's own access token. */
const ACCESS_COOKIE = 'accessToken'
const SESSION_SECONDS = 8 * 60 * 60
const PUBLIC_DIR = new URL('./public/', import.meta.url)

const SignInBody = Type.Object({
  userName: Type.String({ minLength: 1, maxLength: 32, pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]*$' })
})

const PovParams = Type.Object({ povId: Type.String() })

const NewActivityBody = Type.Object({
  // Made by the page, so that its optimistic copy and the server's copy share an id and are reconciled.
  id: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9_-]{8,64}$' })),
  title: Type.String({ minLength: 1, maxLength: 120 }),
  message: Type.String({ maxLength: 2000 }),
  severity: Type.Optional(Type.Union(SEVERITIES.map((severity) => Type.Literal(severity))))
})

/**
 * Builds the example app without listening (so a test may `inject` before the port opens).
 * @param {object} options
 * @param {string} options.secret signs the `accessToken` cookie (the plugin signs its WebSocket tokens with a key derived
 *   from it, so the routes below refuse a WebSocket token as a session)
 * @param {ActivityStore} [options.store=new ActivityStore()] the activity "database"; pass one to keep it across restarts
 * @param {import('fastify').FastifyServerOptions['logger']} [options.logger=false]
 * @returns {Promise<import('fastify').FastifyInstance>}
 */
export async function buildExampleApp ({ secret, store = new ActivityStore(), logger = false }) {
  const app = Fastify({ logger })
  // The demo's membership: everyone is on every demo PoV until they leave it (a real app keeps this in its database).
  /** @type {Map<string, Set<string>>} user → the PoVs they left */
  const leftPovs = new Map()
  /** @param {string} userId @param {string} povId */
  const isMember = (userId, povId) => leftPovs.get(userId)?.has(povId) !== true

  // The app's own auth: its access token lives in an HttpOnly cookie, read by @fastify/jwt for the app's routes
  // and by the plugin's token route, which exchanges it for a short-lived WebSocket token.
  await app.register(fastifyCookie)
  await app.register(fastifyJwt, {
    secret,
    cookie: { cookieName: ACCESS_COOKIE, signed: false },
    sign: { algorithm: 'HS256', expiresIn: SESSION_SECONDS }
  })
  await app.register(povRealtime, {
    secret,
    // Who is on each PoV, idle or active, and who is typing. `info` is what every other watcher of the PoV sees of a
    // member: the demo's display name (its sign-in name), never anything private such as an e-mail.
    presence: { info: (user) => ({ name: user.userId }) },
    // Read marks per user and PoV: unread badges, "seen by", and `GET /api/unread` below.
    readReceipts: true,
    // The app's own rule for who may watch a PoV, asked at each subscribe. Leaving a PoV changes the rule *and* calls
    // `revoke` (below), which ends the subscriptions the user already has.
    authorizeSubscription: (user, povId) => isMember(user.userId, povId)
  })

  app.post('/api/demo/sign-in', { schema: { body: SignInBody } }, async (request, reply) => {
    // A demo: anyone may sign in as anyone. A real app checks a password or an identity provider here.
    const { userName } = request.body
    const token = await reply.jwtSign({ userId: userName, role: 'member' })
    reply.setCookie(ACCESS_COOKIE, token, {
      path: '/',
      httpOnly: true,
      sameSite: 'lax',
      secure: request.protocol === 'https',
      maxAge: SESSION_SECONDS
    })
    return { userId: userName }
  })

  app.post('/api/demo/sign-out', async (request, reply) => {
    reply.clearCookie(ACCESS_COOKIE, { path: '/' })
    return { signedOut: true }
  })

  // The page's "am I signed in?" question at load. Nobody signed in is an answer (`{ userId: null }`, 200), not an
  // error, so a first visit shows no failed request in the browser's console. A cookie that does not verify (made
  // with another secret, expired) is refused (401) and cleared, so the next load is a plain "signed out".
  app.get('/api/me', async (request, reply) => {
    if (request.cookies[ACCESS_COOKIE] === undefined) return { userId: null }
    try {
      await request.jwtVerify()
    } catch (err) {
      reply.clearCookie(ACCESS_COOKIE, { path: '/' })
      throw err
    }
    return { userId: request.user.userId }
  })

  await app.register(async function signedInRoutes (api) {
    api.addHook('onRequest', (request) => request.jwtVerify())

    api.get('/api/povs', async () => ({ povs: DEMO_POVS }))

    // The signed-in user's unread count on every demo PoV: `{ [povId]: { readCursor, unread } }`, only the caller's own
    // marks. This page has no need of it (its PoV list watches each of the three PoVs, so its badges are live); an app
    // listing many PoVs asks it for those it does not watch.
    api.get('/api/unread', async (request) =>
      app.povRealtime.unreadCounts(request.user.userId, DEMO_POVS.map((pov) => pov.id)))

    api.get('/api/povs/:povId/activities', { schema: { params: PovParams } }, async (request, reply) => {
      const { povId } = request.params
      if (!isDemoPov(povId)) return noSuchPov(reply, povId)
      if (!isMember(request.user.userId, povId)) return notAMember(reply, povId)
      return { activities: store.list(povId) }
    })

    // Leaving a PoV: the membership changes first (so that a subscribe from now on is refused), then `revoke` ends
    // the user's live subscriptions on every instance: their pages get `unsubscribed` with `reason: 'revoked'`.
    api.post('/api/povs/:povId/leave', { schema: { params: PovParams } }, async (request, reply) => {
      const { povId } = request.params
      if (!isDemoPov(povId)) return noSuchPov(reply, povId)
      const { userId } = request.user
      if (!leftPovs.has(userId)) leftPovs.set(userId, new Set())
      leftPovs.get(userId).add(povId)
      await app.povRealtime.revoke({ userId, povId })
      return { left: povId }
    })

    // Joining again: the page then watches the PoV anew (a revoked PoV is not subscribed again by itself).
    api.post('/api/povs/:povId/join', { schema: { params: PovParams } }, async (request, reply) => {
      const { povId } = request.params
      if (!isDemoPov(povId)) return noSuchPov(reply, povId)
      leftPovs.get(request.user.userId)?.delete(povId)
      return { joined: povId }
    })

    api.post('/api/povs/:povId/activities', { schema: { params: PovParams, body: NewActivityBody } }, async (request, reply) => {
      const { povId } = request.params
      if (!isDemoPov(povId)) return noSuchPov(reply, povId)
      if (!isMember(request.user.userId, povId)) return notAMember(reply, povId)
      const { id = randomUUID(), title, message, severity } = request.body
      if (store.has(povId, id)) {
        return reply.code(409).send({ statusCode: 409, error: 'Conflict', message: `Activity ${id} already exists` })
      }
      const activity = {
        id,
        type: 'note',
        action: 'created',
        povId,
        userId: request.user.userId,
        title,
        message,
        ...(severity ? { severity } : {}),
        createdAt: new Date().toISOString()
      }
      // Store first, then broadcast: a page that reloads the feed after a missed broadcast finds it in the store.
      store.add(activity)
      const { cursor } = await app.broadcastActivity(activity)
      return reply.code(201).send({ activity, cursor })
    })
  })

  app.get('/', (request, reply) => sendPublicFile(reply, 'index.html', 'text/html; charset=utf-8'))
  app.get('/bundle.js', (request, reply) => sendPublicFile(reply, 'bundle.js', 'text/javascript; charset=utf-8'))
  app.get('/bundle.js.map', (request, reply) => sendPublicFile(reply, 'bundle.js.map', 'application/json'))

  return app
}

/**
 * Bundles the page, builds the example app and listens.
 * @param {object} options
 * @param {number} [options.port=3000] `0` picks a free port
 * @param {string} [options.host='127.0.0.1']
 * @param {string} options.secret
 * @param {ActivityStore} [options.store=new ActivityStore()]
 * @param {import('fastify').FastifyServerOptions['logger']} [options.logger=false]
 * @returns {Promise<{ app: import('fastify').FastifyInstance, store: ActivityStore, url: string, port: number, close: () => Promise<void> }>}
 */
export async function startExampleServer ({ port = 3000, host = '127.0.0.1', store = new ActivityStore(), ...appOptions }) {
  await bundlePage()
  const app = await buildExampleApp({ ...appOptions, store })
  await app.listen({ port, host })
  const address = app.server.address()
  const boundPort = typeof address === 'object' && address ? address.port : port
  const urlHost = host.includes(':') ? `[${host}]` : host
  return { app, store, url: `http://${urlHost}:${boundPort}`, port: boundPort, close: () => app.close() }
}

/** @param {string} povId */
function isDemoPov (povId) {
  return DEMO_POVS.some((pov) => pov.id === povId)
}

/**
 * @param {import('fastify').FastifyReply} reply
 * @param {string} povId
 */
function noSuchPov (reply, povId) {
  return reply.code(404).send({ statusCode: 404, error: 'Not Found', message: `No PoV ${JSON.stringify(povId)}` })
}

/**
 * @param {import('fastify').FastifyReply} reply
 * @param {string} povId
 */
function notAMember (reply, povId) {
  return reply.code(403).send({ statusCode: 403, error: 'Forbidden', message: `You left ${JSON.stringify(povId)}; join it again to see it` })
}

/**
 * @param {import('fastify').FastifyReply} reply
 * @param {string} name a file of `public/`
 * @param {string} contentType
 */
async function sendPublicFile (reply, name, contentType) {
  try {
    const body = await readFile(new URL(name, PUBLIC_DIR))
    return reply.type(contentType).header('cache-control', 'no-cache').send(body)
  } catch (err) {
    if (err.code !== 'ENOENT') throw err
    return reply.code(404).type('text/plain').send(`${name} is missing: it is built by "npm start" (example/bundle.mjs)`)
  }
}
