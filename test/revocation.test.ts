/**
 * Revocation and re-authorization on one instance (PROTOCOL.md, Additions, "Revocation and re-authorization"):
 * `fastify.povRealtime.revoke`, the re-check of a repeated `subscribe`, of an in-band `auth` and of
 * `reauthorizeInterval`, and an `authorizeSubscription` that throws or hangs.
 */
import t from 'tap'
import type { PovRealtimeUser } from '../index.js'
import type { Message, TestClient } from './helpers/client.js'
import { member, membersSeen, settle } from './helpers/presence.js'
import { activity, sleep, startServer, waitFor, type TestServer } from './helpers/server.js'
import { closed } from './helpers/socket-waits.js'

const connectAs = (server: TestServer, userId: string, role = 'member'): Promise<TestClient> =>
  server.connect({ claims: { userId, role } })

/** Every message `client` received about `povId` after its `index`-th message. */
const aboutPovAfter = (client: TestClient, povId: string, index: number): Message[] =>
  client.messages.slice(index).filter((m) => m.povId === povId || (m.data as { povId?: string } | undefined)?.povId === povId)

const revokedOf = (client: TestClient, povId: string) =>
  client.messages.filter((m) => m.type === 'unsubscribed' && m.povId === povId && m.reason === 'revoked')

t.test('revoke({ userId, povId }): every socket of the user stops watching that PoV, and hears nothing of it after', async (t) => {
  const server = await startServer(t, { presence: true, readReceipts: true })
  const tabA = await connectAs(server, 'u1')
  const tabB = await connectAs(server, 'u1')
  const other = await connectAs(server, 'u2')
  for (const client of [tabA, tabB, other]) await client.subscribe('p1')
  await tabA.subscribe('p2')
  await settle(tabA, tabB, other)
  t.same(membersSeen(other, 'p1'), [member('u1'), member('u2')], 'u1 is a member of p1 before')
  const { cursor } = await server.app.broadcastActivity(activity('p1', { id: 'before' }))
  await waitFor(() => tabA.activities('p1').length === 1 && tabB.activities('p1').length === 1, 2000, 'the first activity')

  await server.app.povRealtime.revoke({ userId: 'u1', povId: 'p1' })
  // Right after revoke resolves, before its message has reached the clients: an activity, a read mark, typing and a
  // presence change of p1. None of them may follow the `unsubscribed`.
  const told = [tabA, tabB].map((tab) => tab.next((m) => m.type === 'unsubscribed'))
  await server.app.broadcastActivity(activity('p1', { id: 'after' }))
  other.send({ type: 'read', povId: 'p1', cursor })
  other.send({ type: 'typing', povId: 'p1', typing: true })
  other.send({ type: 'status', status: 'idle' })
  await waitFor(() => other.messages.some((m) => m.type === 'read' && m.userId === 'u2'), 2000, 'the read event')
  await waitFor(() => other.activities('p1').length === 2, 2000, 'the other member gets the activity')
  await settle(tabA, tabB, other)
  const [toldA, toldB] = await Promise.all(told)
  for (const tab of [tabA, tabB]) {
    t.same(revokedOf(tab, 'p1'), [{ type: 'unsubscribed', povId: 'p1', reason: 'revoked' }], 'told once, with the reason')
  }
  t.same(aboutPovAfter(tabA, 'p1', tabA.messages.indexOf(toldA!) + 1), [], 'tab A: no activity, read, typing or presence of p1 after it')
  t.same(aboutPovAfter(tabB, 'p1', tabB.messages.indexOf(toldB!) + 1), [], 'tab B: nothing of p1 either')
  t.same(tabA.activities('p1').map((a) => a.id), ['before'], 'the activity published right after never came')
  t.same(membersSeen(other, 'p1').map((m) => m.userId), ['u2'], 'u1 left the presence of p1')
  t.match(await tabA.request({ type: 'typing', povId: 'p1', typing: true }, 'error'), { code: 'INVALID_MESSAGE', povId: 'p1' },
    'typing on the revoked PoV is refused as on any PoV not subscribed')

  const { delivered } = await server.app.broadcastActivity(activity('p2', { id: 'p2-after' }))
  t.equal(delivered, 1, "the user's other PoV is untouched")
  t.match(await tabA.next((m) => m.type === 'activity'), { data: { id: 'p2-after' } })
  t.match(server.app.povRealtime.stats(), { revoked: 2, subscriptions: 2, connections: 3 })
})

