/**
 * Keeps `npm run bench -- --sharding` working: its smoke size plays the publish-heavy scenario from three instances
 * against one Redis and against a 3-master Redis Cluster (both started by the benchmark, on free ports), and reads
 * each node's counters. Only counts are asserted, never timings: what every client received, and that each master
 * published and wrote out the share of the traffic its PoVs make.
 */
import { existsSync } from 'node:fs'
import { readFile, rm } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import type { RunReport } from '../../bench/main.js'
import { publishHeavyScenario } from '../../bench/scenarios.js'
import { distIsBuilt, reportDirectory, runBench } from '../helpers/bench-runs.js'
import { skipWithoutRedisCluster } from '../helpers/redis-cluster.js'

const DEADLINE_MS = 90_000

t.setTimeout(DEADLINE_MS + 30_000)

t.test('the sharding run measures one Redis and a 3-shard cluster, each master carrying its PoVs\' share', { skip: skipWithoutRedisCluster() }, async (t) => {
  t.ok(distIsBuilt(), 'dist/ is built (npm run build)')
  const dir = await reportDirectory('bench-sharding')
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const jsonFile = join(dir, 'sharding.json')
  const { code, output } = await runBench(['--sharding', '--smoke', '--json', jsonFile], DEADLINE_MS)
  t.equal(code, 0, 'the run exits cleanly', { output })
  const report = existsSync(jsonFile) ? JSON.parse(await readFile(jsonFile, 'utf8')) as RunReport : {} as RunReport
  const scenario = publishHeavyScenario(true)
  const oneRedis = report.sharding?.find((m) => m.deployment === 'one Redis')
  const cluster = report.sharding?.find((m) => m.deployment === 'cluster')
  if (!oneRedis || !cluster) {
    t.fail('both deployments were measured', { output })
    return
  }

  const each = scenario.broadcasts / scenario.povs
  for (const m of [oneRedis, cluster]) {
    const d = m.deliveries
    t.equal(d.received, scenario.broadcasts * (scenario.clients / scenario.povs), `${m.deployment}: every activity was delivered`)
    t.same(d.perClient, { min: each, max: each }, `${m.deployment}: every subscriber received as many activities as its PoV got`)
    t.equal(d.errors + d.failed, 0, `${m.deployment}: no error and no failed publication`)
  }

  t.equal(oneRedis.nodes.length, 1, 'one Redis is one node')
  const single = oneRedis.nodes[0]!
  t.equal(single.publishes, scenario.broadcasts, 'the one Redis published every broadcast')
  t.ok(single.outputBytes > 0 && single.cpuSeconds >= 0, 'its bytes and CPU were read')

  const masters = cluster.nodes.filter((node) => node.role === 'master')
  t.equal(masters.length, 3, 'the cluster has three masters')
  t.equal(cluster.nodes.length - masters.length, 3, 'and three replicas')
  t.equal(masters.reduce((sum, node) => sum + node.povs, 0), scenario.povs, 'every PoV is owned by one master')
  for (const node of masters) {
    const share = node.povs / scenario.povs
    t.equal(node.publishes, node.povs * each, `master ${node.port}: published the broadcasts of its ${node.povs} PoVs only`)
    // Pub/sub messages are most of a node's output; INFO and the scripts' replies are the rest.
    t.ok(Math.abs(node.outputBytes / single.outputBytes - share) < 0.15,
      `master ${node.port}: wrote ${(node.outputBytes / single.outputBytes).toFixed(2)} of the one Redis's bytes for ${share.toFixed(2)} of the PoVs`)
  }
})
