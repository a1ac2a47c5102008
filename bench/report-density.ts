/**
 * The "density" section of docs/benchmarks.md: one run of the connection-density scenario per target, side by side,
 * with the plugin's ratios to plain `ws` and Socket.IO. One trial (18,000 sockets take minutes per target here).
 */
import type { DensityMeasurement, DensityScenario } from './density.js'
import type { Machine } from './report.js'
import type { Target } from './targets.js'

const fixed = (value: number, digits: number) => value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })
const kib = (bytes: number) => fixed(bytes / 1024, 1)

/** `a ÷ b` as `1.23×`, or `–`. */
function ratio (a: number | undefined, b: number | undefined): string {
  return a === undefined || b === undefined || b === 0 ? '–' : `${fixed(a / b, 2)}×`
}

export interface DensityRunInfo {
  machine: Machine
  startedAt: Date
  minutes: number
  load: number
  scenario: DensityScenario
}

export function renderDensity (info: DensityRunInfo, targets: readonly Target[], measurements: readonly DensityMeasurement[]): string {
  const { scenario: s, machine } = info
  const byId = new Map(measurements.map((m) => [m.target, m]))
  const ws = byId.get('ws')
  const io = byId.get('socket.io')
  const lines = [
    `Run of ${info.startedAt.toISOString().slice(0, 16).replace('T', ' ')} UTC, commit ${machine.commit}, one trial per target, ` +
      `${fixed(info.minutes, 1)} minutes; ${machine.cpu}, ${machine.cores} cores, Node ${machine.node}. Load average (1 min) at the end: ` +
      `${fixed(info.load, 2)}: the machine was shared with other work, so absolute figures are noisy.`,
    '',
    `${s.clients.toLocaleString('en-US')} sockets over ${s.povs.toLocaleString('en-US')} PoVs (one each), ` +
      `${Math.ceil(s.clients / s.perProcess)} load-generator processes; ${s.largePov.toLocaleString('en-US')} of them also watch one large PoV. ` +
      'Memory per connection: connected and subscribed, after a full GC, over the server\'s idle baseline. Large PoV: ' +
      `${s.largeBroadcasts} broadcasts at ${s.largeRate}/s; steady: ${s.steadyBroadcasts} broadcasts at ${s.steadyRate}/s round robin over the PoVs, ` +
      `all sockets connected. Event-loop delay: the server's, over ${fixed(s.lagWindow / 1000, 1)} s idle (the plugin's heartbeat every ` +
      `${fixed(s.heartbeatInterval / 1000, 1)} s pings every socket once in it; plain \`ws\` pings nothing, Socket.IO pings every 25 s).`,
    '',
    '| target | connections/s | server CPU µs / connection | RSS KiB / connection | heap + external KiB / connection | large PoV p99 ms (delivered) | steady p99 ms (delivered) | event-loop delay max ms (p99) |',
    '|---|--:|--:|--:|--:|--:|--:|--:|'
  ]
  for (const target of targets) {
    const m = byId.get(target.id)
    if (!m) continue
    lines.push(`| ${target.label} | ${fixed(m.perSecond, 0)} | ${fixed(m.cpuMicros, 0)} | ${kib(m.rssBytes)} | ${kib(m.heapBytes)} | ` +
      `${fixed(m.large.p99, 1)} (${m.large.received}/${m.large.expected}) | ${fixed(m.steady.p99, 1)} (${m.steady.received}/${m.steady.expected}) | ` +
      `${fixed(m.lag.max, 1)} (${fixed(m.lag.p99, 1)}) |`)
  }
  const plugin = byId.get('plugin')
  if (plugin) {
    lines.push('', '| the plugin against | connections/s | RSS / connection | heap + external / connection | large PoV p99 | steady p99 |', '|---|--:|--:|--:|--:|--:|')
    for (const [label, other] of [['plain `ws`', ws], ['Socket.IO', io]] as const) {
      if (!other) continue
      lines.push(`| ${label} | ${ratio(plugin.perSecond, other.perSecond)} | ${ratio(plugin.rssBytes, other.rssBytes)} | ` +
        `${ratio(plugin.heapBytes, other.heapBytes)} | ${ratio(plugin.large.p99, other.large.p99)} | ${ratio(plugin.steady.p99, other.steady.p99)} |`)
    }
  }
  return lines.join('\n')
}
