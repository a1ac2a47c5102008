/**
 * The "features" section of docs/benchmarks.md: what presence and read receipts cost, each scenario's feature target
 * against the plugin with the feature off (`plugin`), ratios taken trial by trial.
 */
import type { Measurement } from './measure.js'
import { cell, number, ratioCell, type RunInfo } from './report.js'
import type { Scenario } from './scenarios.js'
import { ratioOf, spreadOf, type Metric } from './statistics.js'
import type { Target } from './targets.js'

/** The target every feature target is divided by: the plugin with its defaults (presence and read receipts off). */
const OFF = 'plugin'

const stormMs: Metric = (m) => m.storm?.ms
const stormCpuMs: Metric = (m) => m.storm?.cpuMs
const stormCpuPerClient: Metric = (m) => m.storm?.cpuMicrosPerClient
const stormMessages: Metric = (m) => m.storm?.messagesPerClient
const stormBytes: Metric = (m) => m.storm?.bytesPerClient
const perSecond: Metric = (m) => m.deliveries?.perSecond
const cpuPerDelivery: Metric = (m) => m.deliveries?.cpuMicros
const p99: Metric = (m) => m.deliveries?.p99
const others: Metric = (m) => m.deliveries?.othersPerClient
const cpuPerMessage: Metric = (m) => m.deliveries?.cpuMicrosPerMessage
const readsSent: Metric = (m) => m.deliveries?.readsSentPerClient
const readEvents: Metric = (m) => m.deliveries?.readEventsPerClient
const readMarks: Metric = (m) => m.deliveries?.readMarksPerClient
const readEventsPerSecond: Metric = (m) => m.deliveries?.readEventsPerClientPerSecond

interface Column {
  title: string
  metric: Metric
  digits: number
  /** Also give this metric ÷ the feature-off target's. */
  ratio?: string
}

const STORM: Column[] = [
  { title: 'ms until every client is done', metric: stormMs, digits: 0, ratio: 'time ÷ off' },
  { title: 'server CPU ms', metric: stormCpuMs, digits: 0, ratio: 'CPU ÷ off' },
  { title: 'server CPU µs / client', metric: stormCpuPerClient, digits: 0 },
  { title: 'messages / client', metric: stormMessages, digits: 1, ratio: 'messages ÷ off' },
  { title: 'bytes received / client', metric: stormBytes, digits: 0, ratio: 'bytes ÷ off' }
]

const PRESENCE_BROADCAST: Column[] = [
  { title: 'deliveries/s', metric: perSecond, digits: 0, ratio: 'deliveries/s ÷ off' },
  { title: 'server CPU µs / delivery', metric: cpuPerDelivery, digits: 2, ratio: 'CPU / delivery ÷ off' },
  { title: 'p99 ms', metric: p99, digits: 2 },
  { title: 'presence and typing messages / client', metric: others, digits: 1 },
  { title: 'server CPU µs / message (activities + presence and typing)', metric: cpuPerMessage, digits: 2, ratio: 'CPU / message ÷ off' }
]

const READS: Column[] = [
  { title: 'deliveries/s', metric: perSecond, digits: 0, ratio: 'deliveries/s ÷ off' },
  { title: 'server CPU µs / delivery', metric: cpuPerDelivery, digits: 2, ratio: 'CPU / delivery ÷ off' },
  { title: 'p99 ms', metric: p99, digits: 2 },
  { title: '`read` sent / client', metric: readsSent, digits: 0 },
  { title: '`read` / `reads` frames / client', metric: readEvents, digits: 0 },
  { title: 'marks told / client', metric: readMarks, digits: 0 },
  { title: 'frames / client / s', metric: readEventsPerSecond, digits: 0 },
  { title: 'server CPU µs / message (activities + `read` / `reads` frames)', metric: cpuPerMessage, digits: 2, ratio: 'CPU / message ÷ off' }
]

function table (columns: readonly Column[], measurements: readonly Measurement[], targets: readonly Target[]): string[] {
  const ratios = columns.filter((column) => column.ratio)
  const lines = [
    `| target | ${columns.map((c) => c.title).join(' | ')} | ${ratios.map((c) => c.ratio).join(' | ')} |`,
    `|---|${columns.map(() => '--:|').join('')}${ratios.map(() => '--:|').join('')}`
  ]
  for (const target of targets) {
    const values = columns.map((c) => cell(spreadOf(measurements, target.id, c.metric), c.digits))
    const divided = ratios.map((c) => target.id === OFF ? '1' : ratioCell(ratioOf(measurements, target.id, OFF, c.metric)))
    lines.push(`| ${target.label} | ${values.join(' | ')} | ${divided.join(' | ')} |`)
  }
  return lines
}

/** Runs that lost or refused something, or whose clients did not all settle: each is listed under its table. */
function problems (scenario: Scenario, measurements: readonly Measurement[]): string[] {
  const lines: string[] = []
  for (const m of measurements) {
    const { deliveries: d, storm: s } = m
    if (d && (d.received !== d.expected || d.errors || d.failed)) {
      lines.push(`- ${m.target}, trial ${m.trial}: ${d.received} of ${d.expected} deliveries, ${d.errors} error messages, ${d.failed} publications rejected`)
    }
    if (s && (s.subscribed !== s.clients || s.settled !== s.clients)) {
      lines.push(`- ${m.target}, trial ${m.trial}: ${s.subscribed} of ${s.clients} subscribed, ${s.settled} with a complete member list`)
    }
  }
  return lines.length > 0 ? ['', `Runs with problems (${scenario.title}):`, ...lines] : []
}

/** The features section: how it was run, then one table per feature scenario. */
export function renderFeatures (
  info: RunInfo, scenarios: readonly Scenario[], targets: readonly Target[], measurements: readonly Measurement[]
): string {
  const { machine } = info
  const lines = [
    `Run of ${info.startedAt.toISOString().slice(0, 16).replace('T', ' ')} UTC, commit ${machine.commit}, ${info.trials} trials ` +
      `(targets alternating, order rotated each trial), ${number(info.minutes, 1)} minutes, ${machine.cpu}, ${machine.cores} cores, ` +
      `Node ${machine.node}; load average (1 min) during the run: ${cell(info.load, 2)}.`,
    '',
    'Cells: median over the trials, with min–max below; "÷ off" divides by the plugin with the feature off in the same ' +
      'trial. Server CPU is user + system time of the server process over the measured phase. A storm client is done ' +
      'when it has its `subscribed` and, with presence on, a member list (its `presence` snapshot updated by each ' +
      '`presence_diff`) that holds all the clients; messages and bytes (payload) count everything the clients received ' +
      'from the start of the storm until 300 ms after the last one was done.'
  ]
  for (const scenario of scenarios) {
    const ofScenario = measurements.filter((m) => m.scenario === scenario.id)
    const present = targets.filter((target) => ofScenario.some((m) => m.target === target.id))
    if (present.length === 0) continue
    const columns = scenario.kind === 'storm' ? STORM : scenario.readEach ? READS : PRESENCE_BROADCAST
    lines.push('', `### ${scenario.title}`, '', `${scenario.about}.`, '', ...table(columns, ofScenario, present), ...problems(scenario, ofScenario))
  }
  return lines.join('\n')
}
