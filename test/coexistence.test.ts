/**
 * The plugin inside an app that uses @fastify/cookie, @fastify/jwt and @fastify/websocket itself: cookie and jwt
 * registered before or after it, @fastify/websocket before it (the plugin registers @fastify/websocket at the app's
 * level when it is absent, as mercurius does, so an app that registers it later gets a loud error at start-up).
 * The app's own JWTs, cookies and WebSocket route keep working, and so does the plugin.
 */
import fastifyCookie from '@fastify/cookie'
import fastifyJwt from '@fastify/jwt'
import fastifyWebsocket from '@fastify/websocket'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import type { FastifyInstance } from 'fastify'
import t, { type Test } from 'tap'
import { TestClient } from './helpers/client.js'
import { SECRET, accessToken, activity, startServer, type TestServer } from './helpers/server.js'
import { attemptUpgrade } from './helpers/upgrade.js'
import { closed, opened } from './helpers/socket-waits.js'

const run = promisify(execFile)

/** The app's own secret, for its own JWTs (not the one the plugin is given). */
const APP_SECRET = 'the-app-has-a-secret-of-its-own-for-its-jwts'

/** The app's own @fastify/websocket, with a bigger frame limit than the plugin's, to show the plugin keeps its own. */
async function appWebsocket (app: FastifyInstance): Promise<void> {
  await app.register(fastifyWebsocket, { options: { maxPayload: 1024 * 1024 } })
}

/** The app's own plugins and routes: its JWT login, a cookie route and a WebSocket echo route. */
async function appOwnParts (app: FastifyInstance): Promise<void> {
  await app.register(fastifyCookie)
  await app.register(fastifyJwt, { secret: APP_SECRET })
  app.post('/app/login', async (_request, reply) => ({ token: await reply.jwtSign({ user: 'alice' }) }))
  app.get('/app/me', async (request) => {
    await request.jwtVerify()
    return { user: request.user }
  })
  app.get('/app/signed', async () => ({ token: app.jwt.sign({ user: 'bob' }), verified: app.jwt.verify(app.jwt.sign({ user: 'bob' })) }))
  app.get('/app/prefs', async (request, reply) => {
    reply.setCookie('theme', 'dark', { path: '/' })
    return { cookies: request.cookies }
  })
  // The broadcast pattern of @fastify/websocket's README: every client of the app's WebSocket server.
  app.post('/app/broadcast', async () => {
    for (const client of app.websocketServer.clients) client.send(JSON.stringify({ type: 'app-news' }))
    return { sent: app.websocketServer.clients.size }
  })
  app.get('/app/ws', { websocket: true }, (socket) => {
    socket.on('message', (data) => socket.send(JSON.stringify({ type: 'echo', text: data.toString() })))
  })
}

/** Everything the app does with its own plugins still works. */
async function assertAppWorks (t: Test, server: TestServer): Promise<void> {
  const login = await fetch(`${server.httpUrl}/app/login`, { method: 'POST' })
  t.equal(login.status, 200, 'the app signs its own JWTs')
  const { token: appJwt } = await login.json() as { token: string }
  const me = await fetch(`${server.httpUrl}/app/me`, { headers: { authorization: `Bearer ${appJwt}` } })
  t.equal(me.status, 200, 'the app verifies its own JWTs with request.jwtVerify()')
  t.match(await me.json(), { user: { user: 'alice' } })
  t.match(await (await fetch(`${server.httpUrl}/app/signed`)).json(), { token: String, verified: { user: 'bob' } }, 'app.jwt.sign/verify work')
  const withPluginSecret = await fetch(`${server.httpUrl}/app/me`, { headers: { authorization: `Bearer ${accessToken()}` } })
  t.equal(withPluginSecret.status, 401, 'the app\'s jwt still uses the app\'s secret, not the plugin\'s')

  const prefs = await fetch(`${server.httpUrl}/app/prefs`, { headers: { cookie: 'session=abc' } })
  t.match(await prefs.json(), { cookies: { session: 'abc' } }, 'the app reads its cookies')
  t.match(prefs.headers.get('set-cookie'), /^theme=dark/, 'the app sets its cookies')

  const echo = new TestClient(`ws://127.0.0.1:${server.port}/app/ws`)
  t.teardown(() => echo.terminate())
  await opened(echo)
  t.equal(echo.ws.protocol, '', 'the app\'s own WebSocket route opens without the plugin\'s token')
  t.match(await echo.request('hi', 'echo'), { text: 'hi' }, 'the app\'s own WebSocket route works')
  echo.close()
  await closed(echo)
}

