import t from 'tap'
import type { PovRealtimeUser, UpgradeRequestView } from '../index.js'
import { activity, sleep, startServer, waitFor } from './helpers/server.js'
import { closed } from './helpers/socket-waits.js'

t.test('authorizeSubscription receives the token user, the povId and a view of the upgrade request', async (t) => {
  const calls: Array<{ user: PovRealtimeUser, povId: string, request: UpgradeRequestView }> = []
  const server = await startServer(t, {
    authorizeSubscription: (user, povId, request) => {
      calls.push({ user, povId, request })
      return true
    }
  })
  const client = await server.connect({
    claims: { userId: 'u7', email: 'u7@example.com', role: 'admin' },
    headers: { 'x-tenant': 'acme' }
  })
  t.same(await client.subscribe('p1'), { type: 'subscribed', povId: 'p1' })
  t.equal(calls.length, 1)
  const [call] = calls
  t.same(call!.user, { userId: 'u7', email: 'u7@example.com', role: 'admin' })
  t.equal(call!.povId, 'p1')
  const { request } = call!
  t.equal(request.headers['x-tenant'], 'acme', 'the upgrade request\'s headers')
  t.notOk('sec-websocket-key' in request.headers || 'upgrade' in request.headers, 'but not those of the handshake itself')
  t.equal(request.url, '/ws')
  t.equal(request.ip, '127.0.0.1')
  t.match(request.id, /^req-/, 'the request id of the upgrade\'s log lines')
  t.ok(Object.isFrozen(request) && Object.isFrozen(request.headers), 'a read-only copy')
  t.notOk('raw' in request || 'log' in request, 'not the live FastifyRequest')
  t.equal((await server.app.broadcastActivity(activity('p1'))).delivered, 1)
})

t.test('an asynchronous approval subscribes the socket', async (t) => {
  const server = await startServer(t, {
    authorizeSubscription: async (user, povId) => {
      await sleep(100)
      return user.role === 'member' && povId.startsWith('team-')
    }
  })
  const client = await server.connect()
  t.same(await client.subscribe('team-1'), { type: 'subscribed', povId: 'team-1' })
  const result = await server.app.broadcastActivity(activity('team-1'))
  t.equal(result.delivered, 1)
  t.equal((await client.next('activity')).cursor, result.cursor)
  t.match(await client.subscribe('other'), { type: 'error', code: 'FORBIDDEN', povId: 'other' }, 'and an asynchronous refusal refuses')
})

t.test('a subscription is refused with FORBIDDEN unless authorizeSubscription answers exactly true', async (t) => {
  const refusals: Record<string, () => unknown> = {
    false: () => false,
    'a promise of false': async () => false,
    'a rejected promise': () => Promise.reject(new Error('database down')),
    'a throw': () => { throw new Error('bug in the app') },
    'the number 1': () => 1,
    'an object': () => ({}),
    "the string 'true'": () => 'true',
    'a promise of an object': async () => ({ allowed: true }),
    undefined: () => undefined
  }
  const povIds = Object.keys(refusals).map((_, i) => `secret-${i}`)
  const byPov = new Map(povIds.map((povId, i) => [povId, Object.values(refusals)[i]!]))
  const server = await startServer(t, {
    authorizeSubscription: (_user, povId) => (povId === 'open' ? true : byPov.get(povId)!()) as boolean
  })
  const client = await server.connect()
  await client.subscribe('open')
  for (const [i, name] of Object.keys(refusals).entries()) {
    t.match(await client.subscribe(povIds[i]!), { type: 'error', code: 'FORBIDDEN', povId: povIds[i], message: String }, name)
    t.same(await client.request({ type: 'ping' }, 'pong'), { type: 'pong' }, `${name}: the socket stays open`)
  }
  for (const povId of povIds) t.equal((await server.app.broadcastActivity(activity(povId))).delivered, 0, `nothing delivered for ${povId}`)
  const sentinel = await server.app.broadcastActivity(activity('open'))
  await client.next((m) => m.type === 'activity' && m.cursor === sentinel.cursor)
  t.same(client.activities().map((data) => data.povId), ['open'], 'no activity of a refused PoV reached the socket')
  const stats = server.app.povRealtime.stats()
  t.equal(stats.rejected.FORBIDDEN, povIds.length)
  t.equal(stats.subscriptions, 1)
})

