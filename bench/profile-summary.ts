/**
 * Reads a V8 `.cpuprofile` (what `node --cpu-prof` and the inspector write) and says where the time went: by
 * component (the plugin, ws, Node's streams and sockets, GC…) and by function, self and inclusive, per unit of
 * work (a delivery, or a connection set up).
 */
import { readFile } from 'node:fs/promises'

interface CallFrame { functionName: string, url: string, lineNumber: number }
interface ProfileNode { id: number, callFrame: CallFrame, children?: number[] }
interface CpuProfile { nodes: ProfileNode[], samples: number[], timeDeltas: number[] }

export interface TimeShare {
  name: string
  /** Nanoseconds per unit of work (a delivery, or a connection set up). */
  nsEach: number
  /** Share of the busy (non-idle) time. */
  share: number
}

export interface ProfileSummary {
  /** Busy time in the profile per unit of work, ns. */
  busyNsEach: number
  /** By component, the small ones (under 0.5 %) summed in one row. */
  byComponent: TimeShare[]
  topSelf: TimeShare[]
  topInclusive: TimeShare[]
}

/** The component a frame belongs to, from its script URL. */
function componentOf ({ functionName, url }: CallFrame): string {
  if (url === '') {
    if (functionName === '(garbage collector)') return 'GC'
    if (functionName === '(program)') return 'V8 / native (program)'
    if (functionName === '(idle)') return 'idle'
    // The stream_base natives that hand bytes to libuv: on loopback, the syscall also runs the receiver's TCP path.
    if (/^write(v|Buffer|Utf8String|Latin1String|AsciiString)$/.test(functionName)) return 'socket writes (native, syscall)'
    return 'built-ins (native)'
  }
  if (url.includes('/node_modules/ws/')) return 'ws'
  if (/\/node_modules\/(socket\.io|engine\.io)/.test(url)) return 'socket.io / engine.io'
  if (/\/node_modules\/(@fastify|fastify|avvio|light-my-request|find-my-way)/.test(url)) return 'fastify'
  if (url.includes('fastify-pov-realtime-bench')) return 'benchmark harness'
  if (url.startsWith('node:internal/streams') || url === 'node:stream') return 'node: streams'
  if (url === 'node:net' || url.startsWith('node:internal/stream_base')) return 'node: net / stream_base (writes)'
  if (url.startsWith('node:')) return `node: ${url.slice(5).replace(/^internal\//, '')}`
  if (url.includes('/node_modules/')) return url.replace(/.*\/node_modules\/((@[^/]+\/)?[^/]+).*/, '$1')
  if (url.includes('/dist/')) return 'plugin (dist/)'
  return 'other'
}

/** A short file name: from the last `node_modules/`, else from the package's `dist/`. */
function shortFile (url: string): string {
  const modules = url.lastIndexOf('/node_modules/')
  if (modules !== -1) return url.slice(modules + 1).replace(/^node_modules\/\.cache\/fastify-pov-realtime-bench\/\d+\//, 'bench/')
  const dist = url.lastIndexOf('/dist/')
  return dist !== -1 ? url.slice(dist + 1) : url
}

function functionKey ({ functionName, url, lineNumber }: CallFrame): string {
  const file = shortFile(url)
  return `${functionName || '(anonymous)'} ${file ? `${file}:${lineNumber + 1}` : '(native)'}`
}

function ranked (totals: Map<string, number>, busy: number, units: number, limit: number): TimeShare[] {
  return [...totals]
    .sort((a, b) => b[1] - a[1])
    .slice(0, limit)
    .map(([name, micros]) => ({ name, nsEach: (micros * 1000) / units, share: micros / busy }))
}

/** The components of at least `minShare` of the busy time, the rest summed as one row. */
function mainComponents (components: TimeShare[], minShare: number): TimeShare[] {
  const main = components.filter((c) => c.share >= minShare)
  const rest = components.filter((c) => c.share < minShare)
  if (rest.length === 0) return main
  const sum = (key: 'nsEach' | 'share') => rest.reduce((total, c) => total + c[key], 0)
  return [...main, { name: `${rest.length} others`, nsEach: sum('nsEach'), share: sum('share') }]
}

/** Summarizes the profile at `file`, whose measured phase did `units` units of work (deliveries, connections). */
export async function summarizeProfile (file: string, units: number, limit = 20): Promise<ProfileSummary> {
  const profile = JSON.parse(await readFile(file, 'utf8')) as CpuProfile
  const byId = new Map(profile.nodes.map((node) => [node.id, node]))
  const self = new Map<number, number>()
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i]!
    self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i + 1] ?? 0))
  }

  const byComponent = new Map<string, number>()
  const selfByFunction = new Map<string, number>()
  let busy = 0
  for (const [id, micros] of self) {
    const frame = byId.get(id)!.callFrame
    const component = componentOf(frame)
    if (component === 'idle') continue
    busy += micros
    byComponent.set(component, (byComponent.get(component) ?? 0) + micros)
    selfByFunction.set(functionKey(frame), (selfByFunction.get(functionKey(frame)) ?? 0) + micros)
  }

  // Inclusive time: a function's subtree, counted once per stack even when it recurses.
  const inclusive = new Map<string, number>()
  const onStack = new Map<string, number>()
  const visit = (node: ProfileNode): number => {
    const key = functionKey(node.callFrame)
    onStack.set(key, (onStack.get(key) ?? 0) + 1)
    let total = componentOf(node.callFrame) === 'idle' ? 0 : (self.get(node.id) ?? 0)
    for (const child of node.children ?? []) total += visit(byId.get(child)!)
    const depth = onStack.get(key)! - 1
    if (depth === 0) inclusive.set(key, (inclusive.get(key) ?? 0) + total)
    onStack.set(key, depth)
    return total
  }
  visit(profile.nodes[0]!)
  // Roots and the benchmark's own publishing loop enclose everything: they say nothing about where the time went.
  for (const key of inclusive.keys()) {
    if (/^\((root|program|idle|garbage collector)\) /.test(key) || key.includes(' bench/')) inclusive.delete(key)
  }

  return {
    busyNsEach: (busy * 1000) / units,
    byComponent: mainComponents(ranked(byComponent, busy, units, Infinity), 0.005),
    topSelf: ranked(selfByFunction, busy, units, limit),
    topInclusive: ranked(inclusive, busy, units, limit)
  }
}
