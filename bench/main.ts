/**
 * `npm run bench`: plays every scenario against every target, trials alternating between targets, prints each
 * measurement, and writes the summary into docs/benchmarks.md.
 *
 *   --smoke              seconds: tiny numbers, one trial, every target, the feature scenarios too; leaves
 *                        docs/benchmarks.md alone
 *   --trials <n>         trials per scenario and target (default 3)
 *   --scenarios <a,b>    only these scenarios (fan-out, topic, selective, selective-small, latency, connections, or
 *                        a feature scenario)
 *   --features           instead: what the optional features cost, each scenario against the plugin with the feature
 *                        off and on (presence-storm, presence-reconnect-storm, presence-fan-out, presence-topic,
 *                        read-receipts, read-receipts-steady); rewrites the "features" section of docs/benchmarks.md
 *   --targets <a,b>      only these targets (plugin, plugin-redis, plugin-redis-cluster, ws, fastify-naive, socket.io,
 *                        ws-buffer, …); plugin-redis-cluster (not in the default set) starts a Redis Cluster of its own
 *   --experiments        add the plain-ws technique variants (shared Buffer, frame built once, corked) to the
 *                        fan-out scenarios
 *   --profile            instead: profile one scenario's measured phase (fan-out, or the first of --scenarios) on
 *                        the plugin, plain ws and its variants, and Socket.IO; writes bench/results/profile-<scenario>.md
 *   --density            instead: the connection-density scenario (18,000 authenticated sockets over 1,800 PoVs, spread
 *                        over load-generator processes) against the plugin, plain ws and Socket.IO, one trial each;
 *                        rewrites the "density" section of docs/benchmarks.md
 *   --density-clients <n>  the density scenario at another size (refused, before anything starts, when the file
 *                        limit is too low for it)
 *   --sharding           instead: the publish-heavy scenario from 3 plugin instances against one stand-alone Redis
 *                        and a 3-master Redis Cluster (both started here, stopped by pid), reading each node's Redis
 *                        CPU and bytes; rewrites the "sharding" section of docs/benchmarks.md (needs redis-server
 *                        and redis-cli)
 *   --load-generators <n>  spread each throughput or latency scenario's clients over n load-generator processes
 *                        instead of the scenario's own number (printed, not written to docs/benchmarks.md)
 *   --json <file>        also write every measurement as JSON
 *   --no-write           do not touch docs/benchmarks.md (nor, with --profile, bench/results/)
 *   --redis <url>        Redis for the Redis-broker target (default redis://127.0.0.1:6379)
 */
