/**
 * The per-user and per-socket fairness limits (PROTOCOL.md, Additions, "Fairness limits"), over real sockets: each at
 * its edge and one past it, counted in `stats().limitTrips`, and logged once at warn with the user id (never a token).
 */
import t from 'tap'
import { STATUS_CHANGE_LIMIT } from '../lib/constants.js'
import { member, membersSeen, settle } from './helpers/presence.js'
import { sleep, startServer, waitFor, type TestServer } from './helpers/server.js'
import { attemptUpgrade, type UpgradeOutcome } from './helpers/upgrade.js'

/** The log lines at warn that name `limit`, parsed. */
function warnings (server: TestServer, limit: string): Array<Record<string, unknown>> {
  return server.logs.map((line) => JSON.parse(line) as Record<string, unknown>)
    .filter((line) => line.level === 40 && line.limit === limit)
}

async function upgradeWith (t: Parameters<typeof attemptUpgrade>[0], server: TestServer, token: string): Promise<UpgradeOutcome> {
  return await attemptUpgrade(t, server.wsUrl, { protocols: ['pov-realtime.v1', `bearer.${token}`] })
}

t.test('maxSocketsPerUser: up to the limit the sockets open; one more gets HTTP 429 with a JSON body, and no socket', async (t) => {
  const server = await startServer(t, { maxSocketsPerUser: 3 })
  const token = await server.wsToken({ userId: 'alice' })
  const opened: UpgradeOutcome[] = []
  for (let i = 0; i < 3; i++) opened.push(await upgradeWith(t, server, token))
  t.ok(opened.every((outcome) => outcome.opened), 'three sockets of one user open: the edge')
  t.equal(server.app.povRealtime.stats().limitTrips.maxSocketsPerUser, 0)

  const refused = await upgradeWith(t, server, token)
  if (refused.opened) throw new Error('the fourth socket opened')
  t.equal(refused.status, 429, 'the fourth is refused with 429')
  t.match(refused.headers['content-type'], /^application\/json/)
  t.same(JSON.parse(refused.body), {
    statusCode: 429,
    code: 'POV_REALTIME_TOO_MANY_SOCKETS',
    error: 'FastifyError',
    message: 'Too many sockets for this user: at most 3 per server instance'
  })
  t.match(server.app.povRealtime.stats(), { connections: 3, authFailures: 0, limitTrips: { maxSocketsPerUser: 1 } })

  t.ok((await upgradeWith(t, server, await server.wsToken({ userId: 'bob' }))).opened, 'another user is not affected')

  t.notOk((await upgradeWith(t, server, token)).opened, 'alice is refused again')
  t.equal(server.app.povRealtime.stats().limitTrips.maxSocketsPerUser, 2, 'each refusal is a trip')
  const logged = warnings(server, 'maxSocketsPerUser')
  t.equal(logged.length, 1, 'logged once while alice stays at the limit')
  t.match(logged[0], { userId: 'alice', max: 3 })
  t.notOk(server.logs.some((line) => line.includes(token)), 'the token never reaches a log line')

  const [first] = opened
  if (!first?.opened) throw new Error('unreachable')
  first.ws.close()
  await waitFor(() => server.app.povRealtime.stats().connections === 3, 5000, 'alice\'s closed socket to be forgotten')
  t.ok((await upgradeWith(t, server, token)).opened, 'a closed socket frees its place')
  t.notOk((await upgradeWith(t, server, token)).opened, 'and the limit holds again')
  t.equal(warnings(server, 'maxSocketsPerUser').length, 2, 'a new spell at the limit is logged again')
})

t.test('maxSocketsPerUser holds for upgrades in flight at once', async (t) => {
  const server = await startServer(t, { maxSocketsPerUser: 3 })
  const token = await server.wsToken({ userId: 'alice' })
  const outcomes = await Promise.all(Array.from({ length: 10 }, () => upgradeWith(t, server, token)))
  t.equal(outcomes.filter((outcome) => outcome.opened).length, 3, 'three open')
  t.same(outcomes.filter((outcome) => !outcome.opened).map((outcome) => !outcome.opened && outcome.status), Array(7).fill(429),
    'seven are refused with 429')
  t.equal(server.app.povRealtime.stats().connections, 3)
})

