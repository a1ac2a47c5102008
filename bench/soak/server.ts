/**
 * The soak's server, in a process of its own (run with `--expose-gc`): the built plugin (`dist/`) with its defaults on
 * Fastify. The orchestrator asks it to publish at a fixed rate across PoVs, to report its memory (after a full GC) and
 * `stats()`, and to stop. Each activity carries its PoV's sequence number and its publish time, so that a client can
 * tell a lost, duplicated or reordered delivery and measure latency.
 */
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import Fastify from 'fastify'
import type { PovRealtimeStats } from '../../lib/stats.js'
import { now } from '../activity.js'
import { serveRequests } from '../ipc.js'

type PluginModule = typeof import('../../index.js')

export interface SoakServerArgs {
  root: string
  secret: string
}

export interface PublishArgs {
  /** Activities per second, over all PoVs. */
  rate: number
  povIds: string[]
}

export interface PublishedCounts {
  /** The last sequence number of each PoV: its number of activities. */
  perPov: Record<string, number>
  /** Publications that rejected (none expected). */
  failed: number
  firstError?: string
}

export interface ServerSample {
  at: number
  rss: number
  heapUsed: number
  external: number
  stats: PovRealtimeStats
  /** Log lines at warn or above so far. */
  warnings: number
}

/** How often the publisher wakes; each tick publishes what is due, at most one second's worth. */
const TICK_MS = 10
/** Log lines kept to show at the end. */
const KEPT_LOG_LINES = 20

const { root, secret } = JSON.parse(process.argv[2]!) as SoakServerArgs
const { default: povRealtime } = await import(pathToFileURL(join(root, 'dist', 'index.js')).href) as PluginModule
const gc = (globalThis as { gc?: () => void }).gc

let warnings = 0
const keptLines: string[] = []
const app = Fastify({
  logger: {
    level: 'warn',
    stream: {
      write (line: string) {
        warnings++
        if (keptLines.length < KEPT_LOG_LINES) keptLines.push(line.trim())
      }
    }
  }
})
await app.register(povRealtime, { secret })
await app.listen({ host: '127.0.0.1', port: 0 })

const lastSeq = new Map<string, number>()
let failed = 0
let firstError: string | undefined
let publisher: NodeJS.Timeout | undefined

function publishOne (povId: string): void {
  const seq = (lastSeq.get(povId) ?? 0) + 1
  lastSeq.set(povId, seq)
  app.broadcastActivity({
    id: `${povId}-${seq}`,
    type: 'note',
    action: 'created',
    povId,
    userId: 'soak',
    title: 'Soak',
    message: 'An activity of the soak run; its metadata says which one.',
    metadata: { seq, sentAt: now() }
  }).catch((err: unknown) => {
    failed++
    firstError ??= err instanceof Error ? err.message : String(err)
  })
}

function publish ({ rate, povIds }: PublishArgs): void {
  const startedAt = performance.now()
  let count = 0
  publisher = setInterval(() => {
    const due = Math.floor((performance.now() - startedAt) * rate / 1000)
    const upTo = Math.min(due, count + rate)
    for (; count < upTo; count++) publishOne(povIds[count % povIds.length]!)
  }, TICK_MS)
}

function stop (): PublishedCounts {
  clearInterval(publisher)
  return { perPov: Object.fromEntries(lastSeq), failed, ...(firstError ? { firstError } : {}) }
}

function sample (): ServerSample {
  if (gc) for (let i = 0; i < 2; i++) gc()
  const { rss, heapUsed, external } = process.memoryUsage()
  return { at: now(), rss, heapUsed, external, stats: app.povRealtime.stats(), warnings }
}

async function close (): Promise<string[]> {
  await app.close()
  return keptLines
}

serveRequests({ publish, stop, sample, close }, { port: (app.server.address() as { port: number }).port })
