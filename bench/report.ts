/**
 * The results as Markdown, and the one place that writes them into docs/benchmarks.md: only between the generated
 * sections' markers, so the prose around them is kept.
 */
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { readFile, writeFile } from 'node:fs/promises'
import { cpus, loadavg, release, totalmem, type } from 'node:os'
import { join } from 'node:path'
import type { Measurement } from './measure.js'
import type { ProfileSummary } from './profile-summary.js'
import type { Scenario } from './scenarios.js'
import { ratioOf, spreadOf, type Metric, type Spread } from './statistics.js'
import type { Target } from './targets.js'

export interface Machine {
  cpu: string
  cores: number
  memoryGiB: number
  os: string
  node: string
  versions: Record<string, string>
  commit: string
}

export function describeMachine (root: string): Machine {
  const versionOf = (name: string) => {
    try {
      return (JSON.parse(readFileSync(join(root, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version
    } catch {
      return '?'
    }
  }
  let commit = '?'
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root, encoding: 'utf8' }).trim()
  } catch {}
  return {
    cpu: cpus()[0]?.model ?? '?',
    cores: cpus().length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    os: `${type()} ${release()}`,
    node: process.version,
    versions: Object.fromEntries(['fastify', '@fastify/websocket', 'ws', 'socket.io'].map((name) => [name, versionOf(name)])),
    commit
  }
}

/** One-minute load averages seen while the benchmark ran. */
export function loadNow (): number {
  return loadavg()[0]!
}

export const number = (value: number, digits: number) => value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })

export function cell (value: Spread | undefined, digits: number, unit = ''): string {
  if (!value) return '–'
  if (value.min === value.max) return `${number(value.median, digits)}${unit}`
  return `${number(value.median, digits)}${unit} <sub>${number(value.min, digits)}–${number(value.max, digits)}</sub>`
}

export const ratioCell = (value: Spread | undefined) => cell(value, 2, '×')

export const perSecond: Metric = (m) => m.deliveries?.perSecond
export const cpuPerDelivery: Metric = (m) => m.deliveries?.cpuMicros
export const userCpuPerDelivery: Metric = (m) => m.deliveries?.userMicros
export const p50: Metric = (m) => m.deliveries?.p50
export const p99: Metric = (m) => m.deliveries?.p99
export const connectionsPerSecond: Metric = (m) => m.connections?.perSecond
export const cpuPerConnection: Metric = (m) => m.connections?.cpuMicros
export const heapPerConnection: Metric = (m) => m.connections?.heapBytes
export const rssPerConnection: Metric = (m) => m.connections?.rssBytes
export const heapPerSubscription: Metric = (m) => m.connections?.subscriptionHeapBytes

const kib: (metric: Metric) => Metric = (metric) => (m) => {
  const value = metric(m)
  return value === undefined ? undefined : value / 1024
}

/** Runs that lost, duplicated or refused something: each one is listed under its table. */
function problems (measurements: readonly Measurement[]): string[] {
  return measurements
    .filter((m) => m.deliveries && (m.deliveries.received !== m.deliveries.expected || m.deliveries.errors || m.deliveries.failed))
    .map((m) => `- ${m.target}, trial ${m.trial}: ${m.deliveries!.received} of ${m.deliveries!.expected} deliveries, ` +
      `${m.deliveries!.errors} error messages, ${m.deliveries!.failed} publications rejected` +
      (m.deliveries!.firstError ? ` (first: \`${m.deliveries!.firstError}\`)` : ''))
}

function deliveriesTable (measurements: readonly Measurement[], targets: readonly Target[]): string[] {
  const lines = [
    '| target | deliveries/s | server CPU µs / delivery | of which user | p50 ms | p99 ms | CPU / delivery ÷ ws | user CPU ÷ ws | p99 ÷ ws | deliveries/s ÷ Socket.IO | CPU / delivery ÷ Socket.IO |',
    '|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|'
  ]
  for (const target of targets) {
    const of = (metric: Metric, digits: number) => cell(spreadOf(measurements, target.id, metric), digits)
    lines.push(`| ${target.label} | ${of(perSecond, 0)} | ${of(cpuPerDelivery, 2)} | ${of(userCpuPerDelivery, 2)} | ${of(p50, 2)} | ${of(p99, 2)} | ` +
      `${ratioCell(ratioOf(measurements, target.id, 'ws', cpuPerDelivery))} | ${ratioCell(ratioOf(measurements, target.id, 'ws', userCpuPerDelivery))} | ` +
      `${ratioCell(ratioOf(measurements, target.id, 'ws', p99))} | ` +
      `${ratioCell(ratioOf(measurements, target.id, 'socket.io', perSecond))} | ${ratioCell(ratioOf(measurements, target.id, 'socket.io', cpuPerDelivery))} |`)
  }
  return lines
}

