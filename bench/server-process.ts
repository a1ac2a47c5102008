/**
 * A target server in a process of its own. The orchestrator forks it with the server's config (JSON) as its one
 * argument, then asks it to publish (so publish cost is this process's CPU), to report its CPU time and memory, and
 * to profile itself. Run with `--expose-gc` so that memory is measured after a full collection.
 */
import { writeFile } from 'node:fs/promises'
import { Session } from 'node:inspector/promises'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { setImmediate as nextTurn, setTimeout as sleep } from 'node:timers/promises'
import { benchActivity, now } from './activity.js'
import { serveRequests } from './ipc.js'
import type { BenchServer, ServerConfig } from './servers/bench-server.js'
import { startFastifyNaiveServer } from './servers/fastify-naive.js'
import { startPlainWsServer } from './servers/plain-ws.js'
import { startPluginServer } from './servers/plugin.js'
import { startSocketIoServer } from './servers/socket-io.js'

/**
 * What the orchestrator asks for: `count` activities, in bursts or at a fixed rate. Activity `seq` goes to
 * `povIds[seq % povIds.length]`, so instances that publish consecutive ranges keep the PoVs evenly loaded.
 */
export interface PublishRequest {
  count: number
  povIds: string[]
  /** Sequence number of the first activity (ids stay unique across warm-up, measurement and instances). */
  firstSeq: number
  /** Activities per event-loop turn in a burst (I/O runs between turns). */
  chunk: number
  /** Activities per second; when set, they are spread evenly instead of sent in bursts. */
  rate?: number
}

export interface PublishResult {
  startedAt: number
  endedAt: number
  /** Publications that rejected (none expected). */
  failed: number
  /** The first rejection's message, to say why. */
  firstError?: string
}

export interface CpuSnapshot {
  /** User plus system CPU time of this process, in µs. */
  cpuMicros: number
  /** User CPU time alone (JavaScript, V8, libuv), in µs; the rest is the kernel's (socket writes). */
  userMicros: number
  at: number
}

/** Event-loop delay over a window, ms. */
export interface LagSnapshot {
  max: number
  p99: number
}

export interface MemorySnapshot {
  rss: number
  heapUsed: number
  /** Memory outside the JS heap held by JS objects (socket buffers and the like), array buffers included. */
  external: number
}

async function startServer (config: ServerConfig): Promise<BenchServer> {
  switch (config.kind) {
    case 'plugin':
    case 'plugin-redis':
      return startPluginServer(config)
    case 'ws':
      return startPlainWsServer(config.variant)
    case 'fastify-naive':
      return startFastifyNaiveServer()
    case 'socket.io':
      return startSocketIoServer()
  }
}

async function publishMany (server: BenchServer, request: PublishRequest): Promise<PublishResult> {
  const { count, povIds, firstSeq, chunk, rate } = request
  let failed = 0
  let firstError: string | undefined
  let outstanding = 0
  let settleAll: (() => void) | undefined
  const settled = () => {
    if (--outstanding === 0) settleAll?.()
  }
  const startedAt = now()
  for (let i = 0; i < count; i++) {
    if (rate) {
      const wait = startedAt + (i * 1000) / rate - now()
      if (wait >= 1) await sleep(wait)
    } else if (i > 0 && i % chunk === 0) {
      await nextTurn()
    }
    const result = server.publish(benchActivity(firstSeq + i, povIds[(firstSeq + i) % povIds.length]!))
    if (result) {
      outstanding++
      result.then(settled, (err: unknown) => {
        failed++
        firstError ??= err instanceof Error ? `${(err as { code?: string }).code ?? err.name}: ${err.message}` : String(err)
        settled()
      })
    }
  }
  if (outstanding > 0) await new Promise<void>((resolve) => { settleAll = resolve })
  return { startedAt, endedAt: now(), failed, firstError }
}

async function collectGarbage (): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc
  if (!gc) throw new Error('run the server process with --expose-gc to measure memory')
  // Several passes with turns between them, so that finalizers and weak references settle.
  for (let pass = 0; pass < 4; pass++) {
    gc()
    await sleep(20)
  }
}

const config = JSON.parse(process.argv[2] ?? '{}') as ServerConfig
const server = await startServer(config)
let profiler: Session | undefined

serveRequests({
  publish: (request: PublishRequest) => publishMany(server, request),

  cpu: (): CpuSnapshot => {
    const { user, system } = process.cpuUsage()
    return { cpuMicros: user + system, userMicros: user, at: now() }
  },

  memory: async (): Promise<MemorySnapshot> => {
    await collectGarbage()
    const { rss, heapUsed, external } = process.memoryUsage()
    return { rss, heapUsed, external }
  },

  /** How late the event loop ran over the next `ms` (what a heartbeat tick or other timer work adds). */
  lag: async ({ ms }: { ms: number }): Promise<LagSnapshot> => {
    const histogram = monitorEventLoopDelay({ resolution: 5 })
    histogram.enable()
    await sleep(ms)
    histogram.disable()
    return { max: histogram.max / 1e6, p99: histogram.percentile(99) / 1e6 }
  },

  /** Starts the V8 sampling profiler (the same profile `node --cpu-prof` writes, scoped to one phase). */
  profileStart: async () => {
    profiler = new Session()
    profiler.connect()
    await profiler.post('Profiler.enable')
    await profiler.post('Profiler.setSamplingInterval', { interval: 100 })
    await profiler.post('Profiler.start')
  },

  /** Stops the profiler and writes the `.cpuprofile` (open it in Chrome DevTools or summarize it with `--profile`). */
  profileStop: async ({ file }: { file: string }) => {
    if (!profiler) throw new Error('the profiler was not started')
    const { profile } = await profiler.post('Profiler.stop')
    profiler.disconnect()
    profiler = undefined
    await writeFile(file, JSON.stringify(profile))
    return file
  },

  close: () => server.close()
}, { port: server.port })