t.test('maxSocketsPerUser has a default for a real app: 32', async (t) => {
  const server = await startServer(t)
  const token = await server.wsToken({ userId: 'alice' })
  const outcomes = await Promise.all(Array.from({ length: 33 }, () => upgradeWith(t, server, token)))
  t.equal(outcomes.filter((outcome) => outcome.opened).length, 32)
  t.equal(server.app.povRealtime.stats().limitTrips.maxSocketsPerUser, 1)
})

t.test('maxSubscriptions: each refusal is a trip; logged once per socket, at warn, with the user id', async (t) => {
  const server = await startServer(t, { maxSubscriptions: 2 })
  const client = await server.connect({ claims: { userId: 'alice' } })
  t.match(await client.subscribe('p1'), { type: 'subscribed' })
  t.match(await client.subscribe('p2'), { type: 'subscribed' }, 'the edge')
  t.equal(server.app.povRealtime.stats().limitTrips.maxSubscriptions, 0)
  t.match(await client.subscribe('p3'), { type: 'error', code: 'SUBSCRIPTION_LIMIT' }, 'one past it')
  t.match(await client.subscribe('p4'), { type: 'error', code: 'SUBSCRIPTION_LIMIT' })
  t.equal(server.app.povRealtime.stats().limitTrips.maxSubscriptions, 2)
  const logged = warnings(server, 'maxSubscriptions')
  t.equal(logged.length, 1, 'one log line for the socket')
  t.match(logged[0], { userId: 'alice', max: 2 })

  const other = await server.connect({ claims: { userId: 'alice' } })
  await other.subscribe('p1')
  await other.subscribe('p2')
  t.match(await other.subscribe('p3'), { code: 'SUBSCRIPTION_LIMIT' })
  t.equal(warnings(server, 'maxSubscriptions').length, 2, 'another socket of the same user is logged on its own')
})

t.test(`status changes: ${STATUS_CHANGE_LIMIT.max} per window go out at once; past that the newest waits for the window's end`, async (t) => {
  const server = await startServer(t, { presence: true, rateLimit: false })
  const watcher = await server.connect({ claims: { userId: 'w' } })
  const toggler = await server.connect({ claims: { userId: 'alice' } })
  await watcher.subscribe('p1')
  await toggler.subscribe('p1')
  await settle(watcher, toggler)
  const started = Date.now()
  let status: 'active' | 'idle' = 'active'
  const toggle = async (): Promise<void> => {
    status = status === 'active' ? 'idle' : 'active'
    toggler.send({ type: 'status', status })
    await settle(watcher, toggler) // one diff window per change, so each change shows on its own
  }
  for (let i = 0; i < STATUS_CHANGE_LIMIT.max; i++) {
    await toggle()
    t.same(membersSeen(watcher, 'p1'), [member('alice', status), member('w')], `change ${i + 1} is seen at once`)
  }
  t.equal(server.app.povRealtime.stats().limitTrips.statusChanges, 0, 'the edge')

  const before = status
  await toggle()
  t.same(membersSeen(watcher, 'p1'), [member('alice', before), member('w')], 'one past it: the change is held back')
  await toggle()
  await toggle()
  t.same(membersSeen(watcher, 'p1'), [member('alice', before), member('w')], 'and so are the next ones')
  t.ok(Date.now() - started < STATUS_CHANGE_LIMIT.timeWindow, 'all inside one window')
  t.equal(server.app.povRealtime.stats().limitTrips.statusChanges, 1, 'one trip: the changes wait together')
  const logged = warnings(server, 'statusChanges')
  t.equal(logged.length, 1)
  t.match(logged[0], { userId: 'alice', max: STATUS_CHANGE_LIMIT.max })

  await waitFor(() => membersSeen(watcher, 'p1')[0]?.status === status, STATUS_CHANGE_LIMIT.timeWindow + 2000,
    'the newest status to be applied when the window ends')
  t.ok(Date.now() - started >= STATUS_CHANGE_LIMIT.timeWindow - 100, 'not before the window ended')
  t.same(membersSeen(watcher, 'p1'), [member('alice', status), member('w')], 'the members see the newest status, never a wrong one')
  await sleep(100)
})
