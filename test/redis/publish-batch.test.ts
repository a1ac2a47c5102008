/**
 * The Redis broker's publishes of one event-loop turn go to Redis together (`lib/redis/publish-batch.ts`): one
 * pipeline for a burst, in the order of the `broadcastActivity` calls, each entry still its own atomic script run;
 * one timer for every publish in flight, not one each; per-entry outcomes; a Redis that lost the script (a restart)
 * still gets every entry, in order. Against a real Redis, with real sockets.
 */
import { once } from 'node:events'
import { connect, createServer, type Socket } from 'node:net'
import t from 'tap'
import { Redis } from 'ioredis'
import { createRedisBroker } from '../../lib/redis/index.js'
import { DeadlineSweep } from '../../lib/redis/deadline-sweep.js'
import { compareStreamIds, parseCursor } from '../../lib/redis/cursor.js'
import { publishScript } from '../../lib/redis/scripts.js'
import type { TestClient } from '../helpers/client.js'
import { sharedRedis, startRedisServer } from '../helpers/redis-server.js'
import { activity, sleep, startServer, waitFor } from '../helpers/server.js'

const ids = (client: TestClient, povId: string) => client.activities(povId).map((data) => data.id)
const cursorsOf = (client: TestClient, povId: string) =>
  client.messages.filter((m) => m.type === 'activity' && (m.data as { povId: string }).povId === povId).map((m) => m.cursor)

/** Counts the pipelines sent on `client` (the broker's command connection when the app passes its own client). */
function countPipelines (client: Redis): () => number {
  let count = 0
  const pipeline = client.pipeline.bind(client)
  client.pipeline = ((...args: Parameters<Redis['pipeline']>) => {
    count++
    return pipeline(...args)
  }) as Redis['pipeline']
  return () => count
}

/** Counts the `setTimeout` calls of this process from now until the returned function is called. */
function countTimers (): () => number {
  const original = globalThis.setTimeout
  let count = 0
  globalThis.setTimeout = ((...args: Parameters<typeof setTimeout>) => {
    count++
    return original(...args)
  }) as typeof setTimeout
  return () => {
    globalThis.setTimeout = original
    return count
  }
}

t.test('a burst of one turn over several PoVs is one pipeline; every PoV gets its entries in call order, once', async (t) => {
  const redis = await sharedRedis(t)
  const appClient = new Redis(redis.url)
  t.teardown(() => appClient.disconnect())
  const a = await startServer(t, { broker: createRedisBroker({ redis: appClient, keyPrefix: redis.keyPrefix }) })
  const b = await startServer(t, { broker: createRedisBroker({ redis: redis.url, keyPrefix: redis.keyPrefix }) })
  const onA = await a.connect()
  const onB = await b.connect()
  for (const client of [onA, onB]) for (const povId of ['p1', 'p2', 'p3']) await client.subscribe(povId)

  const pipelines = countPipelines(appClient)
  const burst = []
  for (let i = 0; i < 30; i++) burst.push(a.app.broadcastActivity(activity(`p${(i % 3) + 1}`, { id: `e${i}` })))
  const results = await Promise.all(burst)
  t.equal(pipelines(), 1, '30 publishes of one turn went to Redis as one pipeline')
  for (const [i, result] of results.entries()) t.equal(result.delivered, 1, `e${i} reached the one subscriber of its PoV on A`)

  for (const [n, povId] of ['p1', 'p2', 'p3'].entries()) {
    const expected = Array.from({ length: 10 }, (_, k) => `e${k * 3 + n}`)
    await waitFor(() => ids(onB, povId).length === 10 && ids(onA, povId).length === 10, 5000, `${povId} everywhere`)
    t.same(ids(onA, povId), expected, `${povId} on A: in call order`)
    t.same(ids(onB, povId), expected, `${povId} on B: the same order`)
    const cursors = results.filter((_, i) => i % 3 === n).map((result) => result.cursor)
    t.same(cursorsOf(onB, povId), cursors, `${povId}: the cursors broadcastActivity resolved, in stream order`)
  }

  // The next turn is another pipeline: nothing waits for a later burst.
  await a.app.broadcastActivity(activity('p1', { id: 'later' }))
  t.equal(pipelines(), 2)
})

t.test('a hung Redis: a burst of publishes holds one timer, not one each, and each rejects with outcomeUnknown', async (t) => {
  const server = await startRedisServer(t)
  const TIMEOUT = 400
  const app = await startServer(t, {
    broker: createRedisBroker({ redis: { host: '127.0.0.1', port: server.port }, keyPrefix: 'batch:', timeout: TIMEOUT })
  })
  await app.app.broadcastActivity(activity('p1', { id: 'warm' }))
  await sleep(TIMEOUT * 2) // lets earlier timers (the warm-up's) run out
  server.pause()
  t.teardown(() => server.resume())
  const timers = countTimers()
  const burst = Array.from({ length: 200 }, (_, i) => app.app.broadcastActivity(activity(`p${i % 7}`, { id: `h${i}` }))
    .then(() => ({ resolved: true }), (err: { code?: string, outcomeUnknown?: boolean }) => ({ code: err.code, outcomeUnknown: err.outcomeUnknown })))
  await new Promise((resolve) => setImmediate(resolve)) // the batch is written
  const added = timers()
  t.ok(added <= 1, `200 publishes in flight set at most one timer (${added})`)
  const outcomes = await Promise.all(burst)
  t.same(new Set(outcomes.map((outcome) => JSON.stringify(outcome))),
    new Set([JSON.stringify({ code: 'POV_REALTIME_BROKER_UNAVAILABLE', outcomeUnknown: true })]), 'every publish: may have been published')
  t.equal(outcomes.length, 200)
})

