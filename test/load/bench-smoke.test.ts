/**
 * Keeps `npm run bench` working: its smoke mode plays every scenario against every target with tiny numbers, and
 * each feature scenario against the plugin with the feature off and on (it needs `dist/`, which `npm test` builds
 * first). Only counts are asserted, never timings: CI machines are noisy.
 */
import { existsSync } from 'node:fs'
import { readFile, rm } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import type { RunReport } from '../../bench/main.js'
import { DENSITY, DENSITY_SMOKE, densityRefusal } from '../../bench/density.js'
import { scenarios } from '../../bench/scenarios.js'
import { redisBrokerMissing } from '../../bench/servers/plugin.js'
import { distIsBuilt, packageRoot, reportDirectory, runBench } from '../helpers/bench-runs.js'

const SMOKE_DEADLINE_MS = 210_000

t.setTimeout(SMOKE_DEADLINE_MS + 30_000)

/** The one smoke run both tests read (it plays the main and the feature scenarios). */
let smokeRun: Promise<{ code: number | null, output: string, report: RunReport }> | undefined
function smoke (): Promise<{ code: number | null, output: string, report: RunReport }> {
  smokeRun ??= (async () => {
    const dir = await reportDirectory('bench-smoke')
    try {
      const jsonFile = join(dir, 'smoke.json')
      const { code, output } = await runBench(['--smoke', '--json', jsonFile], SMOKE_DEADLINE_MS)
      const report = existsSync(jsonFile) ? JSON.parse(await readFile(jsonFile, 'utf8')) as RunReport : { measurements: [], skipped: [], expected: {} }
      return { code, output, report }
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })()
  return smokeRun
}

t.test('the benchmark smoke run measures every target, and each delivers every activity to its subscribers', async (t) => {
  t.ok(distIsBuilt(), 'dist/ is built (npm run build)')
  const { code, output, report } = await smoke()
  t.equal(code, 0, 'the smoke run exits cleanly', { output })

  const targets = ['plugin', 'ws', 'fastify-naive', 'socket.io']
  // The Redis target may only be missing because the Redis broker is not built yet; Redis itself must answer.
  const redisSkip = report.skipped.find((skip) => skip.target === 'plugin-redis')
  if (redisSkip) t.equal(redisSkip.reason, redisBrokerMissing(packageRoot), 'the Redis target is skipped only while its broker is not built')
  else targets.push('plugin-redis')
  t.same(report.skipped.filter((skip) => skip.target !== 'plugin-redis'), [], 'no other target is skipped')

  for (const target of targets) {
    for (const scenario of scenarios(true)) {
      const measurement = report.measurements.find((m) => m.target === target && m.scenario === scenario.id)
      if (!measurement) {
        t.fail(`${target} produced no result for ${scenario.id}`, { output })
        continue
      }
      if (scenario.kind === 'connections') {
        t.equal(measurement.connections?.count, scenario.clients, `${target}, ${scenario.id}: every client connected and was measured`)
        continue
      }
      const deliveries = measurement.deliveries!
      t.equal(deliveries.expected, report.expected[scenario.id], `${target}, ${scenario.id}: expected the scenario's deliveries`)
      t.equal(deliveries.received, deliveries.expected, `${target}, ${scenario.id}: every activity was delivered`)
      const each = scenario.broadcasts / scenario.povs
      t.same(deliveries.perClient, { min: each, max: each }, `${target}, ${scenario.id}: every subscriber received as many activities as its PoV got`)
      t.equal(deliveries.errors, 0, `${target}, ${scenario.id}: no error message reached a client`)
      t.equal(deliveries.failed, 0, `${target}, ${scenario.id}: every publication succeeded`)
    }
  }
})

t.test('the smoke run measures what presence and read receipts cost, each against the plugin with the feature off', async (t) => {
  t.ok(distIsBuilt(), 'dist/ is built (npm run build)')
  const { code, output, report } = await smoke()
  t.equal(code, 0, 'the smoke run exits cleanly', { output })
  t.same(report.skipped.filter((skip) => skip.target.startsWith('plugin-') && skip.target !== 'plugin-redis'), [], 'no feature target is skipped')

  const featureScenarios = scenarios(true, true)
  t.ok(featureScenarios.some((s) => s.kind === 'storm' && !s.reconnect) && featureScenarios.some((s) => s.reconnect) &&
    featureScenarios.some((s) => s.chatter) && featureScenarios.some((s) => s.readEach), 'storms, presence chatter and read receipts are all played')
  for (const scenario of featureScenarios) {
    for (const target of scenario.targets!) {
      const m = report.measurements.find((m) => m.target === target && m.scenario === scenario.id)
      if (!m) {
        t.fail(`${target} produced no result for ${scenario.id}`, { output })
        continue
      }
      const on = target !== 'plugin'
      const name = `${target}, ${scenario.id}`
      if (scenario.kind === 'storm') {
        const storm = m.storm!
        t.equal(storm.subscribed, scenario.clients, `${name}: every client got subscribed`)
        t.equal(storm.settled, scenario.clients, `${name}: every client is done`)
        if (on) {
          t.same(storm.members, { min: scenario.clients, max: scenario.clients }, `${name}: every member list holds every client`)
          t.ok(storm.messagesPerClient >= 2, `${name}: a presence snapshot follows each subscribed`)
        } else {
          t.same(storm.members, { min: 0, max: 0 }, `${name}: no presence without the option`)
          t.equal(storm.messagesPerClient, 1, `${name}: each client got its subscribed and nothing else`)
        }
        continue
      }
      const deliveries = m.deliveries!
      t.equal(deliveries.received, report.expected[scenario.id], `${name}: every activity was delivered`)
      const each = scenario.broadcasts / scenario.povs
      t.same(deliveries.perClient, { min: each, max: each }, `${name}: every subscriber received as many activities as its PoV got`)
      t.equal(deliveries.errors, 0, `${name}: no error message reached a client`)
      t.equal(deliveries.failed, 0, `${name}: every publication succeeded`)
      t.equal(deliveries.loadGenerators, scenario.loadGenerators ?? 1, `${name}: the clients were spread over the scenario's load generators`)
      t.ok(deliveries.serverCores > 0 && deliveries.loadGeneratorCores > 0, `${name}: the cores each side kept busy are measured`)
      if (!on) t.equal(deliveries.othersPerClient, 0, `${name}: nothing but activities with the feature off`)
      else t.ok(deliveries.othersPerClient! > 0, `${name}: presence, typing or read events reached the clients`)
      if (scenario.readEach) {
        if (on) t.ok(deliveries.readEventsPerClient! > 0, `${name}: read events reached the clients`)
        else t.equal(deliveries.readEventsPerClient, 0, `${name}: no read events with read receipts off`)
      }
    }
  }
})

t.test('the smoke run plays the connection-density scenario against the plugin, plain ws and Socket.IO', async (t) => {
  t.ok(distIsBuilt(), 'dist/ is built (npm run build)')
  const { code, output, report } = await smoke()
  t.equal(code, 0, 'the smoke run exits cleanly', { output })
  for (const target of ['plugin', 'ws', 'socket.io']) {
    const m = report.density?.find((d) => d.target === target)
    if (!m) {
      t.fail(`${target} produced no density result`, { output })
      continue
    }
    t.equal(m.clients, DENSITY_SMOKE.clients, `${target}: every socket connected`)
    t.equal(m.loadGenerators, DENSITY_SMOKE.clients / DENSITY_SMOKE.perProcess, `${target}: spread over the load generators`)
    t.equal(m.large.received, m.large.expected, `${target}: every broadcast to the large PoV was delivered`)
    t.equal(m.large.expected, DENSITY_SMOKE.largeBroadcasts * DENSITY_SMOKE.largePov)
    t.equal(m.steady.received, m.steady.expected, `${target}: every broadcast at the steady rate was delivered`)
    t.ok(m.heapBytes > 0 && m.rssBytes !== 0 && m.perSecond > 0 && m.lag.max >= 0, `${target}: memory, rate and event-loop delay measured`)
  }
})

t.test('the density scenario refuses a count the file limit cannot hold, before starting anything', async (t) => {
  const refusal = densityRefusal(DENSITY, 10_000)
  t.match(refusal, /file limit \(ulimit -n\) is 10000: 18,000 sockets need about 18,100 descriptors in the server process; ask for at most 9900/)
  t.equal(densityRefusal(DENSITY, 20_000), undefined, '18,000 fit under 20,000')
})
