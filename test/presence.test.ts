/**
 * Presence on one instance (PROTOCOL.md, "Presence, activity status and typing"): members are users, not sockets;
 * the snapshot follows `subscribed`; diffs are coalesced and only say what a subscriber has not been shown.
 */
import t from 'tap'
import { diffs, member, membersSeen, presenceMessages, settle } from './helpers/presence.js'
import { activity, startServer } from './helpers/server.js'
import { closed } from './helpers/socket-waits.js'
import { connectAs, subscribedAs } from './helpers/members.js'

t.test('subscribing sends presence right after subscribed: the subscriber included, info {} by default, no e-mail', async (t) => {
  const server = await startServer(t, { presence: true })
  const other = await connectAs(server, 'u2')
  await other.subscribe('p1')
  const client = await connectAs(server, 'u1')
  await client.subscribe('p1')
  const snapshot = await client.next('presence')
  const index = client.messages.indexOf(snapshot)
  t.match(client.messages[index - 1], { type: 'subscribed', povId: 'p1' }, 'the message before is subscribed')
  t.same(membersSeen(client, 'p1'), [member('u1'), member('u2')])
  t.notOk(JSON.stringify(client.messages).includes('@example.com'), 'no e-mail is broadcast')
  await settle(client, other)
  t.same(diffs(client, 'p1'), [], 'the subscriber gets no diff about its own join')
  t.same(membersSeen(other, 'p1'), [member('u1'), member('u2')], 'the other member sees the join')
})

t.test('info(user) is each member\'s public face, computed once per socket at its first subscribe', async (t) => {
  const calls: string[] = []
  const server = await startServer(t, {
    presence: {
      async info (user) {
        calls.push(user.userId)
        return { name: user.userId.toUpperCase(), role: user.role }
      }
    }
  })
  const client = await connectAs(server, 'u1')
  await client.subscribe('p1')
  await client.subscribe('p2')
  await client.subscribe('p1')
  const second = await connectAs(server, 'u2')
  await second.subscribe('p1')
  await settle(client, second)
  t.same(calls, ['u1', 'u2'], 'one call per socket, however many PoVs it subscribes')
  const u1 = member('u1', 'active', { name: 'U1', role: 'member' })
  const u2 = member('u2', 'active', { name: 'U2', role: 'member' })
  t.same(membersSeen(client, 'p1'), [u1, u2])
  t.same(membersSeen(second, 'p1'), [u1, u2])
  t.same(membersSeen(client, 'p2'), [u1])
})

t.test('a second tab does not join again; closing one of two tabs does not leave; the last one does', async (t) => {
  const server = await startServer(t, { presence: true })
  const watcher = await connectAs(server, 'w')
  await watcher.subscribe('p1')
  const tabA = await connectAs(server, 'u1')
  await tabA.subscribe('p1')
  await settle(watcher)
  t.same(diffs(watcher, 'p1').map((m) => [m.joins, m.leaves]), [[[member('u1')], []]], 'the first tab joins')

  const tabB = await connectAs(server, 'u1')
  await tabB.subscribe('p1')
  await settle(watcher, tabA, tabB)
  t.equal(diffs(watcher, 'p1').length, 1, 'the second tab sends no diff')
  t.same(membersSeen(tabB, 'p1'), [member('u1'), member('w')], 'the second tab\'s snapshot has the user once')
  t.same(diffs(tabA, 'p1'), [], 'the first tab hears nothing of the second')

  tabA.close()
  await closed(tabA)
  await settle(watcher, tabB)
  t.equal(diffs(watcher, 'p1').length, 1, 'closing one of two tabs does not leave')
  t.same(membersSeen(watcher, 'p1'), [member('u1'), member('w')])

  tabB.close()
  await closed(tabB)
  await settle(watcher)
  t.same(diffs(watcher, 'p1').at(-1), { type: 'presence_diff', povId: 'p1', joins: [], leaves: ['u1'] }, 'the last tab leaves')
  t.same(membersSeen(watcher, 'p1'), [member('w')])
})

