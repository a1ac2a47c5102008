/**
 * A real Redis Cluster for tests: three masters and three replicas of `redis-server --cluster-enabled yes`, each on a
 * free loopback port with its own temporary directory and no persistence (and no 5 s wait before a replica's first
 * diskless sync, `repl-diskless-sync-delay 0`: the cluster is up in about 2.5 s instead of 7.5 s), joined by
 * `redis-cli --cluster create … --cluster-replicas 1 --cluster-yes`. Ready once every node reports `cluster_state:ok`
 * and knows all six nodes; every node is stopped by its pid at teardown and the directories removed. The shared Redis
 * at 6379 is never touched.
 */
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, rm } from 'node:fs/promises'
import net from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { Cluster, Redis, type ClusterOptions } from 'ioredis'
import { sleep, type Teardown } from './server.js'

const run = promisify(execFile)

const inCI = process.env.CI === 'true' || process.env.CI === '1'

function runs (command: string): boolean {
  try {
    execFileSync(command, ['--version'], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

/**
 * The `skip` option of a cluster test: skipped (with a loud note) when `redis-server` or `redis-cli` is missing
 * outside CI; under CI the test runs (and fails at once without them: `.ci/run` installs both).
 */
export function skipWithoutRedisCluster (): string | false {
  const missing = ['redis-server', 'redis-cli'].filter((tool) => !runs(tool))
  if (missing.length === 0 || inCI) return false
  console.error(`\n*** SKIPPING a Redis Cluster test: ${missing.join(' and ')} missing. Install with ` +
    '`apt-get install -y redis-server redis-tools` (CI installs them, and under CI=true this test fails instead). ***\n')
  return `${missing.join(' and ')} missing (apt-get install -y redis-server redis-tools)`
}

/** A node's cluster bus listens on its port + 10000, so both must be free. */
const BUS_OFFSET = 10000

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

export interface RedisClusterServer {
  /** Every node, in start order (the first three became masters at creation). */
  readonly nodes: readonly ClusterNodeProcess[]
  /** `host:port` start-up nodes for an ioredis `Cluster`. */
  readonly startupNodes: ReadonlyArray<{ host: string, port: number }>
  /** A new ioredis Cluster client of these nodes (the caller closes it). */
  client (options?: ClusterOptions): Cluster
  /** The node that is master of the slot of `key` now (asks the cluster). */
  masterOf (key: string): Promise<ClusterNodeProcess>
  /**
   * Resolves once every live node reports `cluster_state:ok` and every live replica is in sync with its master, or
   * rejects after `timeout` ms. (Right after a kill, the nodes still report `ok` until they notice.)
   */
  untilHealthy (timeout?: number): Promise<void>
  /**
   * Kills (SIGKILL) the master of `key`'s slot and resolves once a replica has taken over (another live node owns
   * the slot, every live node reports `cluster_state:ok`); resolves with the killed node and how long it took.
   */
  failOver (key: string, timeout?: number): Promise<{ killed: ClusterNodeProcess, ms: number }>
  /**
   * A planned failover: `CLUSTER FAILOVER` on a replica of `key`'s master (the master stops taking writes until the
   * replica has caught up, then they swap roles); resolves once the replica owns the slot and the cluster is healthy.
   */
  plannedFailover (key: string, timeout?: number): Promise<{ ms: number }>
  /**
   * Resharding: moves `key`'s slot to another master the way `redis-cli --cluster reshard` does (IMPORTING on the
   * target, MIGRATING on the source, MIGRATE of its keys in batches, then SETSLOT NODE on every master); resolves with
   * the new master once the cluster names it as the slot's owner.
   */
  migrateSlot (key: string, timeout?: number): Promise<{ from: ClusterNodeProcess, to: ClusterNodeProcess, keys: number, ms: number }>
}

async function isFree (port: number): Promise<boolean> {
  const server = net.createServer()
  return await new Promise<boolean>((resolve) => {
    server.once('error', () => resolve(false))
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)))
  })
}

/** A port with its bus port (+10000) free too, below the ephemeral range so that the bus port stays valid. */
async function freeNodePort (taken: Set<number>): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = 20000 + Math.floor(Math.random() * 20000)
    if (taken.has(port)) continue
    if (await isFree(port) && await isFree(port + BUS_OFFSET)) {
      taken.add(port)
      return port
    }
  }
  throw new Error('no free port pair for a cluster node')
}

