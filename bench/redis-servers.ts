/**
 * Redis servers of our own: a stand-alone `redis-server` and a Redis Cluster of three masters and three replicas
 * (`redis-server --cluster-enabled yes`, joined by `redis-cli --cluster create … --cluster-replicas 1`), each node on
 * a free loopback port with no persistence, stopped by its pid (and killed should this process end first). Shared by
 * the benchmark (the cluster target, `--sharding`) and the tests (`test/helpers/redis-cluster.ts`,
 * `redis-server.ts`); it lives here because the benchmark is compiled from `bench/` alone. The shared Redis at 6379
 * is never touched.
 */
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import net from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { promisify } from 'node:util'
import { Redis } from 'ioredis'

const run = promisify(execFile)

/** How to get the tools, for the messages of whoever finds them missing. */
export const REDIS_TOOLS_HINT = 'apt-get install -y redis-server redis-tools'

/** Which of `redis-server` and `redis-cli` cannot be run here. */
export function missingRedisTools (): string[] {
  return ['redis-server', 'redis-cli'].filter((command) => {
    try {
      execFileSync(command, ['--version'], { stdio: 'ignore' })
      return false
    } catch {
      return true
    }
  })
}

/** `redis-server --version`'s version, for reports. */
export function redisServerVersion (): string {
  try {
    return /v=(\S+)/.exec(execFileSync('redis-server', ['--version'], { encoding: 'utf8' }))?.[1] ?? '?'
  } catch {
    return '?'
  }
}

/** `redis-server` exited before it answered (most often: its port was taken between the check and the bind). */
class RedisExitedError extends Error {}

/**
 * Resolves once something on `port` answers PING with PONG, or rejects after `timeout` ms; with `child`, rejects with
 * {@link RedisExitedError} as soon as that process has exited.
 */
export async function untilRedisAnswers (port: number, timeout = 10_000, child?: ChildProcess): Promise<void> {
  const deadline = Date.now() + timeout
  for (;;) {
    if (child && (child.exitCode !== null || child.signalCode !== null)) {
      throw new RedisExitedError(`redis-server on port ${port} exited at start (${child.exitCode ?? child.signalCode})`)
    }
    const ok = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, '127.0.0.1')
      socket.setTimeout(500, () => { socket.destroy(); resolve(false) })
      socket.once('error', () => resolve(false))
      socket.once('connect', () => socket.write('PING\r\n'))
      socket.once('data', (data) => { socket.destroy(); resolve(data.toString().startsWith('+PONG')) })
    })
    if (ok) return
    if (Date.now() > deadline) throw new Error(`redis-server on port ${port} did not answer within ${timeout} ms`)
    await sleep(50)
  }
}

/** Spawns `redis-server` on `port` of 127.0.0.1, without persistence; `args` are more of its options. */
export function spawnRedisServer (port: number, args: readonly string[] = []): ChildProcess {
  return spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', ...args], {
    stdio: 'ignore'
  })
}

/** Kills `child` at once (SIGKILL), as a crash would; resolves when it has exited (at once if it already had). */
export async function killProcess (child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return
  const exited = once(child, 'exit')
  child.kill('SIGKILL')
  await exited
}

/** The text of `INFO <section>` (or of `CLUSTER INFO`, for `cluster`) of the node on `port`, or undefined. */
export async function redisInfo (port: number, section: string): Promise<string | undefined> {
  const client = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, enableOfflineQueue: false })
  client.on('error', () => {})
  try {
    await client.connect()
    return section === 'cluster' ? await client.cluster('INFO') as string : await client.info(section)
  } catch {
    return undefined
  } finally {
    client.disconnect()
  }
}

/** One `field:value` line of an INFO text. */
export function infoValue (text: string | undefined, field: string): string | undefined {
  return text === undefined ? undefined : new RegExp(`^${field}:(.*)$`, 'm').exec(text)?.[1]?.trim()
}

export async function infoField (port: number, section: string, field: string): Promise<string | undefined> {
  return infoValue(await redisInfo(port, section), field)
}

/** Kills every child still running when this process exits without having stopped them (a crash). */
function killAtExit (children: () => Iterable<ChildProcess | undefined>): () => void {
  const killAll = () => { for (const child of children()) child?.kill('SIGKILL') }
  process.once('exit', killAll)
  return () => process.off('exit', killAll)
}

export interface StandaloneRedis {
  readonly port: number
  readonly url: string
  readonly pid: number | undefined
  stop (): Promise<void>
}

/** A stand-alone `redis-server` on a free port, answering PING; `stop` kills it by its pid. */
export async function startStandaloneRedis (): Promise<StandaloneRedis> {
  let child: ChildProcess | undefined
  const forget = killAtExit(() => [child])
  const stop = async () => {
    forget()
    await killProcess(child)
  }
  try {
    const started = await spawnAnsweringRedis(new Set(), () => [], (spawned) => { child = spawned })
    return { port: started.port, url: `redis://127.0.0.1:${started.port}`, pid: started.child.pid, stop }
  } catch (err) {
    await stop()
    throw err
  }
}

/** Attempts at starting one `redis-server`, each on another free port. */
const START_ATTEMPTS = 3

/**
 * Spawns `redis-server` on a free port (and its bus port, `+10000`, for a cluster node) with `argsFor(port)`, and
 * resolves once it answers. The ports were free when picked, but another process (a test file running beside this one
 * and starting servers of its own) may bind one first: redis-server then exits at once, and another port is tried.
 * `spawned` hears of each process as it starts, so that the caller can kill it whatever happens next.
 */