t.test('members join and leave by subscribe, unsubscribe and disconnect; diffs carry both arrays', async (t) => {
  const server = await startServer(t, { presence: true })
  const u1 = await connectAs(server, 'u1')
  await u1.subscribe('p1')
  const u2 = await connectAs(server, 'u2')
  await u2.subscribe('p1')
  t.same(await u1.next('presence_diff'), { type: 'presence_diff', povId: 'p1', joins: [member('u2')], leaves: [] })
  await u2.request({ type: 'unsubscribe', povId: 'p1' }, 'unsubscribed')
  t.same(await u1.next('presence_diff'), { type: 'presence_diff', povId: 'p1', joins: [], leaves: ['u2'] })
  const u3 = await connectAs(server, 'u3')
  await u3.subscribe('p1')
  t.same(await u1.next('presence_diff'), { type: 'presence_diff', povId: 'p1', joins: [member('u3')], leaves: [] })
  u3.terminate()
  t.same(await u1.next('presence_diff'), { type: 'presence_diff', povId: 'p1', joins: [], leaves: ['u3'] })
  await settle(u1, u2)
  t.same(presenceMessages(u2, 'p1').map((m) => m.type), ['presence'], 'after unsubscribing, u2 hears nothing more of p1')
  t.same(membersSeen(u1, 'p1'), [member('u1')])
})

t.test('a join and a leave inside one diff window send nothing', async (t) => {
  const server = await startServer(t, { presence: true })
  const watcher = await connectAs(server, 'w')
  await watcher.subscribe('p1')
  const visitor = await connectAs(server, 'u1')
  // Both frames in one TCP write, so that the server handles them in one go, well inside the window.
  const socket = (visitor.ws as unknown as { _socket: { cork (): void, uncork (): void } })._socket
  socket.cork()
  visitor.send({ type: 'subscribe', povId: 'p1' })
  visitor.send({ type: 'unsubscribe', povId: 'p1' })
  socket.uncork()
  await visitor.next('unsubscribed')
  await settle(watcher)
  t.same(diffs(watcher, 'p1'), [], 'the watcher saw no diff')
  t.same(membersSeen(visitor, 'p1'), [member('u1'), member('w')], 'the visitor did get its snapshot')
})

t.test('a repeated subscribe sends the snapshot again, and nothing to the others', async (t) => {
  const server = await startServer(t, { presence: true })
  const watcher = await connectAs(server, 'w')
  await watcher.subscribe('p1')
  const client = await connectAs(server, 'u1')
  await client.subscribe('p1')
  await settle(watcher, client)
  await client.subscribe('p1')
  const again = await client.next('presence')
  t.same(again, { type: 'presence', povId: 'p1', members: [member('w'), member('u1')] })
  await settle(watcher, client)
  t.equal(diffs(watcher, 'p1').length, 1, 'only the first subscribe was a join')
  t.equal(presenceMessages(client, 'p1').length, 2, 'two snapshots, no diff')
})

t.test('status: a member is active while any tab is; only the member\'s changes are sent; not answered', async (t) => {
  const server = await startServer(t, { presence: true })
  const watcher = await connectAs(server, 'w')
  await watcher.subscribe('p1')
  await watcher.subscribe('p2')
  const tabA = await connectAs(server, 'u1')
  const tabB = await connectAs(server, 'u1')
  for (const tab of [tabA, tabB]) {
    await tab.subscribe('p1')
    await tab.subscribe('p2')
  }
  await settle(watcher, tabA, tabB)
  const before = { watcher: watcher.messages.length, tabA: tabA.messages.length }

  tabA.send({ type: 'status', status: 'idle' })
  await settle(watcher, tabA)
  t.equal(watcher.messages.length, before.watcher + 1, 'one tab of two going idle sends nothing (only the pong)')
  t.equal(tabA.messages.length, before.tabA + 1, 'status is not answered (only the pong)')

  tabB.send({ type: 'status', status: 'idle' })
  await settle(watcher)
  for (const povId of ['p1', 'p2']) {
    t.same(diffs(watcher, povId).at(-1), { type: 'presence_diff', povId, joins: [member('u1', 'idle')], leaves: [] },
      `both tabs idle: the member comes again in joins, idle, on ${povId} (status applies to every PoV)`)
  }
  tabA.send({ type: 'status', status: 'active' })
  await settle(watcher)
  t.same(diffs(watcher, 'p1').at(-1), { type: 'presence_diff', povId: 'p1', joins: [member('u1')], leaves: [] }, 'active again')
  tabA.send({ type: 'status', status: 'active' })
  await settle(watcher)
  t.equal(diffs(watcher, 'p1').length, 3, 'a repeated status changes nothing')
  t.same(membersSeen(tabB, 'p1'), [member('u1'), member('w')], 'the member\'s own tabs see its status too')
})

