/**
 * Presence when an instance goes, seen by the clients of the instance that stays (PROTOCOL.md: "the members of an
 * instance that dies leave within a bounded time that the README states"): an instance killed without a clean
 * shutdown (a process of its own, SIGKILLed) and an instance closed with `fastify.close()`.
 */
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { createInterface } from 'node:readline'
import { PRESENCE_DIFF_WINDOW_MS } from '../../lib/constants.js'
import { TestClient } from '../helpers/client.js'
import { member, membersSeen, presenceMessages, sortMembers } from '../helpers/presence.js'
import { startRedisInstance, startRedisInstances } from '../helpers/redis-instances.js'
import { testOnEachTarget } from '../helpers/redis-targets.js'
import { accessToken, sleep, waitFor, type Teardown, type TestServer } from '../helpers/server.js'
import type { Member } from '../../types/messages.js'
import { nextEvent, opened, PROCESS_START_MS } from '../helpers/socket-waits.js'
import { connectAs } from '../helpers/members.js'

/** A short `presenceTtl`, so that the test need not wait the default 15 s. */
const TTL = 1500

/** What the Redis broker documents: a dead instance's members leave within `presenceTtl * 4 / 3` of its last heartbeat. */
const BOUND = TTL + TTL / 3

/** Room for the scripts, the pub/sub hop and a loaded machine's timers, on top of the bound and the diff window. */
const SLACK = 400

/** The default `presenceTtl`, and the bound that goes with it. */
const DEFAULT_BOUND = 15_000 * 4 / 3

/** Connects `userId` to `server` and subscribes them to `povId`; resolves once their snapshot is in. */
async function memberOn (server: TestServer, userId: string, povId = 'p1'): Promise<TestClient> {
  const client = await connectAs(server, userId)
  await client.subscribe(povId)
  await client.next('presence')
  return client
}

/** Waits until `client` sees exactly `members` on `povId` (sorted by user). */
async function untilSeen (client: TestClient, members: Member[], povId: string, timeout = 5000): Promise<void> {
  const wanted = JSON.stringify(members)
  await waitFor(() => JSON.stringify(membersSeen(client, povId)) === wanted, timeout,
    `the members ${wanted}; seen ${JSON.stringify(membersSeen(client, povId))}`)
}

/** The users `client` was told left `povId`, in order. */
const leavesSeen = (client: TestClient, povId: string) => presenceMessages(client, povId)
  .flatMap((m) => m.type === 'presence_diff' ? m.leaves as string[] : [])

/** One plugin instance with presence and the Redis broker, in a process of its own (test/redis/fixtures). */
async function spawnInstance (t: Teardown, env: Record<string, string>) {
  const child = spawn(process.execPath, [...process.execArgv, new URL('./fixtures/instance-process.ts', import.meta.url).pathname], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit']
  })
  t.teardown(() => { child.kill('SIGKILL') })
  const [line] = await nextEvent<[string]>(createInterface({ input: child.stdout! }), 'line', 'the instance process', { within: PROCESS_START_MS })
  const { port, instanceId } = JSON.parse(line) as { port: number, instanceId: string }
  /** A client of that process signed in as `userId`, subscribed to `povId`. */
  async function memberThere (userId: string, povId: string): Promise<TestClient> {
    const response = await fetch(`http://127.0.0.1:${port}/api/auth/ws-token`, { headers: { cookie: `accessToken=${accessToken({ userId })}` } })
    const { token } = await response.json() as { token: string }
    const client = new TestClient(`ws://127.0.0.1:${port}/ws`, ['pov-realtime.v1', `bearer.${token}`])
    t.teardown(() => client.terminate())
    await opened(client)
    await client.subscribe(povId)
    return client
  }
  return { child, instanceId, memberThere }
}

