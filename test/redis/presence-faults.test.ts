/**
 * Presence with the Redis broker when things break: an instance killed without a clean shutdown (its members leave
 * everywhere within `presenceTtl * 4 / 3`), Redis restarted empty (every instance announces its members again), an
 * instance cut off from Redis for a moment or for longer than `presenceTtl`.
 */
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { createInterface } from 'node:readline'
import { Redis } from 'ioredis'
import t from 'tap'
import { throughTcpProxies } from '../helpers/redis-proxied.js'
import { startRedisServer } from '../helpers/redis-server.js'
import { testOnEachTarget } from '../helpers/redis-targets.js'
import { active, idle, startBroker } from '../helpers/redis-broker-parts.js'
import { sleep, waitFor } from '../helpers/server.js'
import { nextEvent, PROCESS_START_MS } from '../helpers/socket-waits.js'

/** A short liveness ttl, so that the tests need not wait the default 15 s. */
const TTL = 1500

/** The bound docs/redis.md states: a dead instance's members leave within ttl + ttl / 3 of its last heartbeat. */
const BOUND = TTL + TTL / 3

/** Room for the scripts, the pub/sub hop and a loaded machine's timers on top of the bound. */
const SLACK = 400

testOnEachTarget('an instance killed without a clean shutdown: its members leave on the other instances within the bound', async (t, redis) => {
  const members = [['p1', 'ana'], ['p1', 'li'], ['p2', 'bo'], ['p3', 'cy']]
  const child = spawn(process.execPath, [...process.execArgv, new URL('./fixtures/presence-process.ts', import.meta.url).pathname], {
    env: { ...process.env, ...redis.processEnv, PRESENCE_TTL: String(TTL), MEMBERS: JSON.stringify(members) },
    stdio: ['ignore', 'pipe', 'inherit']
  })
  t.teardown(() => { child.kill('SIGKILL') })
  const [line] = await nextEvent<[string]>(createInterface({ input: child.stdout! }), 'line', 'the instance process', { within: PROCESS_START_MS })
  const { instanceId: doomed } = JSON.parse(line) as { instanceId: string }

  const b = await startBroker(t, { target: redis, keyPrefix: redis.keyPrefix, presenceTtl: TTL })
  const c = await startBroker(t, { target: redis, keyPrefix: redis.keyPrefix, presenceTtl: TTL })
  await b.broker.watch('p1')
  await b.broker.watch('p2')
  await c.broker.watch('p2')
  t.same(b.presence.view('p1'), ['ana:active', 'li:active'])
  t.same(b.presence.view('p2'), ['bo:active'])
  t.same(c.presence.view('p2'), ['bo:active'])
  t.same((await c.relay.members('p3')).map((member) => member.userId), ['cy'], 'p3 (watched by no one) lists cy')

  // Wait until the child has just sent a heartbeat, so that the measure below is the worst case after a kill.
  const beats = `${redis.keyPrefix}presence:instances`
  const before = await redis.client.zscore(beats, doomed)
  for (let i = 0; i < 100 && await redis.client.zscore(beats, doomed) === before; i++) await sleep(10)
  child.kill('SIGKILL')
  await once(child, 'exit')
  const killedAt = Date.now()

  await waitFor(() => !b.presence.holds('p1', doomed) && !b.presence.holds('p2', doomed) && !c.presence.holds('p2', doomed),
    BOUND * 3, 'the killed instance\'s members to leave')
  const elapsed = Date.now() - killedAt
  t.comment(`members of a killed instance left after ${elapsed} ms (presenceTtl ${TTL} ms, bound ${BOUND} ms)`)
  t.ok(elapsed <= BOUND + SLACK, `they left within the bound (${elapsed} ms <= ${BOUND} ms + ${SLACK} ms of slack)`)
  t.ok(elapsed >= TTL - TTL / 3, `not before the ttl could have run out (${elapsed} ms)`)
  t.same(b.presence.events.filter((event) => event.state === null).map((event) => `${event.povId}/${event.userId}`).sort(),
    ['p1/ana', 'p1/li', 'p2/bo'], 'b reported each of them gone, once')

  for (const povId of ['p1', 'p2']) {
    const fields = await redis.client.hkeys(`${redis.keyPrefix}{${povId}}:p`)
    t.same(fields.filter((field) => field.startsWith(doomed)), [], `the stale fields of ${povId} were removed`)
  }
  t.same(await c.relay.members('p3'), [], 'a PoV no one watches no longer lists the dead instance\'s member')
  // The read removes what it found stale without waiting for it (on a cluster the removal can come a moment later).
  const staleOfP3 = async () => (await redis.client.hkeys(`${redis.keyPrefix}{p3}:p`)).filter((field) => field.startsWith(doomed))
  for (let i = 0; i < 50 && (await staleOfP3()).length > 0; i++) await sleep(20)
  t.same(await staleOfP3(), [], 'and reading it removed the stale field')
})