t.test('a Redis that lost the script (flushed, as after an empty restart): the next burst loads it; every entry once, in order', async (t) => {
  const server = await startRedisServer(t)
  const app = await startServer(t, {
    broker: createRedisBroker({ redis: { host: '127.0.0.1', port: server.port }, keyPrefix: 'noscript:' })
  })
  const client = await app.connect()
  await client.subscribe('p1')
  await app.app.broadcastActivity(activity('p1', { id: 'before' }))
  const inspector = new Redis(server.url)
  t.teardown(() => inspector.disconnect())
  await inspector.script('FLUSH')
  const results = await Promise.all(Array.from({ length: 5 }, (_, i) => app.app.broadcastActivity(activity('p1', { id: `n${i}` }))))
  await waitFor(() => ids(client, 'p1').length === 6, 5000, 'every activity')
  t.same(ids(client, 'p1'), ['before', 'n0', 'n1', 'n2', 'n3', 'n4'], 'each entry once, in call order')
  t.same(cursorsOf(client, 'p1').slice(1), results.map((result) => result.cursor))
  t.equal(await inspector.xlen('noscript:{p1}:h'), 6, 'the history holds each entry once')
})

t.test('another client loads the script in the middle of a burst: the entries still take the call order', async (t) => {
  // Redis reads a long pipeline in parts and runs other clients' commands in between: when another instance loads the
  // script while a burst is being read, the burst's first entries find no script and the rest do. Those that found
  // none must not land after the rest.
  const server = await startRedisServer(t)
  const app = await startServer(t, {
    broker: createRedisBroker({ redis: { host: '127.0.0.1', port: server.port }, keyPrefix: 'midload:' })
  })
  const other = new Redis(server.url)
  t.teardown(() => other.disconnect())
  const padding = 'x'.repeat(2000) // a burst of 2 MB: Redis takes it in many reads
  for (let round = 0; round < 6; round++) {
    await other.script('FLUSH')
    const burst = Array.from({ length: 1000 }, (_, i) => app.app.broadcastActivity(activity('p1', { id: `r${round}-${i}`, message: padding })))
    const loaded = new Promise((resolve, reject) => setTimeout(() => {
      other.script('LOAD', publishScript.lua).then(resolve, reject)
    }, round % 3)) // lands somewhere in the burst's reading
    const [results] = await Promise.all([Promise.all(burst), loaded])
    const ids = results.map((result) => parseCursor(result.cursor)!.id)
    t.same([...ids].sort(compareStreamIds), ids, `round ${round}: the entries took the call order in the history`)
  }
  const stored = await other.xrevrange('midload:{p1}:h', '+', '-', 'COUNT', 3)
  t.same(stored.map(([, fields]) => (JSON.parse(fields[1]!) as { id: string }).id), ['r5-999', 'r5-998', 'r5-997'],
    'the newest entries are the last ones called')
})

t.test('the deadline sweep: one timer; a late call expires only after the loop read its sockets; a settled one never', async (t) => {
  const sweep = new DeadlineSweep(50)
  const expired: string[] = []
  const call = (name: string) => ({ settled: false, expire () { expired.push(name) } })
  const answered = call('answered')
  const late = call('late')
  const timers = countTimers()
  sweep.add(answered)
  sweep.add(late)
  for (let i = 0; i < 100; i++) sweep.add({ settled: true, expire () { expired.push('settled') } })
  t.equal(timers(), 1, 'one timer for every call watched')
  answered.settled = true
  await sleep(120)
  t.same(expired, ['late'], 'only the call that did not settle expired')

  // The deadline passes while the loop is blocked, and the answer is already in a socket: the loop's timers run
  // first, then it reads the socket (which settles the call), and only then would the expiry run.
  const { client, peer } = await socketPair(t)
  const racing = call('racing')
  const read = once(client, 'data').then(() => { racing.settled = true })
  sweep.add(racing)
  peer.write('answer')
  const until = Date.now() + 100
  while (Date.now() < until) { /* a busy loop, past the deadline; the answer arrives meanwhile */ }
  await read
  await new Promise((resolve) => setImmediate(resolve))
  t.same(expired, ['late'], 'a call whose answer came in time is not expired, though the loop read it after the deadline')
  sweep.stop()
  sweep.add(call('after stop'))
  await sleep(80)
  t.same(expired, ['late'], 'a stopped sweep expires nothing')
})

/** Two connected TCP sockets on loopback (closed at teardown). */
async function socketPair (t: { teardown (fn: () => void): void }): Promise<{ client: Socket, peer: Socket }> {
  const server = createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const accepted = once(server, 'connection') as Promise<[Socket]>
  const client = connect((server.address() as { port: number }).port, '127.0.0.1')
  const [[peer]] = await Promise.all([accepted, once(client, 'connect')])
  t.teardown(() => {
    client.destroy()
    peer.destroy()
    server.close()
  })
  return { client, peer }
}