/** The plugin's token route, upgrade checks and activities work, and it keeps its own frame limit. */
async function assertPluginWorks (t: Test, server: TestServer): Promise<void> {
  const appJwtCookie = await fetch(`${server.httpUrl}/api/auth/ws-token`, {
    headers: { cookie: `accessToken=${server.app.jwt.sign({ userId: 'u1' })}` }
  })
  t.equal(appJwtCookie.status, 401, 'the token route does not take a JWT signed with the app\'s own secret')
  const refused = await attemptUpgrade(t, server.wsUrl, { protocols: ['pov-realtime.v1', `bearer.${server.app.jwt.sign({ userId: 'u1', sub: 'u1', aud: 'pov-realtime' })}`] })
  t.equal(refused.opened ? 101 : refused.status, 401, 'the upgrade does not take a token signed with the app\'s secret')

  const viaProtocol = await server.connect()
  const viaQuery = await server.connect({ via: 'query' })
  t.equal(viaProtocol.ws.protocol, 'pov-realtime.v1')
  for (const client of [viaProtocol, viaQuery]) t.match(await client.subscribe('p1'), { type: 'subscribed', povId: 'p1' })
  const { delivered } = await server.app.broadcastActivity(activity('p1', { id: 'a1' }))
  t.equal(delivered, 2, 'the activity reached both sockets')
  for (const client of [viaProtocol, viaQuery]) t.match(await client.next('activity'), { data: { id: 'a1', povId: 'p1' } })

  viaQuery.send(JSON.stringify({ type: 'ping', padding: 'x'.repeat(20_000) }))
  t.match(await closed(viaQuery), { code: 1009 }, 'the plugin\'s maxPayload holds though the app\'s @fastify/websocket allows more')
}

async function appAllBefore (app: FastifyInstance): Promise<void> {
  await appWebsocket(app)
  await appOwnParts(app)
}

/** Two servers: the app's cookie and jwt registered before the plugin, and after it (its websocket before, always). */
async function inBothOrders (t: Test): Promise<Array<[order: string, server: TestServer]>> {
  return [
    ['before', await startServer(t, {}, appAllBefore)],
    ['after', await startServer(t, {}, appWebsocket, appOwnParts)]
  ]
}

t.test('cookie, jwt and websocket registered by the app BEFORE the plugin: both keep working', async (t) => {
  const server = await startServer(t, {}, appAllBefore)
  await assertAppWorks(t, server)
  await assertPluginWorks(t, server)
})

t.test('cookie and jwt registered by the app AFTER the plugin: both keep working', async (t) => {
  const server = await startServer(t, {}, appWebsocket, appOwnParts)
  await assertAppWorks(t, server)
  await assertPluginWorks(t, server)
})

t.test('@fastify/websocket registered by the app AFTER the plugin fails start-up loudly, not silently', async (t) => {
  // @fastify/websocket throws from inside its plugin function, which surfaces as an uncaught exception: the app
  // process dies at start-up. Run such an app in a child process and look at how it ends.
  const script = `
    import Fastify from 'fastify'
    import fastifyWebsocket from '@fastify/websocket'
    import povRealtime from 'fastify-pov-realtime'
    const app = Fastify()
    await app.register(povRealtime, { secret: '${SECRET}' })
    await app.register(fastifyWebsocket)
    await app.ready()
    console.log('started')
  `
  const result = await run(process.execPath, ['--input-type=module', '-e', script], { cwd: process.cwd() }).then(
    ({ stdout }) => ({ failed: false, output: stdout }),
    (err: { stdout: string, stderr: string }) => ({ failed: true, output: err.stdout + err.stderr })
  )
  t.ok(result.failed, 'the app does not start')
  t.match(result.output, /FST_ERR_DEC_ALREADY_PRESENT/, 'with fastify\'s error naming the clash')
  t.notMatch(result.output, /started/)
})