import { randomBytes } from 'node:crypto'
import { mkdir, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { parseArgs } from 'node:util'
import { DENSITY, DENSITY_SMOKE, densityOfSize, measureDensity, type DensityMeasurement, type DensityScenario } from './density.js'
import { measure, type Measurement } from './measure.js'
import { renderDensity } from './report-density.js'
import { summarizeProfile } from './profile-summary.js'
import { renderFeatures } from './report-features.js'
import { describeMachine, loadNow, renderGoals, renderProfile, renderProfileOverview, renderResults, writeSection } from './report.js'
import { expectedDeliveries, scenarios as allScenarios, type Scenario } from './scenarios.js'
import { redisServerVersion, startRedisClusterNodes } from './redis-servers.js'
import { measureSharding, renderSharding, shardingRefusal, type ShardingMeasurement } from './sharding.js'
import { spread } from './statistics.js'
import { TARGETS, targetById, type RunContext, type Target } from './targets.js'

/** Signs the benchmark's access cookies and tokens; only ever used on loopback. */
const SECRET = 'benchmark-secret-benchmark-secret-32+'
const MAIN_TARGETS = ['plugin', 'plugin-redis', 'ws', 'fastify-naive', 'socket.io']
const PROFILED_TARGETS = ['plugin', 'ws', 'ws-buffer', 'ws-preframed', 'socket.io']
const DENSITY_TARGETS = ['plugin', 'ws', 'socket.io']

/** What `--json <file>` writes (and `test/load/bench-smoke.test.ts` reads). */
export interface RunReport {
  measurements: Measurement[]
  /** Targets that could not run, with the reason. */
  skipped: Array<{ target: string, reason: string }>
  /** Deliveries each throughput/latency run had to produce. */
  expected: Record<string, number>
  /** The density scenario's runs (`--density`, and the smoke run at its smoke size). */
  density?: DensityMeasurement[]
  /** The sharding comparison's runs (`--sharding`). */
  sharding?: ShardingMeasurement[]
}

/**
 * Runs `play` with a Redis Cluster of the run's own (3 masters, 3 replicas, on free ports) when one of `targets` needs
 * it, and stops its nodes by pid afterwards, whatever happens.
 */
async function withRedisCluster<T> (targets: readonly Target[], context: RunContext, play: (context: RunContext) => Promise<T>): Promise<T> {
  if (!targets.some((target) => target.needsRedisCluster)) return await play(context)
  console.log('starting a Redis Cluster (3 masters, 3 replicas) on free ports for the cluster target')
  const cluster = await startRedisClusterNodes()
  try {
    return await play({ ...context, redisCluster: cluster.startupNodes })
  } finally {
    await cluster.stop()
  }
}

function describeDensity (m: DensityMeasurement): string {
  return `${m.clients} sockets, ${Math.round(m.perSecond)} connections/s, ${Math.round(m.cpuMicros)} µs CPU/connection, ` +
    `${(m.rssBytes / 1024).toFixed(1)} KiB RSS and ${(m.heapBytes / 1024).toFixed(1)} KiB heap+external/connection, ` +
    `large PoV ${m.large.received}/${m.large.expected} p99 ${m.large.p99.toFixed(1)} ms, ` +
    `steady ${m.steady.received}/${m.steady.expected} p99 ${m.steady.p99.toFixed(1)} ms, event-loop delay max ${m.lag.max.toFixed(1)} ms`
}

/** Plays the density scenario once per target; a failure (a file limit too low included) is reported, not thrown. */
async function runDensity (scenario: DensityScenario, targets: readonly Target[], context: RunContext): Promise<DensityMeasurement[]> {
  console.log(`\nConnection density: ${scenario.clients} sockets over ${scenario.povs} PoVs`)
  const measurements: DensityMeasurement[] = []
  for (const target of targets) {
    try {
      const measurement = await measureDensity(target, scenario, context)
      measurements.push(measurement)
      console.log(`  ${target.label}: ${describeDensity(measurement)}`)
    } catch (err) {
      console.error(`  ${target.label}: FAILED: ${err instanceof Error ? err.message : String(err)}`)
    }
  }
  return measurements
}

function describe (measurement: Measurement): string {
  const { deliveries: d, connections: c, storm: s } = measurement
  if (d) {
    const rejected = d.failed ? `, ${d.failed} publications rejected (${d.firstError})` : ''
    const others = d.othersPerClient === undefined ? '' : `, ${d.othersPerClient.toFixed(1)} other messages/client`
    const reads = d.readEventsPerClientPerSecond === undefined
      ? ''
      : `, ${Math.round(d.readEventsPerClient!)} read/reads frames/client carrying ${Math.round(d.readMarksPerClient!)} marks, ` +
        `${Math.round(d.readEventsPerClientPerSecond)} frames/client/s`
    const cores = `cores busy: server ${d.serverCores.toFixed(2)}, ${d.loadGenerators} load generator${d.loadGenerators > 1 ? 's' : ''} ` +
      `${d.loadGeneratorCores.toFixed(2)}`
    return `${d.received}/${d.expected} delivered${rejected}, ${Math.round(d.perSecond).toLocaleString('en-US')}/s, ` +
      `${d.cpuMicros.toFixed(2)} µs CPU/delivery, p50 ${d.p50.toFixed(2)} ms, p99 ${d.p99.toFixed(2)} ms${others}${reads}; ${cores}`
  }
  if (s) {
    return `${s.subscribed}/${s.clients} subscribed, ${s.settled} settled in ${Math.round(s.ms)} ms, ${s.cpuMs.toFixed(0)} ms server CPU, ` +
      `${s.messagesPerClient.toFixed(1)} messages and ${(s.bytesPerClient / 1024).toFixed(1)} KiB per client, ` +
      `members ${s.members.min}–${s.members.max}`
  }
  if (c) {
    return `${Math.round(c.perSecond)} connections/s, ${Math.round(c.cpuMicros)} µs CPU/connection, ` +
      `${(c.heapBytes / 1024).toFixed(1)} KiB heap/connection, ${(c.rssBytes / 1024).toFixed(1)} KiB RSS/connection, ` +
      `${Math.round(c.subscriptionHeapBytes)} B/subscription`
  }
  return 'no result'
}

async function availableTargets (ids: string[], context: RunContext): Promise<{ targets: Target[], skipped: RunReport['skipped'] }> {
  const targets: Target[] = []
  const skipped: RunReport['skipped'] = []
  for (const id of ids) {
    const target = targetById(id)
    const reason = await target.unavailable?.(context)
    if (reason) {
      skipped.push({ target: id, reason })
      console.log(`skipping ${target.label}: ${reason}`)
    } else {
      targets.push(target)
    }
  }
  return { targets, skipped }
}

/**
 * Profiles the measured phase of `scenario` on each target and summarizes where the time went, into
 * `bench/results/profile-<scenario>.md`: long tables that docs/benchmarks.md links to rather than holds.
 */
async function profile (root: string, context: RunContext, scenario: Scenario, ids: string[], write: boolean): Promise<void> {
  const dir = join(tmpdir(), 'pov-bench-profiles')
  await mkdir(dir, { recursive: true })
  const { targets } = await availableTargets(ids, context)
  const unit = scenario.kind === 'connections' ? 'connection' : 'delivery'
  const sections = [
    `${scenario.title} (${scenario.about}), measured phase only, sampled every 100 µs by the V8 profiler in the server ` +
      'process (the profile `node --cpu-prof` writes, started and stopped around the measured phase). The profiler ' +
      'itself slows the process, and one profile is one run on a shared machine: read the shares and the order of ' +
      'magnitude here, and take the ratios from the results tables of docs/benchmarks.md.'
  ]
  const profiles = []
  for (const target of targets) {
    const file = join(dir, `${target.id}-${scenario.id}`)
    const measurement = await withRedisCluster([target], context, (context) => measure(target, scenario, 1, context, { profileFile: file }))
    console.log(`profiled ${target.label}: ${describe(measurement)}`)
    const units = measurement.deliveries?.received ?? measurement.connections!.count
    // The first instance stands for a deployment of several (the Redis target): they do the same work.
    const summary = await summarizeProfile(`${file}.0.cpuprofile`, units, 12)
    profiles.push({ label: target.label, summary })
    sections.push(renderProfile(target.label, unit, units, summary, `${file}.0.cpuprofile`))
  }
  sections.splice(1, 0, renderProfileOverview(unit, profiles))
  const markdown = sections.join('\n\n')
  console.log(`\n${markdown}`)
  if (!write) return
  const file = join(root, 'bench', 'results', `profile-${scenario.id}.md`)
  await mkdir(dirname(file), { recursive: true })
  const machine = describeMachine(root)
  const command = `npm run bench -- --profile${scenario.id === 'fan-out' ? '' : ` --scenarios ${scenario.id}`}`
  const run = `Profiled ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC, commit ${machine.commit}, ` +
    `${machine.cpu}, ${machine.cores} cores, Node ${machine.node}; written by \`${command}\`.`
  await writeFile(file, `# Where the time goes: ${scenario.title}\n\n${run}\n\n${markdown}\n`)
  console.log(`\n${file} written`)
}

export async function main (root: string, argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      smoke: { type: 'boolean', default: false },
      trials: { type: 'string' },
      scenarios: { type: 'string' },
      targets: { type: 'string' },
      experiments: { type: 'boolean', default: false },
      features: { type: 'boolean', default: false },
      profile: { type: 'boolean', default: false },
      sharding: { type: 'boolean', default: false },
      density: { type: 'boolean', default: false },
      'density-clients': { type: 'string' },
      'load-generators': { type: 'string' },
      json: { type: 'string' },
      'no-write': { type: 'boolean', default: false },
      redis: { type: 'string', default: 'redis://127.0.0.1:6379' }
    }
  })
  const smoke = values.smoke
  const write = !smoke && !values['no-write'] && !values.targets && !values.scenarios && !values['load-generators']
  const context: RunContext = { root, secret: SECRET, redisUrl: values.redis, runId: randomBytes(4).toString('hex') }
  if (values.profile) {
    const id = values.scenarios?.split(',')[0] ?? 'fan-out'
    const scenario = [...allScenarios(false), ...allScenarios(false, true)].find((s) => s.id === id)
    if (!scenario) throw new Error(`unknown scenario '${id}'`)
    return profile(root, context, scenario, values.targets?.split(',') ?? PROFILED_TARGETS, !values['no-write'])
  }

  if (values.sharding) {
    const trials = smoke ? 1 : Number(values.trials ?? 3)
    if (!Number.isSafeInteger(trials) || trials < 1) throw new Error('--trials must be a positive integer')
    const refusal = shardingRefusal(root)
    if (refusal) {
      console.error(`\n*** --sharding cannot run: ${refusal} ***\n`)
      process.exitCode = 1
      return
    }
    const startedAt = new Date()
    const loads = [loadNow()]
    const { scenario, measurements } = await measureSharding(context, smoke, trials)
    loads.push(loadNow())
    const machine = describeMachine(root)
    const load = spread(loads)!
    const header = `Run of ${startedAt.toISOString().slice(0, 16).replace('T', ' ')} UTC, commit ${machine.commit}, ${trials} ` +
      `trial${trials > 1 ? 's' : ''} per deployment (alternating), ${((Date.now() - startedAt.getTime()) / 60_000).toFixed(1)} minutes; ` +
      `${machine.cpu}, ${machine.cores} cores, Node ${machine.node}, redis-server ${redisServerVersion()}, every process (the 3 instances, ` +
      `the load generator, the Redis nodes) on this one machine. Load average (1 min): ${load.min.toFixed(2)}–${load.max.toFixed(2)}; ` +
      'the machine was shared with other work, so absolute figures are noisy.'
    const markdown = renderSharding({ header, scenario }, measurements)
    console.log(`\n${markdown}`)
    if (values.json) await writeFile(values.json, JSON.stringify({ measurements: [], skipped: [], expected: {}, sharding: measurements } satisfies RunReport, null, 2))
    if (!smoke && !values['no-write'] && measurements.length === 2 * trials) {
      await writeSection(join(root, 'docs', 'benchmarks.md'), 'sharding', markdown)
      console.log('\ndocs/benchmarks.md updated (sharding)')
    }
    return
  }

  if (values.density) {
    const clients = values['density-clients'] === undefined ? undefined : Number(values['density-clients'])
    if (clients !== undefined && (!Number.isSafeInteger(clients) || clients < 10)) throw new Error('--density-clients must be an integer of at least 10')
    const base = smoke ? DENSITY_SMOKE : DENSITY
    const scenario = clients === undefined ? base : densityOfSize(base, clients)
    const { targets } = await availableTargets(values.targets?.split(',') ?? DENSITY_TARGETS, context)
    const startedAt = new Date()
    const density = await withRedisCluster(targets, context, (context) => runDensity(scenario, targets, context))
    const markdown = renderDensity({ machine: describeMachine(root), startedAt, minutes: (Date.now() - startedAt.getTime()) / 60_000, load: loadNow(), scenario }, targets, density)
    console.log(`\n${markdown}`)
    if (values.json) await writeFile(values.json, JSON.stringify({ measurements: [], skipped: [], expected: {}, density } satisfies RunReport, null, 2))
    if (!smoke && !values['no-write'] && !values.targets && clients === undefined) {
      await writeSection(join(root, 'docs', 'benchmarks.md'), 'density', markdown)
      console.log('\ndocs/benchmarks.md updated (density)')
    }
    return
  }

  const trials = smoke ? 1 : Number(values.trials ?? 3)
  if (!Number.isSafeInteger(trials) || trials < 1) throw new Error('--trials must be a positive integer')
  const wanted = values.scenarios?.split(',')
  const loadGenerators = values['load-generators'] === undefined ? undefined : Number(values['load-generators'])
  if (loadGenerators !== undefined && (!Number.isSafeInteger(loadGenerators) || loadGenerators < 1)) throw new Error('--load-generators must be a positive integer')
  // Storms and the connections scenario keep their one load generator.
  const spreadOver = (list: readonly Scenario[]) => loadGenerators === undefined
    ? list
    : list.map((s) => s.kind === 'throughput' || s.kind === 'latency' ? { ...s, loadGenerators } : s)
  const mainScenarios = spreadOver(allScenarios(smoke))
  const featureScenarios = spreadOver(allScenarios(smoke, true))
  // Named scenarios of either group; else the feature scenarios (--features), both groups (--smoke) or the main ones.
  const scenarios = wanted
    ? [...mainScenarios, ...featureScenarios].filter((s) => wanted.includes(s.id))
    : values.features ? featureScenarios : smoke ? [...mainScenarios, ...featureScenarios] : mainScenarios
  const targetIds = values.targets?.split(',') ?? [...new Set([
    ...(scenarios.some((s) => !s.targets) ? MAIN_TARGETS : []),
    ...(values.experiments ? TARGETS.filter((t) => t.experiment).map((t) => t.id) : []),
    ...scenarios.flatMap((s) => s.targets ?? [])
  ])]
  const { targets, skipped } = await availableTargets(targetIds, context)

  const machine = describeMachine(root)
  const startedAt = new Date()
  const loads = [loadNow()]
  const measurements: Measurement[] = []
  const expected: Record<string, number> = {}
  await withRedisCluster(targets, context, async (context) => {
    for (const scenario of scenarios) {
      console.log(`\n${scenario.title}: ${smoke ? `smoke size, ${scenario.clients} clients, ${scenario.broadcasts} broadcasts` : scenario.about}`)
      if (scenario.kind === 'throughput' || scenario.kind === 'latency') expected[scenario.id] = expectedDeliveries(scenario, scenario.broadcasts)
      // A feature scenario plays against its own targets; the main ones against every target but the feature ones.
      const playing = targets.filter((t) => scenario.targets ? scenario.targets.includes(t.id) : !t.features || values.targets)
      for (let trial = 1; trial <= trials; trial++) {
        // Rotating the order each trial spreads the effect of whatever else the machine is doing over every target.
        const order = playing.map((_, i) => playing[(i + trial - 1) % playing.length]!)
        for (const target of order) {
          if (target.experiment && !scenario.experiments && !values.targets) continue
          const measurement = await measureOrReport(target, scenario, trial, context)
          loads.push(loadNow())
          if (!measurement) continue
          measurements.push(measurement)
          console.log(`  trial ${trial} ${target.label}: ${describe(measurement)}`)
        }
      }
    }
  })
  // The smoke run plays the density scenario too, at its smoke size, against the targets it compares.
  const density = smoke && !wanted ? await runDensity(DENSITY_SMOKE, targets.filter((t) => DENSITY_TARGETS.includes(t.id)), context) : undefined
  const minutes = (Date.now() - startedAt.getTime()) / 60_000

  if (values.json) await writeFile(values.json, JSON.stringify({ measurements, skipped, expected, density } satisfies RunReport, null, 2))
  if (smoke) return
  const info = { machine, startedAt, minutes, trials, load: spread(loads), skipped: skipped.map((s) => `${s.target} (${s.reason})`) }
  const featuresRun = scenarios.filter((s) => s.targets)
  if (featuresRun.length > 0) {
    const features = renderFeatures(info, featuresRun, targets, measurements)
    console.log(`\n${features}`)
    // The section is rewritten only by a run of every feature scenario against the targets they name.
    if (!values['no-write'] && !values.targets && !values['load-generators'] && featureScenarios.every((s) => featuresRun.includes(s))) {
      await writeSection(join(root, 'docs', 'benchmarks.md'), 'features', features)
      console.log('\ndocs/benchmarks.md updated (features)')
    }
  }
  if (featuresRun.length === scenarios.length) return
  const results = renderResults(info, scenarios.filter((s) => !s.targets), targets, measurements)
  const goals = renderGoals(measurements)
  console.log(`\n${results}\n\n${goals}`)
  if (write) {
    await writeSection(join(root, 'docs', 'benchmarks.md'), 'results', results)
    await writeSection(join(root, 'docs', 'benchmarks.md'), 'goals', goals)
    console.log('\ndocs/benchmarks.md updated')
  }
}

/** One measurement; a failure is reported and the run goes on with the next one. */
async function measureOrReport (target: Target, scenario: Scenario, trial: number, context: RunContext): Promise<Measurement | undefined> {
  try {
    return await measure(target, scenario, trial, context)
  } catch (err) {
    console.error(`  trial ${trial} ${target.label}: FAILED: ${err instanceof Error ? err.message : String(err)}`)
    return undefined
  }
}