async function spawnAnsweringRedis (
  taken: Set<number>, argsFor: (port: number) => Promise<string[]> | string[], spawned: (child: ChildProcess) => void
): Promise<{ port: number, child: ChildProcess }> {
  for (let attempt = 1; ; attempt++) {
    const port = await freeNodePort(taken)
    const child = spawnRedisServer(port, await argsFor(port))
    spawned(child)
    try {
      await untilRedisAnswers(port, 10_000, child)
      return { port, child }
    } catch (err) {
      if (!(err instanceof RedisExitedError) || attempt === START_ATTEMPTS) throw err
    }
  }
}

/** A node's cluster bus listens on its port + 10000, so both must be free. */
const BUS_OFFSET = 10000

async function isFree (port: number): Promise<boolean> {
  const server = net.createServer()
  return await new Promise<boolean>((resolve) => {
    server.once('error', () => resolve(false))
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)))
  })
}

/**
 * A port with its bus port (+10000) free too, both below Linux's ephemeral range (32768 and up): a port in that range
 * can be taken by any outgoing connection between the check and redis-server's bind (it was: a node that never
 * answered, in one CI run of several).
 */
async function freeNodePort (taken: Set<number>): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = 10000 + Math.floor(Math.random() * (32768 - BUS_OFFSET - 10000))
    if (taken.has(port)) continue
    if (await isFree(port) && await isFree(port + BUS_OFFSET)) {
      taken.add(port)
      return port
    }
  }
  throw new Error('no free port pair for a Redis node')
}

export interface ClusterNodeProcess {
  readonly port: number
  /** The running node's pid (undefined once killed). */
  readonly pid: number | undefined
  /** Kills the node at once (SIGKILL), as a crash would; resolves when it has exited. */
  kill (): Promise<void>
  /** Freezes the node (SIGSTOP): its connections stay open, nothing answers. */
  pause (): void
  /** Thaws a paused node (SIGCONT). */
  resume (): void
}

export interface RedisClusterNodes {
  /** Every node, in start order (the first three became masters at creation). */
  readonly nodes: readonly ClusterNodeProcess[]
  /** `host:port` start-up nodes for an ioredis `Cluster`. */
  readonly startupNodes: ReadonlyArray<{ host: string, port: number }>
  /** The nodes not killed. */
  live (): ClusterNodeProcess[]
  /**
   * Resolves once every live node reports `cluster_state:ok` and knows all six nodes, and every live replica is in
   * sync with its master, or rejects after `timeout` ms. (Right after a kill, the nodes still report `ok` until they
   * notice.)
   */
  untilHealthy (timeout?: number): Promise<void>
  /** Kills every node and removes their directories. */
  stop (): Promise<void>
}

/** Starts a 3-master, 3-replica cluster and resolves once it is healthy; `stop` ends it. */
export async function startRedisClusterNodes (): Promise<RedisClusterNodes> {
  const dir = await mkdtemp(path.join(tmpdir(), 'pov-cluster-'))
  const taken = new Set<number>()
  const nodes: Array<ClusterNodeProcess & { child: ChildProcess | undefined }> = []
  /** The node being started, until it answers (and becomes one of `nodes`). */
  let starting: ChildProcess | undefined
  const forget = killAtExit(() => [...nodes.map((node) => node.child), starting])
  const stop = async () => {
    forget()
    await Promise.all([...nodes.map((node) => node.kill()), killProcess(starting)])
    await rm(dir, { recursive: true, force: true })
  }

  const live = () => nodes.filter((node) => node.child !== undefined)
  async function untilHealthy (timeout = 20_000): Promise<void> {
    const deadline = Date.now() + timeout
    for (;;) {
      const states = await Promise.all(live().map(async (node) => ({
        state: await infoField(node.port, 'cluster', 'cluster_state'),
        known: await infoField(node.port, 'cluster', 'cluster_known_nodes'),
        role: await infoField(node.port, 'replication', 'role'),
        link: await infoField(node.port, 'replication', 'master_link_status')
      })))
      // A replica that has not finished its first sync cannot be promoted: wait for it, so that a kill can fail over.
      if (states.every(({ state, known, role, link }) => state === 'ok' && known === '6' && (role === 'master' || link === 'up'))) return
      if (Date.now() > deadline) throw new Error(`the cluster is not healthy after ${timeout} ms: ${JSON.stringify(states)}`)
      await sleep(100)
    }
  }

  try {
    for (let i = 0; i < 6; i++) {
      const { port, child } = await spawnAnsweringRedis(taken, async (port) => {
        const nodeDir = path.join(dir, String(port))
        await mkdir(nodeDir, { recursive: true })
        return [
          '--dir', nodeDir, '--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${port}.conf`,
          // No 5 s wait before a replica's first (diskless) sync: the cluster is up in about 2.5 s instead of 7.5 s.
          '--cluster-node-timeout', '2000', '--repl-diskless-sync-delay', '0'
        ]
      }, (spawned) => { starting = spawned })
      starting = undefined
      const node = {
        port,
        child: child as ChildProcess | undefined,
        get pid () { return this.child?.pid },
        async kill () {
          await killProcess(node.child)
          node.child = undefined
        },
        pause () { node.child?.kill('SIGSTOP') },
        resume () { node.child?.kill('SIGCONT') }
      }
      nodes.push(node)
    }
    await run('redis-cli', ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`),
      '--cluster-replicas', '1', '--cluster-yes'], { timeout: 30_000 })
    await untilHealthy()
  } catch (err) {
    await stop()
    throw err
  }

  return {
    nodes,
    startupNodes: nodes.map((node) => ({ host: '127.0.0.1', port: node.port })),
    live,
    untilHealthy,
    stop
  }
}