t.test('the app\'s own fastify.jwt is not given the plugin\'s JWT namespaces', async (t) => {
  for (const [order, server] of await inBothOrders(t)) {
    t.same(Object.keys(server.app.jwt).filter((key) => /povRealtime/i.test(key)), [], `app plugins registered ${order}`)
  }
})

t.test('a refused upgrade is checked, counted and logged once, whoever registered @fastify/websocket', async (t) => {
  for (const [order, server] of await inBothOrders(t)) {
    const refused = await attemptUpgrade(t, server.wsUrl, { protocols: ['pov-realtime.v1', 'bearer.not-a-jwt'] })
    t.equal(refused.opened ? 101 : refused.status, 401, `${order}: 401`)
    t.equal(server.app.povRealtime.stats().authFailures, 1, `${order}: counted once`)
    t.equal(server.logs.filter((line) => line.includes('websocket token refused')).length, 1, `${order}: logged once`)
  }
})

/** A client of the plugin subscribed to p1, and a client of the app's own WebSocket route. */
async function connectBoth (t: Test, server: TestServer): Promise<{ ours: TestClient, theirs: TestClient }> {
  const ours = await server.connect()
  await ours.subscribe('p1')
  const theirs = new TestClient(`ws://127.0.0.1:${server.port}/app/ws`)
  t.teardown(() => theirs.terminate())
  await opened(theirs)
  return { ours, theirs }
}

t.test('connections log no warning or error, whoever registered @fastify/websocket', async (t) => {
  for (const [order, server] of await inBothOrders(t)) {
    const { theirs } = await connectBoth(t, server)
    await theirs.request('hi', 'echo')
    const problems = server.logs.filter((line) => (JSON.parse(line) as { level: number }).level >= 40)
    t.same(problems, [], `app plugins registered ${order}: no warn or error line`)
  }
})

t.test('an app broadcasting to every client of its own WebSocket server does not reach the plugin\'s sockets', async (t) => {
  for (const [order, server] of await inBothOrders(t)) {
    const { ours, theirs } = await connectBoth(t, server)
    const response = await fetch(`${server.httpUrl}/app/broadcast`, { method: 'POST' })
    t.match(await response.json(), { sent: 1 }, `${order}: the app's server counts only its own client`)
    await theirs.next('app-news')
    // A ping answered after the broadcast proves that anything sent to our socket before it has arrived.
    await ours.request({ type: 'ping' }, 'pong')
    t.same(ours.messages.filter((message) => message.type === 'app-news'), [], `${order}: the plugin's socket got none of the app's messages`)
  }
})

t.test('fastify.close() sends the plugin\'s sockets 1001, whoever registered @fastify/websocket', async (t) => {
  const setups: Array<[string, (t: Test) => Promise<TestServer>]> = [
    ['the plugin itself', (t) => startServer(t)],
    ['the app, with its cookie and jwt before the plugin', (t) => startServer(t, {}, appAllBefore)],
    ['the app, with its cookie and jwt after the plugin', (t) => startServer(t, {}, appWebsocket, appOwnParts)]
  ]
  for (const [who, start] of setups) {
    await t.test(`@fastify/websocket registered by ${who}`, async (t) => {
      const server = await start(t)
      const client = await server.connect()
      await client.subscribe('p1')
      await server.app.close()
      t.match(await closed(client), { code: 1001 }, 'the socket is closed with 1001 (going away)')
    })
  }
})