testOnEachTarget('an instance killed without a clean shutdown: its members leave on the other instance within the documented bound', async (t, redis) => {
  const doomed = await spawnInstance(t, { ...redis.processEnv, PRESENCE_TTL: String(TTL) })
  const survivor = await startRedisInstance(t, redis, { presence: true }, { presenceTtl: TTL })
  const onP1 = await memberOn(survivor, 'w')
  const onP2 = await memberOn(survivor, 'w2', 'p2')
  const ana = await doomed.memberThere('ana', 'p1')
  await doomed.memberThere('li', 'p1')
  await doomed.memberThere('bo', 'p2')
  await doomed.memberThere('cy', 'p3')
  await doomed.memberThere('both', 'p1')
  await memberOn(survivor, 'both')
  await untilSeen(onP1, [member('ana'), member('both'), member('li'), member('w')], 'p1')
  await untilSeen(onP2, [member('bo'), member('w2')], 'p2')
  ana.send({ type: 'typing', povId: 'p1', typing: true })
  await onP1.next((m) => m.type === 'typing' && m.userId === 'ana' && m.typing === true)
  t.same(await survivor.app.povRealtime.presence('p3'), [member('cy')], 'presence(p3), a PoV the survivor does not watch')

  // Kill it just after a heartbeat, so that what is measured is the worst case.
  const beats = `${redis.keyPrefix}presence:instances`
  const before = await redis.client.zscore(beats, doomed.instanceId)
  t.ok(before, 'the doomed instance records heartbeats')
  for (let i = 0; i < 100 && await redis.client.zscore(beats, doomed.instanceId) === before; i++) await sleep(10)
  doomed.child.kill('SIGKILL')
  await once(doomed.child, 'exit')
  const killedAt = Date.now()

  await untilSeen(onP1, [member('both'), member('w')], 'p1', BOUND * 3)
  const elapsed = Date.now() - killedAt
  await untilSeen(onP2, [member('w2')], 'p2', BOUND * 3)
  const limit = BOUND + PRESENCE_DIFF_WINDOW_MS + SLACK
  t.comment(`the killed instance's members left the other instance's clients ${elapsed} ms after SIGKILL ` +
    `(presenceTtl ${TTL} ms, documented bound ${BOUND} ms + the ${PRESENCE_DIFF_WINDOW_MS} ms diff window)`)
  t.ok(elapsed <= limit, `within the bound (${elapsed} ms <= ${limit} ms, slack included)`)
  t.ok(elapsed >= TTL - TTL / 3, `not before the ttl could have run out (${elapsed} ms)`)
  t.same(leavesSeen(onP1, 'p1').sort(), ['ana', 'li'], 'each left once; both, who has a tab on the survivor, did not leave')
  t.same(leavesSeen(onP2, 'p2'), ['bo'])
  const typingEnd = onP1.messages.findIndex((m) => m.type === 'typing' && m.userId === 'ana' && m.typing === false)
  const anaLeft = onP1.messages.findIndex((m) => m.type === 'presence_diff' && (m.leaves as string[]).includes('ana'))
  t.ok(typingEnd !== -1 && typingEnd < anaLeft, 'ana\'s typing ended, before (or as) she left')
  t.same(sortMembers(await survivor.app.povRealtime.presence('p1')), [member('both'), member('w')])
  t.same(await survivor.app.povRealtime.presence('p3'), [], 'nor does a PoV the survivor does not watch list cy')
})

testOnEachTarget('an instance closed with fastify.close(): its members leave the other instance at once, well under the bound', async (t, redis) => {
  const [a, b] = await startRedisInstances(t, redis, 2, { presence: true })
  const onP1 = await memberOn(a!, 'w')
  const onP2 = await memberOn(a!, 'w2', 'p2')
  const u1 = await memberOn(b!, 'u1')
  await memberOn(b!, 'u2')
  await memberOn(b!, 'u3', 'p2')
  await untilSeen(onP1, [member('u1'), member('u2'), member('w')], 'p1')
  await untilSeen(onP2, [member('u3'), member('w2')], 'p2')
  u1.send({ type: 'typing', povId: 'p1', typing: true })
  await onP1.next((m) => m.type === 'typing' && m.userId === 'u1' && m.typing === true)

  const closing = Date.now()
  await b!.app.close()
  const closeTook = Date.now() - closing
  await untilSeen(onP1, [member('w')], 'p1')
  await untilSeen(onP2, [member('w2')], 'p2')
  const elapsed = Date.now() - closing
  t.comment(`a closed instance's members left the other instance's clients ${elapsed} ms after close() began ` +
    `(close() took ${closeTook} ms; the bound for a dead instance is ${DEFAULT_BOUND} ms by default)`)
  t.ok(elapsed < 1000, `at once, not after the liveness bound (${elapsed} ms)`)
  t.ok(onP1.messages.some((m) => m.type === 'typing' && m.userId === 'u1' && m.typing === false), 'u1\'s typing ended')
  for (const povId of ['p1', 'p2']) {
    const fields = (await redis.client.hkeys(`${redis.keyPrefix}{${povId}}:p`)).filter((field) => !field.startsWith('#'))
    t.same(fields.map((field) => field.slice(field.indexOf(':') + 1)), [povId === 'p1' ? 'w' : 'w2'],
      `Redis holds only the staying instance's member of ${povId}`)
  }
  t.same(await a!.app.povRealtime.presence('p1'), [member('w')])
})