async function infoField (port: number, section: string, field: string): Promise<string | undefined> {
  const client = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, enableOfflineQueue: false })
  client.on('error', () => {})
  try {
    await client.connect()
    const text = section === 'cluster' ? await client.cluster('INFO') as string : await client.info(section)
    return new RegExp(`^${field}:(.*)$`, 'm').exec(text)?.[1]?.trim()
  } catch {
    return undefined
  } finally {
    client.disconnect()
  }
}

/** Starts a 3-master, 3-replica cluster; it is stopped at teardown. */
export async function startRedisCluster (t: Teardown): Promise<RedisClusterServer> {
  const dir = await mkdtemp(path.join(tmpdir(), 'pov-cluster-'))
  const taken = new Set<number>()
  const nodes: Array<ClusterNodeProcess & { child: ChildProcess | undefined }> = []
  // Should the test process end without its teardown (a crash), no node outlives it.
  const killAll = () => { for (const node of nodes) node.child?.kill('SIGKILL') }
  process.once('exit', killAll)
  t.teardown(async () => {
    process.off('exit', killAll)
    await Promise.all(nodes.map((node) => node.kill()))
    await rm(dir, { recursive: true, force: true })
  })

  for (let i = 0; i < 6; i++) {
    const port = await freeNodePort(taken)
    const nodeDir = path.join(dir, String(port))
    await run('mkdir', ['-p', nodeDir])
    const child = spawn('redis-server', [
      '--port', String(port), '--bind', '127.0.0.1', '--dir', nodeDir,
      '--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${port}.conf`, '--cluster-node-timeout', '2000',
      '--save', '', '--appendonly', 'no', '--repl-diskless-sync-delay', '0'
    ], { stdio: 'ignore' })
    const node = {
      port,
      child: child as ChildProcess | undefined,
      get pid () { return this.child?.pid },
      async kill () {
        const running = node.child
        if (!running || running.exitCode !== null || running.signalCode !== null) return
        const exited = once(running, 'exit')
        running.kill('SIGKILL')
        await exited
        node.child = undefined
      },
      pause () { node.child?.kill('SIGSTOP') },
      resume () { node.child?.kill('SIGCONT') }
    }
    nodes.push(node)
  }
  for (const node of nodes) {
    const deadline = Date.now() + 10_000
    while (await infoField(node.port, 'server', 'redis_version') === undefined) {
      if (Date.now() > deadline) throw new Error(`cluster node ${node.port} did not start`)
      await sleep(50)
    }
  }
  await run('redis-cli', ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`),
    '--cluster-replicas', '1', '--cluster-yes'], { timeout: 30_000 })

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
  await untilHealthy()

  /** The port of the node a live node names as master of `slot`. */
  async function ownerOf (slot: number): Promise<number | undefined> {
    for (const node of live()) {
      const client = new Redis({ port: node.port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null })
      client.on('error', () => {})
      try {
        await client.connect()
        const ranges = await client.cluster('SLOTS')
        return ranges.find(([from, to]) => slot >= from && slot <= to)?.[2]?.[1]
      } catch {
        continue
      } finally {
        client.disconnect()
      }
    }
    return undefined
  }

  /** The node that is master of `key`'s slot now. */
  async function masterOf (key: string): Promise<ClusterNodeProcess> {
    const probe = new Cluster(live().map((node) => ({ host: '127.0.0.1', port: node.port })))
    probe.on('error', () => {})
    try {
      const slot = await probe.cluster('KEYSLOT', key) as number
      const ranges = await probe.cluster('SLOTS')
      const owner = ranges.find(([from, to]) => slot >= from && slot <= to)
      const node = nodes.find((n) => n.port === owner?.[2]?.[1])
      if (!node) throw new Error(`no master found for ${key}`)
      return node
    } finally {
      probe.disconnect()
    }
  }

  const startupNodes = nodes.map((node) => ({ host: '127.0.0.1', port: node.port }))
  return {
    nodes,
    startupNodes,
    client: (options) => new Cluster(startupNodes, options),
    masterOf,
    untilHealthy,
    async plannedFailover (key, timeout = 30_000) {
      const master = await masterOf(key)
      const probe = new Redis({ port: master.port, host: '127.0.0.1', lazyConnect: true })
      const slot = await probe.call('CLUSTER', 'KEYSLOT', key) as number
      const replicaPort = Number(/^slave0:.*port=(\d+)/m.exec(await probe.info('replication'))?.[1])
      probe.disconnect()
      const replica = new Redis({ port: replicaPort, host: '127.0.0.1', lazyConnect: true })
      const started = Date.now()
      await replica.call('CLUSTER', 'FAILOVER')
      replica.disconnect()
      while (await ownerOf(slot) !== replicaPort) {
        if (Date.now() - started > timeout) throw new Error(`the replica on ${replicaPort} did not take over slot ${slot} within ${timeout} ms`)
        await sleep(50)
      }
      await untilHealthy(Math.max(1000, timeout - (Date.now() - started)))
      return { ms: Date.now() - started }
    },
    async migrateSlot (key, timeout = 30_000) {
      const from = await masterOf(key)
      const admin = (port: number) => {
        const client = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0 })
        client.on('error', () => {})
        return client
      }
      const source = admin(from.port)
      const started = Date.now()
      try {
        const slot = await source.call('CLUSTER', 'KEYSLOT', key) as number
        // Each node is asked its own role and id: a view of the cluster right after a failover may still be stale.
        const masters: Array<{ node: ClusterNodeProcess, id: string }> = []
        for (const node of live()) {
          if (await infoField(node.port, 'replication', 'role') !== 'master') continue
          const client = admin(node.port)
          try {
            masters.push({ node, id: await client.call('CLUSTER', 'MYID') as string })
          } finally {
            client.disconnect()
          }
        }
        const idOf = (port: number) => masters.find(({ node }) => node.port === port)!.id
        const to = masters.find(({ node }) => node !== from)!.node
        const target = admin(to.port)
        try {
          await target.call('CLUSTER', 'SETSLOT', slot, 'IMPORTING', idOf(from.port))
          await source.call('CLUSTER', 'SETSLOT', slot, 'MIGRATING', idOf(to.port))
          let keys = 0
          for (;;) {
            const batch = await source.call('CLUSTER', 'GETKEYSINSLOT', slot, 100) as string[]
            if (batch.length === 0) break
            await source.call('MIGRATE', '127.0.0.1', to.port, '', 0, 5000, 'KEYS', ...batch)
            keys += batch.length
          }
          // The target first, then the source (as redis-cli does), then every other master.
          await target.call('CLUSTER', 'SETSLOT', slot, 'NODE', idOf(to.port))
          await source.call('CLUSTER', 'SETSLOT', slot, 'NODE', idOf(to.port))
          for (const { node } of masters) {
            if (node === from || node === to) continue
            const other = admin(node.port)
            try {
              await other.call('CLUSTER', 'SETSLOT', slot, 'NODE', idOf(to.port))
            } finally {
              other.disconnect()
            }
          }
          while (await ownerOf(slot) !== to.port) {
            if (Date.now() - started > timeout) throw new Error(`slot ${slot} did not move to ${to.port} within ${timeout} ms`)
            await sleep(50)
          }
          await untilHealthy(Math.max(1000, timeout - (Date.now() - started)))
          return { from, to, keys, ms: Date.now() - started }
        } finally {
          target.disconnect()
        }
      } finally {
        source.disconnect()
      }
    },
    async failOver (key, timeout = 30_000) {
      const killed = await masterOf(key)
      const probe = new Redis({ port: killed.port, host: '127.0.0.1', lazyConnect: true })
      const slot = await probe.call('CLUSTER', 'KEYSLOT', key) as number
      probe.disconnect()
      const started = Date.now()
      await killed.kill()
      for (;;) {
        const owner = await ownerOf(slot)
        if (owner !== undefined && owner !== killed.port) break
        if (Date.now() - started > timeout) throw new Error(`no replica took over slot ${slot} within ${timeout} ms`)
        await sleep(100)
      }
      await untilHealthy(Math.max(1000, timeout - (Date.now() - started)))
      return { killed, ms: Date.now() - started }
    }
  }
}
