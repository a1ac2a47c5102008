/**
 * Keeps `npm run soak` working: a few seconds of it, with heavy churn, must deliver every activity to every client
 * exactly once and in order, and leave the server's counters at 0. It needs `dist/` (which `npm test` builds first).
 * Only counts are asserted, never timings.
 */
import { readFile, rm } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import type { SoakReport } from '../../bench/soak/main.js'
import { distIsBuilt, reportDirectory, runBench } from '../helpers/bench-runs.js'

const DEADLINE_MS = 90_000
const CLIENTS = 20

t.setTimeout(DEADLINE_MS + 30_000)

t.test('a few seconds of soak with churn: every client gets every activity of its PoVs, once, in order', async (t) => {
  t.ok(distIsBuilt(), 'dist/ is built (npm run build)')
  const dir = await reportDirectory('soak-smoke')
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const jsonFile = join(dir, 'soak.json')

  const { code, output } = await runBench(['soak', '--clients', String(CLIENTS), '--minutes', '0.08', '--churn', '0.25', '--sample', '2', '--json', jsonFile], DEADLINE_MS)
  t.equal(code, 0, 'the soak passes', { output })
  const report = JSON.parse(await readFile(jsonFile, 'utf8')) as SoakReport
  t.equal(report.clients.length, CLIENTS)
  t.ok(report.published.total > 0, `${report.published.total} activities published`)
  t.ok(report.resumes >= CLIENTS / 2, `clients left and resumed (${report.resumes} times)`)
  t.same(report.clients.filter((c) => c.delivered !== c.expected || c.lost || c.duplicated || c.outOfOrder), [],
    'every client: delivered = expected, none lost, duplicated or out of order')
  t.equal(report.delivered, report.expected)
  t.ok(report.latency.count > 0 && Number.isFinite(report.latency.p99), 'latency was measured')
  t.ok(report.samples.length >= 2, 'memory was sampled over time')
  t.match(report.statsAfterAllLeft, { connections: 0, subscriptions: 0, povs: 0 }, 'the server is empty after they all left')
  t.equal(report.ok, true)
})