function connectionsTable (measurements: readonly Measurement[], targets: readonly Target[]): string[] {
  const lines = [
    '| target | connections/s | server CPU µs / connection | KiB / idle connection (heap + external) | KiB / idle connection (RSS) | bytes / subscription | memory ÷ ws | memory ÷ Socket.IO | CPU / connection ÷ ws |',
    '|---|--:|--:|--:|--:|--:|--:|--:|--:|'
  ]
  for (const target of targets) {
    const of = (metric: Metric, digits: number) => cell(spreadOf(measurements, target.id, metric), digits)
    lines.push(`| ${target.label} | ${of(connectionsPerSecond, 0)} | ${of(cpuPerConnection, 0)} | ${of(kib(heapPerConnection), 1)} | ` +
      `${of(kib(rssPerConnection), 1)} | ${of(heapPerSubscription, 0)} | ${ratioCell(ratioOf(measurements, target.id, 'ws', heapPerConnection))} | ` +
      `${ratioCell(ratioOf(measurements, target.id, 'socket.io', heapPerConnection))} | ${ratioCell(ratioOf(measurements, target.id, 'ws', cpuPerConnection))} |`)
  }
  return lines
}

export interface RunInfo {
  machine: Machine
  startedAt: Date
  minutes: number
  trials: number
  load: Spread | undefined
  skipped: string[]
}

/** The results section: machine, then one table per scenario. */
export function renderResults (
  info: RunInfo, scenarios: readonly Scenario[], targets: readonly Target[], measurements: readonly Measurement[]
): string {
  const { machine } = info
  const lines = [
    `Run of ${info.startedAt.toISOString().slice(0, 16).replace('T', ' ')} UTC, commit ${machine.commit}, ${info.trials} trials ` +
      `(targets alternating, order rotated each trial), ${number(info.minutes, 1)} minutes.`,
    '',
    `Machine: ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB, ${machine.os}, Node ${machine.node}; ` +
      Object.entries(machine.versions).map(([name, version]) => `${name} ${version}`).join(', ') + '. ' +
      `Load average (1 min) during the run: ${cell(info.load, 2)}; the machine was shared with other work, so absolute ` +
      'figures are noisy and the ratios (taken trial by trial) are the figures that count.',
    '',
    'Cells: median over the trials, with min–max below. Server CPU is user + system time of the server process(es), ' +
      'from `process.cpuUsage()`, over the measured phase. Latency: from the activity\'s timestamp at publish to the client ' +
      'parsing it. "÷ ws" divides by plain `ws` in the same trial.'
  ]
  for (const skipped of info.skipped) lines.push('', `Skipped: ${skipped}.`)
  for (const scenario of scenarios) {
    const ofScenario = measurements.filter((m) => m.scenario === scenario.id)
    const present = targets.filter((target) => ofScenario.some((m) => m.target === target.id))
    if (present.length === 0) continue
    lines.push('', `### ${scenario.title}`, '', `${scenario.about}.`, '')
    lines.push(...(scenario.kind === 'connections' ? connectionsTable(ofScenario, present) : deliveriesTable(ofScenario, present)))
    const troubled = problems(ofScenario)
    if (troubled.length > 0) lines.push('', 'Runs with problems:', ...troubled)
  }
  return lines.join('\n')
}

/** The Redis broker's deliveries/s as a share of the in-process broker's, per scenario (0.7× where none is named). */
const REDIS_GOALS: Readonly<Record<string, number>> = { 'fan-out': 1.0, topic: 0.8 }