t.test('the status a socket reports before subscribing is the one it joins with; a bad status is INVALID_MESSAGE', async (t) => {
  const server = await startServer(t, { presence: true })
  const client = await connectAs(server, 'u1')
  client.send({ type: 'status', status: 'idle' })
  await client.subscribe('p1')
  t.same(await client.next('presence'), { type: 'presence', povId: 'p1', members: [member('u1', 'idle')] })
  t.match(await client.request({ type: 'status', status: 'away' }, 'error'), { code: 'INVALID_MESSAGE' })
})

t.test('presence is never in history: a resume replays activities only, then subscribed, then a fresh snapshot', async (t) => {
  const server = await startServer(t, { presence: true })
  const watcher = await connectAs(server, 'w')
  await watcher.subscribe('p1')
  const first = await server.app.broadcastActivity(activity('p1', { id: 'a1' }))
  const churn = await connectAs(server, 'u2')
  await churn.subscribe('p1')
  churn.send({ type: 'typing', povId: 'p1', typing: true })
  await server.app.broadcastActivity(activity('p1', { id: 'a2' }))
  churn.close()
  await server.app.broadcastActivity(activity('p1', { id: 'a3' }))
  await settle(watcher)

  const resumer = await connectAs(server, 'u3')
  await resumer.subscribe('p1', first.cursor)
  const snapshot = await resumer.next('presence')
  const types = resumer.messages.slice(0, resumer.messages.indexOf(snapshot) + 1).map((m) => m.type)
  t.same(types, ['activity', 'activity', 'subscribed', 'presence'], 'the replay holds activities only; the snapshot comes after subscribed')
  t.same(resumer.activities('p1').map((data) => data.id), ['a2', 'a3'])
  t.same(snapshot.members, [member('w'), member('u3')])
})

t.test('fastify.povRealtime.presence(povId) from a route handler', async (t) => {
  const server = await startServer(t, { presence: { info: (user) => ({ name: `User ${user.userId}` }) } }, undefined, (app) => {
    app.get<{ Params: { povId: string } }>('/povs/:povId/members', (request) => app.povRealtime.presence(request.params.povId))
  })
  const get = async (povId: string) => {
    const response = await fetch(`${server.httpUrl}/povs/${encodeURIComponent(povId)}/members`)
    return { status: response.status, body: await response.json() as unknown }
  }
  t.same(await get('p1'), { status: 200, body: [] }, 'nobody on a PoV nobody watches')
  const [tabA, , u2] = await subscribedAs(server, 'p1', 'u1', 'u1', 'u2') // u1 in two tabs, u2
  tabA.send({ type: 'status', status: 'idle' })
  u2.send({ type: 'status', status: 'idle' })
  await settle(tabA, u2)
  const { status, body } = await get('p1')
  t.equal(status, 200)
  t.same(body, [{ userId: 'u1', status: 'active', info: { name: 'User u1' } }, { userId: 'u2', status: 'idle', info: { name: 'User u2' } }],
    'one entry per user, active when any tab is')
  t.same(await get('p2'), { status: 200, body: [] })
  await t.rejects(server.app.povRealtime.presence('not a pov id!'), { code: 'POV_REALTIME_INVALID_ARGUMENT' })
  const members = await server.app.povRealtime.presence('p1')
  members[0]!.info.name = 'changed by the caller'
  t.same((await server.app.povRealtime.presence('p1'))[0]!.info, { name: 'User u1' }, 'callers get copies')
})

t.test('presence(povId) rejects with POV_REALTIME_NOT_ENABLED while presence is off', async (t) => {
  const server = await startServer(t)
  await t.rejects(server.app.povRealtime.presence('p1'), { code: 'POV_REALTIME_NOT_ENABLED', message: /presence/ })
  t.match(server.app.povRealtime.stats(), { presenceMembers: 0, presenceDropped: 0 })
})