t.test('revoke({ userId }) closes every socket of the user with 4003; other users keep theirs', async (t) => {
  const server = await startServer(t, { presence: true })
  const tabA = await connectAs(server, 'u1')
  const tabB = await connectAs(server, 'u1')
  const other = await connectAs(server, 'u2')
  await tabA.subscribe('p1')
  await tabA.subscribe('p2')
  await tabB.subscribe('p1')
  await other.subscribe('p1')
  await settle(tabA, other)
  await server.app.povRealtime.revoke({ userId: 'u1' })
  const closes = await Promise.all([closed(tabA), closed(tabB)])
  t.same(closes.map(({ code }) => code), [4003, 4003], 'both tabs closed with 4003')
  t.same(closes.map(({ reason }) => reason), ['access revoked', 'access revoked'])
  await settle(other)
  t.same(membersSeen(other, 'p1'), [member('u2')], 'u1 left presence')
  t.equal(other.ws.readyState, other.ws.OPEN, "another user's socket stays open")
  t.equal((await server.app.broadcastActivity(activity('p1'))).delivered, 1, 'only the other user gets p1 now')
  await waitFor(() => server.app.povRealtime.stats().connections === 1, 2000, 'the closed sockets to go')
  t.match(server.app.povRealtime.stats(), { revoked: 3, closed: { 4003: 2 }, subscriptions: 1 })
})

t.test('a socket revoked as a whole handles nothing it sends after the close', async (t) => {
  const server = await startServer(t)
  const client = await connectAs(server, 'u1')
  await client.subscribe('p1')
  await server.app.povRealtime.revoke({ userId: 'u1' })
  client.send({ type: 'subscribe', povId: 'p2' })
  t.equal((await closed(client)).code, 4003)
  t.same(client.messages.filter((m) => m.type === 'subscribed' && m.povId === 'p2'), [], 'no subscription after the revocation')
  t.match(server.app.povRealtime.stats(), { subscriptions: 0 })
})

t.test('revoke of a user or PoV nobody watches resolves and changes nothing', async (t) => {
  const server = await startServer(t)
  const client = await connectAs(server, 'u1')
  await client.subscribe('p1')
  await server.app.povRealtime.revoke({ userId: 'u1', povId: 'p9' })
  await server.app.povRealtime.revoke({ userId: 'nobody' })
  await server.app.povRealtime.revoke({ userId: 'nobody', povId: 'p1' })
  t.equal((await server.app.broadcastActivity(activity('p1'))).delivered, 1)
  t.same(revokedOf(client, 'p9'), [])
  t.match(server.app.povRealtime.stats(), { revoked: 0, connections: 1 })
})

t.test('revoke rejects a malformed target with POV_REALTIME_INVALID_ARGUMENT, and never throws synchronously', async (t) => {
  const server = await startServer(t)
  const client = await connectAs(server, 'u1')
  await client.subscribe('p1')
  const revoke = server.app.povRealtime.revoke as (target: unknown) => Promise<void>
  const bad: unknown[] = [
    undefined, null, 'u1', ['u1'], {}, { userId: '' }, { userId: 7 }, { userId: 'u1', povId: 'p1/../p2' },
    { userId: 'u1', povId: null }, { userId: 'u1', povID: 'p1' }, { userId: 'u1', povId: 'p1', extra: true }
  ]
  for (const target of bad) {
    let pending: Promise<void> | undefined
    t.doesNotThrow(() => { pending = revoke(target) }, `${JSON.stringify(target)}: no synchronous throw`)
    await t.rejects(pending!, { code: 'POV_REALTIME_INVALID_ARGUMENT' }, `${JSON.stringify(target)} is refused`)
  }
  t.equal(client.ws.readyState, client.ws.OPEN, 'a misspelt povId did not close the socket')
  t.same(revokedOf(client, 'p1'), [])
})

t.test('a subscribe being authorized when its PoV is revoked ends as revoked, never subscribed', async (t) => {
  let approve: () => void = () => {}
  const server = await startServer(t, {
    authorizeSubscription: (_user, povId) => povId !== 'slow' || new Promise<boolean>((resolve) => { approve = () => resolve(true) })
  })
  const client = await connectAs(server, 'u1')
  client.send({ type: 'subscribe', povId: 'slow' })
  await sleep(50)
  await server.app.povRealtime.revoke({ userId: 'u1', povId: 'slow' })
  approve() // the check began before the app withdrew access: its late yes must not count
  await server.app.broadcastActivity(activity('slow'))
  t.match(await client.request({ type: 'ping' }, 'pong'), { type: 'pong' }, 'the socket moved on')
  t.same(client.messages.map((m) => m.type), ['unsubscribed', 'pong'], 'told revoked; no subscribed, no activity')
  t.same(revokedOf(client, 'slow').length, 1)
  t.match(server.app.povRealtime.stats(), { subscriptions: 0, povs: 0 })
})

