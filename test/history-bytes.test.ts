/**
 * The in-process history's byte bounds (PROTOCOL.md, Additions, "Fairness limits"): `history.maxBytes` per PoV (the
 * oldest go first) and `history.maxTotalBytes` per instance (the PoVs published least recently give way first). A
 * resume that needs what they dropped answers `recovered: false`; live delivery is not touched.
 */
import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { activity, startServer, type TestServer } from './helpers/server.js'

/** Activities whose frames all have one size: same-length ids, PoV ids and messages. */
async function publish (app: FastifyInstance, povId: string, ...ids: string[]): Promise<string[]> {
  const cursors: string[] = []
  for (const id of ids) cursors.push((await app.broadcastActivity(activity(povId, { id, message: 'm'.repeat(1000) }))).cursor)
  return cursors
}

/** The bytes of one activity frame as `publish` makes them, measured on the wire. */
async function frameBytes (t: Parameters<typeof startServer>[0]): Promise<number> {
  const probe = await startServer(t)
  const client = await probe.connect()
  await client.subscribe('p0')
  const sizes: number[] = []
  client.ws.on('message', (data: Buffer) => sizes.push(data.length))
  await publish(probe.app, 'p0', 'z0')
  await client.next('activity')
  return sizes[0]!
}

/** Resumes `povId` from `since` on a new socket: `recovered` and the ids replayed. */
async function resume (server: TestServer, povId: string, since: string): Promise<{ recovered: unknown, ids: unknown[] }> {
  const client = await server.connect()
  const answer = await client.subscribe(povId, since)
  const ids = client.activities(povId).map((data) => data.id)
  client.close()
  return { recovered: answer.recovered, ids }
}

const warnLines = (server: TestServer, limit: string) => server.logs.map((line) => JSON.parse(line) as Record<string, unknown>)
  .filter((line) => line.level === 40 && line.limit === limit)

t.test('history.maxBytes: a PoV\'s window holds at most that many bytes, the oldest dropped first', async (t) => {
  const frame = await frameBytes(t)
  const server = await startServer(t, { history: { size: 100, maxBytes: 3 * frame } })
  const watcher = await server.connect()
  await watcher.subscribe('p1')
  const [a0, a1] = await publish(server.app, 'p1', 'a0', 'a1', 'a2')
  t.match(await resume(server, 'p1', a0!), { recovered: true, ids: ['a1', 'a2'] }, 'exactly maxBytes: everything held')
  t.equal(server.app.povRealtime.stats().limitTrips.historyMaxBytes, 0, 'the edge is no trip')

  await publish(server.app, 'p1', 'a3')
  t.equal(server.app.povRealtime.stats().limitTrips.historyMaxBytes, 1, 'one past it: a trip')
  t.match(await resume(server, 'p1', a0!), { recovered: true, ids: ['a1', 'a2', 'a3'] }, 'a0 dropped: from a0 the window is exact')
  await publish(server.app, 'p1', 'a4')
  t.match(await resume(server, 'p1', a0!), { recovered: false, ids: [] }, 'a1 dropped too: the gap cannot be filled')
  t.match(await resume(server, 'p1', a1!), { recovered: true, ids: ['a2', 'a3', 'a4'] })
  t.equal(server.app.povRealtime.stats().limitTrips.historyMaxBytes, 2)
  t.same(watcher.activities('p1').map((data) => data.id), ['a0', 'a1', 'a2', 'a3', 'a4'], 'live delivery is not touched')

  await publish(server.app, 'p2', 'b0', 'b1', 'b2', 'b3')
  const logged = warnLines(server, 'historyMaxBytes')
  t.same(logged.map((line) => line.povId), ['p1', 'p2'], 'logged once per PoV')
})

t.test('history.maxBytes: an activity larger than the bound is delivered but not kept', async (t) => {
  const frame = await frameBytes(t)
  const server = await startServer(t, { history: { maxBytes: frame - 1 } })
  const watcher = await server.connect()
  await watcher.subscribe('p1')
  const [a0] = await publish(server.app, 'p1', 'a0', 'a1')
  t.match(await resume(server, 'p1', a0!), { recovered: false, ids: [] })
  t.same(watcher.activities('p1').map((data) => data.id), ['a0', 'a1'])
})

t.test('history.maxTotalBytes: all windows together hold at most that; the PoVs published least recently give way', async (t) => {
  const frame = await frameBytes(t)
  const server = await startServer(t, { history: { maxTotalBytes: 4 * frame } })
  const [p1a, p1b] = await publish(server.app, 'p1', 'a0', 'a1')
  const [p2a] = await publish(server.app, 'p2', 'b0', 'b1')
  t.match(await resume(server, 'p1', p1a!), { recovered: true, ids: ['a1'] }, 'exactly maxTotalBytes: everything held')
  t.equal(server.app.povRealtime.stats().limitTrips.historyMaxTotalBytes, 0, 'the edge is no trip')

  await publish(server.app, 'p3', 'c0')
  t.equal(server.app.povRealtime.stats().limitTrips.historyMaxTotalBytes, 1, 'one past it: a trip')
  t.match(await resume(server, 'p1', p1a!), { recovered: true, ids: ['a1'] }, 'p1, the least recently published, dropped its oldest')
  t.match(await resume(server, 'p2', p2a!), { recovered: true, ids: ['b1'] }, 'p2 is untouched')
  await publish(server.app, 'p3', 'c1')
  t.match(await resume(server, 'p1', p1a!), { recovered: false, ids: [] }, 'p1 gave way again: a1 is gone')
  t.match(await resume(server, 'p1', p1b!), { recovered: true, ids: [] }, 'from its newest cursor nothing is missing')

  await publish(server.app, 'p1', 'a2') // p1 is now the most recently published: p2 gives way
  t.match(await resume(server, 'p2', p2a!), { recovered: true, ids: ['b1'] }, 'p2 dropped b0')
  t.match(await resume(server, 'p1', p1b!), { recovered: true, ids: ['a2'] })
  t.equal(server.app.povRealtime.stats().limitTrips.historyMaxTotalBytes, 3)
  t.equal(warnLines(server, 'historyMaxTotalBytes').length, 1, 'logged once, not once per activity')
})
