/**
 * The instances the load-balancer tests put behind HAProxy or nginx: each a process of its own running
 * `test/e2e/fixtures/balanced-instance.ts` (the Redis broker with presence, `trustProxy`, a sign-in route, a health
 * route), so that a test can kill one for real. The test reaches each directly too, bypassing the balancer, to
 * broadcast from a chosen instance and to read its stats.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import type { SharedRedis } from './redis-server.js'
import { sleep, type Teardown } from './server.js'
import { nextEvent, PROCESS_START_MS } from './socket-waits.js'

const INSTANCE_SCRIPT = fileURLToPath(new URL('../e2e/fixtures/balanced-instance.ts', import.meta.url))
/**
 * The instances run with the repository's own TypeScript loader only, not with tap's loaders and coverage hooks
 * (process.execArgv): those made three instances take 40–48 s to start on a loaded 2-core machine (load average 20),
 * and the instances' coverage is not what these tests are for.
 */
const NODE_ARGS = [`--import=${new URL('../../scripts/typescript-loader.mjs', import.meta.url).href}`]
/** Several instances start at once, each compiling the plugin's TypeScript: twice a single process's time. */
const START_MS = 2 * PROCESS_START_MS

export interface BalancedInstance {
  readonly name: string
  readonly port: number
  /** The instance's own address, bypassing the balancer. */
  readonly directUrl: string
  readonly process: ChildProcess
}

export interface InstanceStats { instance: string, connections: number, subscriptions: number }

export interface InstanceSettings {
  readonly redis: SharedRedis
  /** The public https origin the pages come from (the instances' `allowedOrigins`). */
  readonly origin: string
  /** The broker's `presenceTtl`. */
  readonly presenceTtl: number
  /** The built page script the instances serve at `/page.js`, if the test uses a browser. */
  readonly pageBundle?: string
}

/** Starts the named instances (in parallel); each is killed at teardown. */
export async function startBalancedInstances (t: Teardown, names: readonly string[], settings: InstanceSettings): Promise<BalancedInstance[]> {
  return await Promise.all(names.map((name) => startBalancedInstance(t, name, settings)))
}

async function startBalancedInstance (t: Teardown, name: string, { redis, origin, presenceTtl, pageBundle }: InstanceSettings): Promise<BalancedInstance> {
  const child = spawn(process.execPath, [...NODE_ARGS, INSTANCE_SCRIPT], {
    env: {
      ...process.env,
      REDIS_URL: redis.url,
      KEY_PREFIX: redis.keyPrefix,
      INSTANCE_NAME: name,
      ALLOWED_ORIGIN: origin,
      PRESENCE_TTL: String(presenceTtl),
      ...(pageBundle === undefined ? {} : { PAGE_BUNDLE: pageBundle })
    },
    stdio: ['ignore', 'pipe', 'inherit']
  })
  t.teardown(() => { child.kill('SIGKILL') })
  const [line] = await nextEvent<[string]>(createInterface({ input: child.stdout! }), 'line', `instance ${name}`, { within: START_MS })
  const { port } = JSON.parse(line) as { port: number }
  return { name, port, directUrl: `http://127.0.0.1:${port}`, process: child }
}

export async function statsOf (instance: BalancedInstance): Promise<InstanceStats> {
  return await (await fetch(`${instance.directUrl}/test/stats`)).json() as InstanceStats
}

/** Polls until `check` holds for the stats of every instance in `instances`; rejects after `timeout` ms. */
export async function waitForStats (
  instances: readonly BalancedInstance[], check: (stats: InstanceStats[]) => boolean, what: string, timeout = 20_000
): Promise<InstanceStats[]> {
  const deadline = Date.now() + timeout
  for (;;) {
    const stats = await Promise.all(instances.map(statsOf))
    if (check(stats)) return stats
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(stats)}`)
    await sleep(50)
  }
}

/** Broadcasts an activity to `povId` from `instance` (as the app would after its own write), with `id` as its title. */
export async function broadcastFrom (instance: BalancedInstance, povId: string, id: string): Promise<void> {
  const response = await fetch(`${instance.directUrl}/test/broadcast`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ povId, id, title: id })
  })
  if (response.status !== 200) throw new Error(`broadcast of ${id} answered ${response.status}: ${await response.text()}`)
}

/** How many times each name occurs in `names`. */
export function countOf (names: readonly string[]): Record<string, number> {
  const counts: Record<string, number> = {}
  for (const name of names) counts[name] = (counts[name] ?? 0) + 1
  return counts
}