t.test('a repeated subscribe is checked again: refused, it is FORBIDDEN and the PoV is unsubscribed', async (t) => {
  const allowed = new Set(['p1', 'p2'])
  const calls: string[] = []
  const server = await startServer(t, {
    presence: true,
    readReceipts: true,
    authorizeSubscription: (_user, povId) => {
      calls.push(povId)
      return allowed.has(povId)
    }
  })
  const client = await connectAs(server, 'u1')
  await client.subscribe('p1')
  await client.subscribe('p2')
  t.match(await client.subscribe('p1'), { type: 'subscribed', povId: 'p1', readCursor: null }, 'allowed again: subscribed again')
  t.match(await client.next('presence'), { povId: 'p1' }, 'and the presence snapshot again')
  t.same(calls, ['p1', 'p2', 'p1'], 'the repeated subscribe asked the app')
  allowed.delete('p1')
  const before = client.messages.length
  t.match(await client.subscribe('p1'), { type: 'error', code: 'FORBIDDEN', povId: 'p1' })
  t.same(client.messages.slice(before).map((m) => m.type), ['error'], 'no subscribed, read state or presence first')
  await server.app.broadcastActivity(activity('p1', { id: 'after' }))
  await server.app.broadcastActivity(activity('p2', { id: 'p2-after' }))
  await client.next((m) => m.type === 'activity')
  t.same(client.activities('p1'), [], 'nothing of p1 after the refusal')
  t.match(server.app.povRealtime.stats(), { revoked: 1, subscriptions: 1, rejected: { FORBIDDEN: 1 } })
  t.match(await client.request({ type: 'read', povId: 'p1', cursor: 'x.1.y' }, 'error'), { code: 'INVALID_MESSAGE' },
    'the PoV counts as not subscribed')
})

t.test('an in-band auth re-checks every watched PoV with the refreshed user; refused ones are revoked', async (t) => {
  const seen: Array<[string | undefined, string]> = []
  const server = await startServer(t, {
    authorizeSubscription: (user: PovRealtimeUser, povId) => {
      seen.push([user.role, povId])
      return povId === 'public' || user.role === 'admin'
    }
  })
  const client = await connectAs(server, 'u1', 'admin')
  await client.subscribe('public')
  await client.subscribe('admins')
  seen.length = 0
  await client.request({ type: 'auth', token: await server.wsToken({ userId: 'u1', role: 'member' }) }, 'authenticated')
  t.same(await client.next((m) => m.type === 'unsubscribed'), { type: 'unsubscribed', povId: 'admins', reason: 'revoked' })
  t.same(seen.sort(), [['member', 'admins'], ['member', 'public']], 'both PoVs asked again, as the refreshed user')
  await server.app.broadcastActivity(activity('admins', { id: 'secret' }))
  await server.app.broadcastActivity(activity('public', { id: 'news' }))
  await client.next((m) => m.type === 'activity')
  t.same(client.activities().map((a) => a.id), ['news'], 'the kept PoV still delivers; the revoked one does not')
  t.match(server.app.povRealtime.stats(), { revoked: 1, subscriptions: 1 })
})

t.test('reauthorizeInterval re-checks long-lived sockets on a timer', async (t) => {
  const allowed = new Set(['p1', 'p2'])
  const server = await startServer(t, {
    reauthorizeInterval: 50,
    authorizeSubscription: (_user, povId) => allowed.has(povId)
  })
  const client = await connectAs(server, 'u1')
  await client.subscribe('p1')
  await client.subscribe('p2')
  await sleep(150)
  t.same(revokedOf(client, 'p1'), [], 'nothing ends while the app allows it')
  allowed.delete('p1')
  t.same(await client.next((m) => m.type === 'unsubscribed', 2000), { type: 'unsubscribed', povId: 'p1', reason: 'revoked' })
  t.equal((await server.app.broadcastActivity(activity('p1'))).delivered, 0, 'p1 reaches the socket no more')
  t.equal((await server.app.broadcastActivity(activity('p2'))).delivered, 1, 'p2 still does')
  await sleep(150)
  t.same(revokedOf(client, 'p1').length, 1, 'revoked once')
  t.match(server.app.povRealtime.stats(), { revoked: 1 })
})