t.test('a bad info() result is logged at error and shown as {}; the client is never told', async (t) => {
  const circular: Record<string, unknown> = {}
  circular.self = circular
  const results: Record<string, () => unknown> = {
    string: () => 'Alice',
    array: () => ['Alice'],
    null: () => null,
    date: () => new Date(0),
    circular: () => circular,
    bigint: () => ({ id: 10n }),
    huge: () => ({ bio: 'x'.repeat(2000) }),
    throws: () => { throw new Error('info failed') },
    rejects: () => Promise.reject(new Error('info failed later')),
    toJSON: () => ({ toJSON: () => 'not an object' })
  }
  const server = await startServer(t, {
    presence: { info: (user) => results[user.userId]!() as Record<string, unknown> }
  })
  for (const userId of Object.keys(results)) {
    const client = await connectAs(server, userId)
    await client.subscribe('p1')
    t.same((await client.next('presence')).members, [member(userId)], `${userId}: shown with {}`)
    t.same(client.messages.filter((m) => m.type === 'error'), [], `${userId}: no error to the client`)
    t.equal(client.ws.readyState, client.ws.OPEN)
    client.close()
    await closed(client)
    await settle()
  }
  const errors = server.logs.map((line) => JSON.parse(line) as { level: number, msg: string, userId?: string })
    .filter((line) => line.level === 50 && line.msg.includes('presence.info'))
  t.same(errors.map((line) => line.userId), Object.keys(results), 'each bad result logged once, at error')
})

t.test('a storm of members joining at once costs each subscriber a bounded number of diffs, and everyone ends up agreeing', async (t) => {
  const N = 150
  const server = await startServer(t, { presence: true })
  const watchers = await Promise.all([1, 2, 3].map((i) => connectAs(server, `w${i}`)))
  for (const watcher of watchers) await watcher.subscribe('p1')
  const members = []
  for (let i = 0; i < N; i += 25) {
    members.push(...await Promise.all(Array.from({ length: Math.min(25, N - i) }, (_, j) => connectAs(server, `m${i + j}`))))
  }
  await settle(...watchers)
  const started = Date.now()
  for (const client of members) client.send({ type: 'subscribe', povId: 'p1' })
  await Promise.all(members.map((client) => client.next('presence', 10_000)))
  const elapsed = Date.now() - started
  await settle(...watchers, ...members)

  const expected = [...watchers.map((_, i) => `w${i + 1}`), ...members.map((_, i) => `m${i}`)].sort()
  const disagreeing = [...watchers, ...members]
    .filter((client) => JSON.stringify(membersSeen(client, 'p1').map((m) => m.userId)) !== JSON.stringify(expected))
  t.equal(disagreeing.length, 0, `every one of the ${N + 3} sockets sees every member once`)
  const watcherDiffs = watchers.map((watcher) => diffs(watcher, 'p1').length)
  const memberDiffs = members.map((client) => diffs(client, 'p1').length)
  const totalDiffs = [...watcherDiffs, ...memberDiffs].reduce((a, b) => a + b, 0)
  // One diff per window at most: the storm lasted `elapsed` ms, so about elapsed / 50 windows, plus the edges.
  const bound = Math.ceil(elapsed / 50) + 2
  t.ok(Math.max(...watcherDiffs) <= bound, `each watcher got at most ${bound} diffs for ${N} joins (got ${watcherDiffs.join(', ')})`)
  t.ok(Math.max(...memberDiffs) <= bound, `each joiner got at most ${bound} diffs (max ${Math.max(...memberDiffs)})`)
  t.ok(totalDiffs < N * (N - 1) / 2 / 10, `${totalDiffs} diffs in all, far below the ${N * (N - 1) / 2} of one message per join per member`)
  t.comment(`storm of ${N} joins in ${elapsed} ms: ${totalDiffs} presence_diff messages in all; per watcher ${watcherDiffs.join(', ')}; ` +
    `per joiner max ${Math.max(...memberDiffs)}`)
})