// Stand-alone only: it restarts its own redis-server empty (a whole cluster restarted empty is not modelled here).
t.test('Redis restarted empty: every instance announces its members again, and no one is reported gone meanwhile', async (t) => {
  const server = await startRedisServer(t)
  const settings = { redis: { host: '127.0.0.1', port: server.port, retryStrategy: () => 100 }, keyPrefix: 'presence-restart:', presenceTtl: TTL }
  const a = await startBroker(t, settings)
  const b = await startBroker(t, settings)
  await a.broker.watch('p1')
  await b.broker.watch('p1')
  a.relay.announce('p1', 'ana', active())
  a.relay.announce('p1', 'li', idle())
  b.relay.announce('p1', 'bo', active())
  await waitFor(() => b.presence.view('p1').length === 2 && a.presence.view('p1').length === 1, 5000, 'the members')

  await server.restart()
  const admin = new Redis({ host: '127.0.0.1', port: server.port, retryStrategy: () => 100 })
  t.teardown(() => admin.disconnect())
  const fieldsBack = async () => (await admin.hkeys('presence-restart:{p1}:p').catch(() => [])).filter((field) => !field.startsWith('#')).length
  for (let i = 0; i < 200 && await fieldsBack() < 3; i++) await sleep(50)
  t.equal(await fieldsBack(), 3, 'the new Redis holds the three members again')

  // Past the ttl: an instance whose heartbeat the new Redis lacked would now be taken for dead.
  await sleep(BOUND + 300)
  t.same(b.presence.view('p1'), ['ana:active', 'li:idle'], 'b still shows a\'s members')
  t.same(a.presence.view('p1'), ['bo:active'], 'a still shows b\'s member')
  t.same(b.presence.events.filter((event) => event.state === null), [], 'b never reported them gone')
  t.same(a.presence.events.filter((event) => event.state === null), [], 'a never reported bo gone')

  a.relay.announce('p1', 'li', active())
  await waitFor(() => b.presence.view('p1').includes('li:active'), 5000, 'a change after the restart')
  a.relay.typing('p1', 'li', true)
  await waitFor(() => b.presence.typings.length === 1, 5000, 'typing after the restart')
})

testOnEachTarget('an instance cut off from Redis for a moment: what changed meanwhile reaches the others when it is back', async (t, redis) => {
  const proxy = await throughTcpProxies(t, redis)
  const a = await startBroker(t, { redis: proxy.redis, keyPrefix: redis.keyPrefix, presenceTtl: TTL })
  const b = await startBroker(t, { target: redis, keyPrefix: redis.keyPrefix, presenceTtl: TTL })
  await b.broker.watch('p1')
  a.relay.announce('p1', 'ana', active())
  a.relay.announce('p1', 'bo', active())
  await waitFor(() => b.presence.view('p1').length === 2, 5000, 'the members on b')

  proxy.cut()
  await sleep(50)
  a.relay.announce('p1', 'ana', null)
  a.relay.announce('p1', 'li', idle())
  await sleep(300)
  t.same(b.presence.view('p1'), ['ana:active', 'bo:active'], 'nothing can arrive while a is cut off')
  proxy.restore()
  await waitFor(() => b.presence.view('p1').join() === 'bo:active,li:idle', 5000, 'the changes made while cut off')
  t.same(b.presence.events.filter((event) => event.userId === 'bo' && event.state === null), [], 'bo was never reported gone')
})

testOnEachTarget('an instance cut off for longer than presenceTtl: its members leave, and come back when it does', async (t, redis) => {
  const proxy = await throughTcpProxies(t, redis)
  const a = await startBroker(t, { redis: proxy.redis, keyPrefix: redis.keyPrefix, presenceTtl: TTL })
  const b = await startBroker(t, { target: redis, keyPrefix: redis.keyPrefix, presenceTtl: TTL })
  await a.broker.watch('p1')
  await b.broker.watch('p1')
  a.relay.announce('p1', 'ana', active())
  b.relay.announce('p1', 'bo', active())
  await waitFor(() => b.presence.view('p1').length === 1 && a.presence.view('p1').length === 1, 5000, 'the members')

  proxy.cut()
  const cutAt = Date.now()
  await waitFor(() => b.presence.view('p1').length === 0, BOUND * 3, 'ana to leave on b')
  t.ok(Date.now() - cutAt <= BOUND + SLACK, `left within the bound (${Date.now() - cutAt} ms)`)
  proxy.restore()
  await waitFor(() => b.presence.view('p1').join() === 'ana:active', 5000, 'ana back on b')
  await sleep(BOUND)
  t.same(b.presence.view('p1'), ['ana:active'], 'ana stays (a is alive again)')
  t.same(a.presence.view('p1'), ['bo:active'], 'a shows bo after its resync')
  t.same(await b.relay.members('p2'), [])
})