t.test('reauthorizeInterval spreads the first re-checks of sockets over the interval', async (t) => {
  const interval = 1000
  const calls = new Map<string, number[]>()
  const server = await startServer(t, {
    reauthorizeInterval: interval,
    authorizeSubscription: (user) => {
      calls.get(user.userId)?.push(Date.now())
      return true
    }
  })
  const sockets = 20
  const connectedAt = new Map<string, number>()
  for (let i = 0; i < sockets; i++) {
    calls.set(`u${i}`, [])
    connectedAt.set(`u${i}`, Date.now())
    await (await connectAs(server, `u${i}`)).subscribe('p1')
  }
  // The first call of each user is its subscribe; the second, its first re-check.
  await waitFor(() => [...calls.values()].every((times) => times.length >= 2), interval * 3, 'every socket to be re-checked')
  const offsets = [...calls].map(([userId, times]) => times[1]! - connectedAt.get(userId)!)
  const spread = Math.max(...offsets) - Math.min(...offsets)
  t.comment(`first re-checks ${Math.min(...offsets)}–${Math.max(...offsets)} ms after each socket connected (interval ${interval} ms)`)
  t.ok(spread >= interval / 3, `not all one interval after connecting (spread ${spread} ms)`)
  t.ok(Math.max(...offsets) < interval * 2, 'each within its first interval (or the next, if it fell before the subscribe)')
})

t.test('a subscribe whose authorizeSubscription hangs is FORBIDDEN after authorizeTimeout, and the socket moves on', async (t) => {
  const server = await startServer(t, {
    authorizeTimeout: 200,
    authorizeSubscription: (_user, povId) => povId === 'hangs' ? new Promise<boolean>(() => {}) : true
  })
  const client = await connectAs(server, 'u1')
  const started = Date.now()
  client.send({ type: 'subscribe', povId: 'hangs' })
  client.send({ type: 'subscribe', povId: 'fine' })
  client.send({ type: 'ping' })
  await client.next('pong', 5000)
  const waited = Date.now() - started
  t.same(client.messages.map((m) => [m.type, m.povId ?? m.code]), [['error', 'hangs'], ['subscribed', 'fine'], ['pong', undefined]],
    'refused, then the next messages answered in order')
  t.match(client.messages[0], { code: 'FORBIDDEN', povId: 'hangs' }, 'a timeout refuses like a throw does')
  t.ok(waited >= 180 && waited < 2000, `answered after the timeout (${waited} ms)`)
  t.ok(server.logs.some((line) => line.includes('did not answer within 200 ms')), 'the timeout is logged')
  t.equal((await server.app.broadcastActivity(activity('hangs'))).delivered, 0)
})

t.test('a re-check whose authorizeSubscription throws or hangs keeps the subscription and never stalls the socket', async (t) => {
  let mode: 'allow' | 'throw' | 'hang' = 'allow'
  const server = await startServer(t, {
    authorizeTimeout: 150,
    authorizeSubscription: () => {
      if (mode === 'throw') throw new Error('database down')
      if (mode === 'hang') return new Promise<boolean>(() => {})
      return true
    }
  })
  const client = await connectAs(server, 'u1')
  await client.subscribe('p1')
  for (const fault of ['throw', 'hang'] as const) {
    mode = fault
    const token = await server.wsToken({ userId: 'u1' })
    const started = Date.now()
    await client.request({ type: 'auth', token }, 'authenticated')
    t.match(await client.request({ type: 'ping' }, 'pong'), { type: 'pong' }, `${fault}: the socket answers at once`)
    t.ok(Date.now() - started < 150, `${fault}: not held by the re-check`)
    await waitFor(() => server.logs.filter((line) => line.includes('failed on a re-check')).length === (fault === 'throw' ? 1 : 2),
      2000, `${fault}: the failed re-check to be logged`)
    t.equal((await server.app.broadcastActivity(activity('p1'))).delivered, 1, `${fault}: the subscription stays`)
  }
  t.same(revokedOf(client, 'p1'), [])
  t.match(server.app.povRealtime.stats(), { revoked: 0, subscriptions: 1 })
  const warning = server.logs.map((line) => JSON.parse(line) as { msg: string, level: number, userId?: string })
    .find((line) => line.msg.includes('failed on a re-check'))
  t.match(warning, { level: 40, userId: 'u1' }, 'logged at warn, with the user id')
})

t.test('reauthorizeInterval and authorizeTimeout are checked at registration', async (t) => {
  for (const reauthorizeInterval of [0, -5, 1.5, '1m', true, 2 ** 31]) {
    await t.rejects(startServer(t, { reauthorizeInterval: reauthorizeInterval as number }), { code: 'POV_REALTIME_INVALID_OPTION' },
      `reauthorizeInterval ${JSON.stringify(reauthorizeInterval)}`)
  }
  for (const authorizeTimeout of [0, -1, 'soon', false]) {
    await t.rejects(startServer(t, { authorizeTimeout: authorizeTimeout as number }), { code: 'POV_REALTIME_INVALID_OPTION' },
      `authorizeTimeout ${JSON.stringify(authorizeTimeout)}`)
  }
  const server = await startServer(t, { reauthorizeInterval: false, authorizeTimeout: 1 })
  t.ok(server.app.povRealtime, 'false and 1 are accepted')
})
