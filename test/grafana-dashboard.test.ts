/**
 * docs/grafana/fastify-pov-realtime.json, the Grafana dashboard for `fastify-pov-realtime/metrics`, queries only
 * metrics the collector exports, and every one of them: the names are read from a real app's /metrics endpoint
 * (the plugin, `povRealtimeCollector` and a prom-client registry), not from a list kept here.
 */
import { readFile } from 'node:fs/promises'
import Fastify from 'fastify'
import { Registry } from 'prom-client'
import t from 'tap'
import povRealtime from '../index.js'
import { povRealtimeCollector } from '../lib/metrics.js'
import { SECRET } from './helpers/server.js'

interface Panel { title: string, type: string, targets?: Array<{ expr: string }>, panels?: Panel[] }
interface Dashboard { title: string, uid: string, panels: Panel[], templating: { list: Array<{ name: string, query?: unknown, definition?: string }> } }

const dashboard = JSON.parse(await readFile(new URL('../docs/grafana/fastify-pov-realtime.json', import.meta.url), 'utf8')) as Dashboard

/** Every panel, those inside collapsed rows included. */
function allPanels (panels: Panel[]): Panel[] {
  return panels.flatMap((panel) => [panel, ...allPanels(panel.panels ?? [])])
}

/** PromQL words that are not metric names: aggregation keywords and label-list modifiers. */
const KEYWORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'and', 'or', 'unless', 'offset'])

/**
 * The metric names a PromQL expression reads: identifiers outside strings, label matchers (`{…}`), ranges (`[…]`)
 * and `by (…)` lists, that are not function calls or keywords.
 */
function metricNames (expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring)\s*\([^)]*\)/g, ' ')
  return [...bare.matchAll(/([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?/g)]
    .filter(([, name, call]) => call === undefined && !KEYWORDS.has(name!))
    .map(([, name]) => name!)
}

/** The names a real app's /metrics endpoint exposes, from its `# TYPE` lines. */
async function exportedNames (): Promise<Set<string>> {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(povRealtime, { secret: SECRET })
  const register = new Registry()
  povRealtimeCollector(app, { register })
  app.get('/metrics', async (_request, reply) => reply.type(register.contentType).send(await register.metrics()))
  const response = await app.inject({ url: '/metrics' })
  t.equal(response.statusCode, 200)
  return new Set([...response.body.matchAll(/^# TYPE (\S+) \w+$/gm)].map(([, name]) => name!))
}

t.test('the PromQL reader finds the metrics and only them', async (t) => {
  t.same(metricNames('sum by (code) (rate(pov_realtime_closed_total{instance=~"$instance",code="1011"}[$__rate_interval]))'),
    ['pov_realtime_closed_total'])
  t.same(metricNames('pov_realtime_connections{instance=~"$instance"} / on (instance) pov_realtime_subscriptions'),
    ['pov_realtime_connections', 'pov_realtime_subscriptions'])
  t.same(metricNames('sum(increase(up[1h]))'), ['up'])
})

t.test('every metric a panel queries is exported by the collector, and every exported metric has a panel', async (t) => {
  const exported = await exportedNames()
  t.ok(exported.size >= 10, `the endpoint exports ${exported.size} metrics`)
  const panels = allPanels(dashboard.panels).filter((panel) => panel.targets !== undefined)
  t.ok(panels.length >= 8, `${panels.length} panels with queries`)
  const queried = new Set<string>()
  for (const panel of panels) {
    t.ok(panel.targets!.length > 0, `${panel.title}: has a query`)
    for (const { expr } of panel.targets!) {
      const names = metricNames(expr)
      t.not(names.length, 0, `${panel.title}: ${expr} reads a metric`)
      for (const name of names) {
        t.ok(exported.has(name), `${panel.title}: ${name} is exported`)
        queried.add(name)
      }
    }
  }
  for (const variable of dashboard.templating.list) {
    if (variable.definition === undefined) continue
    for (const name of metricNames(variable.definition.replace(/^label_values\((.*),\s*\w+\)$/, '$1'))) {
      t.ok(exported.has(name), `variable ${variable.name}: ${name} is exported`)
    }
  }
  t.same([...exported].filter((name) => !queried.has(name)).sort(), [], 'no exported metric is left off the dashboard')
})

t.test('the dashboard has the panels an operator looks for first', async (t) => {
  const titles = allPanels(dashboard.panels).map((panel) => panel.title)
  for (const wanted of [/^Connections/, /Subscriptions/, /Deliveries\/s/, /^Rejects by error code$/, /^Closes by close code$/,
    /^Slow consumers$/, /^Presence members/, /^Broker health$/]) {
    t.ok(titles.some((title) => wanted.test(title)), `a panel titled ${wanted}`)
  }
  t.equal(dashboard.uid, 'fastify-pov-realtime', 'a stable uid, so a re-import replaces the dashboard')
})