/** The plugin's performance targets (in-process broker) against plain ws and Socket.IO, each with the measured ratio. */
export function renderGoals (measurements: readonly Measurement[]): string {
  const of = (scenario: string) => measurements.filter((m) => m.scenario === scenario)
  const ratio = (scenario: string, target: string, baseline: string, metric: Metric) => ratioOf(of(scenario), target, baseline, metric)
  const verdict = (value: Spread | undefined, ok: (median: number) => boolean) => value ? (ok(value.median) ? 'met' : 'missed') : 'not measured'
  const rows: Array<[string, string, string]> = []
  const fanOuts = ['fan-out', 'fan-out-burst', 'topic']
  for (const scenario of fanOuts) {
    const value = ratio(scenario, 'plugin', 'ws', cpuPerDelivery)
    rows.push([`CPU per delivery ≤ plain ws (${scenario})`, ratioCell(value), verdict(value, (r) => r <= 1)])
  }
  for (const scenario of [...fanOuts, 'selective']) {
    const value = ratio(scenario, 'plugin', 'socket.io', perSecond)
    rows.push([`deliveries/s ≥ 1.5× Socket.IO (${scenario})`, ratioCell(value), verdict(value, (r) => r >= 1.5)])
    const capacity = ratio(scenario, 'socket.io', 'plugin', cpuPerDelivery)
    rows.push([`deliveries per CPU-second ≥ 1.5× Socket.IO (${scenario})`, ratioCell(capacity), verdict(capacity, (r) => r >= 1.5)])
  }
  const growth = (target: string) => {
    const large = spreadOf(of('selective'), target, cpuPerDelivery)
    const small = spreadOf(of('selective-small'), target, cpuPerDelivery)
    return large && small ? { median: large.median / small.median, min: large.min / small.max, max: large.max / small.min } : undefined
  }
  const selective = growth('plugin')
  rows.push(['selective: CPU per delivery with 2,000 clients ÷ with 200 (≈ 1: idle clients cost nothing)',
    `${ratioCell(selective)} (naive @fastify/websocket: ${ratioCell(growth('fastify-naive'))})`, verdict(selective, (r) => r <= 1.25)])
  const memory = ratio('connections', 'plugin', 'ws', heapPerConnection)
  rows.push(['idle authenticated connection ≤ 1.2× plain ws memory (heap + external)', ratioCell(memory), verdict(memory, (r) => r <= 1.2)])
  const latency = ratio('latency', 'plugin', 'ws', p99)
  rows.push(['p99 at the fixed rate ≤ 1.5× plain ws', ratioCell(latency), verdict(latency, (r) => r <= 1.5)])
  for (const scenario of fanOuts) {
    const redis = ratio(scenario, 'plugin-redis', 'plugin', perSecond)
    const goal = REDIS_GOALS[scenario] ?? 0.7
    rows.push([`Redis broker ≥ ${goal.toFixed(1)}× in-process deliveries/s (${scenario})`, ratioCell(redis), verdict(redis, (r) => r >= goal)])
  }
  const redisP99 = spreadOf(of('latency'), 'plugin-redis', p99)
  const localP99 = spreadOf(of('latency'), 'plugin', p99)
  rows.push(['Redis broker: added p99 at the fixed rate', redisP99 && localP99 ? `${number(redisP99.median - localP99.median, 2)} ms` : '–', 'reported'])
  return ['| target | measured (median, min–max) | |', '|---|--:|---|', ...rows.map((row) => `| ${row.join(' | ')} |`)].join('\n')
}

/**
 * One line per profiled target: how much of a unit of work (`unit`: delivery, connection) is the write system call
 * and how much everything else.
 */
export function renderProfileOverview (unit: string, profiles: ReadonlyArray<{ label: string, summary: ProfileSummary }>): string {
  const lines = [
    `| target | busy ns / ${unit} | socket writes (syscall) | GC | everything else (JS, V8, libuv) |`,
    '|---|--:|--:|--:|--:|'
  ]
  for (const { label, summary } of profiles) {
    const of = (name: string) => summary.byComponent.find((c) => c.name === name)?.nsEach ?? 0
    const writes = of('socket writes (native, syscall)')
    const gc = of('GC')
    lines.push(`| ${label} | ${number(summary.busyNsEach, 0)} | ${number(writes, 0)} | ${number(gc, 0)} | ` +
      `${number(summary.busyNsEach - writes - gc, 0)} |`)
  }
  return lines.join('\n')
}

/** One profile summary as Markdown; `units` of work (`unit`: delivery, connection) were profiled. */
export function renderProfile (label: string, unit: string, units: number, summary: ProfileSummary, file: string): string {
  const share = (value: number) => `${number(value * 100, 1)} %`
  const rows = (entries: ProfileSummary['topSelf']) => entries.map((e) => `| \`${e.name}\` | ${number(e.nsEach, 0)} | ${share(e.share)} |`)
  return [
    `## ${label}`,
    '',
    `${number(units, 0)} ${unit === 'delivery' ? 'deliveries' : `${unit}s`} profiled; busy time ${number(summary.busyNsEach, 0)} ns per ${unit}. Profile: \`${file}\`.`,
    '',
    `| component (self time) | ns / ${unit} | share |`, '|---|--:|--:|',
    ...rows(summary.byComponent),
    '',
    `| function (self time) | ns / ${unit} | share |`, '|---|--:|--:|',
    ...rows(summary.topSelf),
    '',
    `| function (inclusive time) | ns / ${unit} | share |`, '|---|--:|--:|',
    ...rows(summary.topInclusive)
  ].join('\n')
}

/** Replaces the generated section `name` of the Markdown file at `path` (appending it if the file lacks it). */
export async function writeSection (path: string, name: string, content: string): Promise<void> {
  const start = `<!-- bench:${name}:start -->`
  const end = `<!-- bench:${name}:end -->`
  let text = ''
  try {
    text = await readFile(path, 'utf8')
  } catch {}
  const block = `${start}\n${content}\n${end}`
  const from = text.indexOf(start)
  const to = text.indexOf(end)
  text = from !== -1 && to > from
    ? text.slice(0, from) + block + text.slice(to + end.length)
    : `${text.trimEnd()}\n\n${block}\n`
  await writeFile(path, text)
}