t.test('activity published while a refusal is being decided never reaches the socket', async (t) => {
  let decide: (allowed: boolean) => void = () => {}
  let asked: () => void = () => {}
  const askedOnce = new Promise<void>((resolve) => { asked = resolve })
  const server = await startServer(t, {
    authorizeSubscription: (_user, povId) => povId === 'open' || new Promise<boolean>((resolve) => {
      decide = resolve
      asked()
    })
  })
  const client = await server.connect()
  await client.subscribe('open')
  const answer = client.subscribe('secret')
  await askedOnce
  for (let i = 0; i < 5; i++) await server.app.broadcastActivity(activity('secret'))
  decide(false)
  t.match(await answer, { code: 'FORBIDDEN', povId: 'secret' })
  await server.app.broadcastActivity(activity('secret'))
  const sentinel = await server.app.broadcastActivity(activity('open'))
  await client.next((m) => m.type === 'activity' && m.cursor === sentinel.cursor)
  t.same(client.activities('secret'), [])
})

t.test('a refused PoV stays refused when asked again, and a since cursor replays nothing', async (t) => {
  const server = await startServer(t, { authorizeSubscription: (_user, povId) => povId !== 'secret' })
  const client = await server.connect()
  const earlier = await server.app.broadcastActivity(activity('secret'))
  await server.app.broadcastActivity(activity('secret'))
  t.match(await client.subscribe('secret'), { code: 'FORBIDDEN', povId: 'secret' })
  t.match(await client.subscribe('secret'), { code: 'FORBIDDEN', povId: 'secret' }, 'asked again')
  t.match(await client.subscribe('secret', earlier.cursor), { code: 'FORBIDDEN', povId: 'secret' }, 'no replay either')
  await client.subscribe('open')
  const sentinel = await server.app.broadcastActivity(activity('open'))
  await client.next((m) => m.type === 'activity' && m.cursor === sentinel.cursor)
  t.same(client.activities('secret'), [])
})

t.test('authorizeSubscription is asked per socket: another user may be refused the PoV a first one watches', async (t) => {
  const server = await startServer(t, { authorizeSubscription: (user) => user.userId === 'owner' })
  const owner = await server.connect({ claims: { userId: 'owner' } })
  const stranger = await server.connect({ claims: { userId: 'stranger' } })
  t.same(await owner.subscribe('p1'), { type: 'subscribed', povId: 'p1' })
  t.match(await stranger.subscribe('p1'), { code: 'FORBIDDEN', povId: 'p1' })
  const result = await server.app.broadcastActivity(activity('p1'))
  t.equal(result.delivered, 1)
  await owner.next('activity')
  await stranger.request({ type: 'ping' }, 'pong')
  t.same(stranger.activities(), [])
})

t.test('a socket that closes while its subscription is being authorized leaves no subscription behind', async (t) => {
  let approve: (allowed: boolean) => void = () => {}
  let asked: () => void = () => {}
  const askedOnce = new Promise<void>((resolve) => { asked = resolve })
  const server = await startServer(t, {
    authorizeSubscription: () => new Promise<boolean>((resolve) => {
      approve = resolve
      asked()
    })
  })
  const client = await server.connect()
  client.send({ type: 'subscribe', povId: 'p1' })
  await askedOnce
  client.close()
  await closed(client)
  await waitFor(() => server.app.povRealtime.stats().connections === 0, 5000, 'the socket to be forgotten')
  approve(true) // too late: the socket has gone
  await sleep(50)
  t.match(server.app.povRealtime.stats(), { connections: 0, subscriptions: 0, povs: 0 })
  t.equal((await server.app.broadcastActivity(activity('p1'))).delivered, 0)
})

t.test('after an in-band auth, authorizeSubscription sees the refreshed claims', async (t) => {
  const roles: Array<string | undefined> = []
  const server = await startServer(t, {
    authorizeSubscription: (user) => {
      roles.push(user.role)
      return user.role === 'admin'
    }
  })
  const client = await server.connect({ claims: { userId: 'u1', role: 'member' } })
  t.match(await client.subscribe('p1'), { code: 'FORBIDDEN', povId: 'p1' })
  await client.request({ type: 'auth', token: await server.wsToken({ userId: 'u1', role: 'admin' }) }, 'authenticated')
  t.same(await client.subscribe('p1'), { type: 'subscribed', povId: 'p1' })
  t.same(roles, ['member', 'admin'])
})
