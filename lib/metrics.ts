/**
 * `fastify-pov-realtime/metrics`: `fastify.povRealtime.stats()` as Prometheus metrics, through prom-client.
 *
 * The metrics hold no values of their own: each reads `stats()` when the registry is scraped (prom-client's
 * `collect()`), so what Prometheus sees is exactly what `stats()` says, with no second set of counters to drift.
 *
 * This is the only file that imports prom-client: apps that do not export metrics never load it.
 */
import type { FastifyInstance } from 'fastify'
import { Counter, Gauge, register as defaultRegistry, type OpenMetricsContentType, type PrometheusContentType, type Registry } from 'prom-client'
import { InvalidOptionError } from './errors.js'
import type { PovRealtimeStats } from './stats.js'

export interface PovRealtimeCollectorOptions {
  /** The registry the metrics are registered in. Default: prom-client's default registry. */
  register?: Registry<PrometheusContentType> | Registry<OpenMetricsContentType>
  /** Prefix of every metric name. Default `'pov_realtime_'`. */
  prefix?: string
}

/** What `povRealtimeCollector` registered. */
export interface PovRealtimeCollector {
  /** The full names of the metrics, prefix included. */
  readonly names: readonly string[]
  /** Removes the metrics from the registry (for example before registering those of a new app in the same process). */
  unregister (): void
}

type StatsField = keyof PovRealtimeStats

/** The current values: one gauge each. */
const GAUGES = [
  { field: 'connections', name: 'connections', help: 'Open WebSocket connections' },
  { field: 'subscriptions', name: 'subscriptions', help: 'Socket-PoV subscriptions' },
  { field: 'povs', name: 'povs', help: 'PoVs with at least one subscriber on this instance' },
  { field: 'presenceMembers', name: 'presence_members', help: 'Members of the PoVs this instance watches (presence on), one per user per PoV' }
] as const satisfies ReadonlyArray<{ field: StatsField, name: string, help: string }>

/** The totals since start: one counter each. */
const COUNTERS = [
  { field: 'broadcasts', name: 'broadcasts_total', help: 'Activities published from this instance' },
  { field: 'deliveries', name: 'deliveries_total', help: "Activity frames written to this instance's sockets" },
  { field: 'authFailures', name: 'auth_failures_total', help: 'Refused token requests and refused upgrades' },
  { field: 'slowConsumerCloses', name: 'slow_consumer_closes_total', help: 'Sockets closed with 4008 for reading too slowly' },
  { field: 'presenceDropped', name: 'presence_dropped_total', help: 'Presence and typing messages dropped for sockets reading too slowly' },
  { field: 'revoked', name: 'revoked_total', help: 'Subscriptions ended by revocation or by a refused re-authorization' },
  { field: 'feedInterruptions', name: 'feed_interruptions_total', help: 'PoV feeds the broker reported as having lost activities in transit' },
  { field: 'resyncs', name: 'resyncs_total', help: 'resync messages sent to subscribers of PoV feeds that lost activities in transit' },
  { field: 'brokerFaults', name: 'broker_faults_total', help: "Faults of the broker's backing service (a connection lost, no answer), once per outage" }
] as const satisfies ReadonlyArray<{ field: StatsField, name: string, help: string }>

/** The totals by a label (an error or close code, a limit's name): one counter each. */
const LABELLED_COUNTERS = [
  { field: 'rejected', name: 'rejected_total', label: 'code', help: 'Error messages sent to clients, by error code' },
  { field: 'closed', name: 'closed_total', label: 'code', help: 'Closes this server started, by the close code it sent' },
  { field: 'limitTrips', name: 'limit_trips_total', label: 'limit', help: 'Times a fairness limit refused, held back or dropped something, by limit' }
] as const satisfies ReadonlyArray<{ field: StatsField, name: string, label: string, help: string }>

/** Prometheus metric names: `[a-zA-Z_:][a-zA-Z0-9_:]*`; the prefix may be empty. */
const PREFIX_PATTERN = /^(?:[a-zA-Z_:][a-zA-Z0-9_:]*)?$/

/**
 * Registers gauges (`connections`, `subscriptions`, `povs`, `presence_members`) and counters (`broadcasts_total`,
 * `deliveries_total`, `rejected_total{code}`, `closed_total{code}`, `auth_failures_total`, `slow_consumer_closes_total`,
 * `presence_dropped_total`, `revoked_total`, `feed_interruptions_total`, `resyncs_total`, `broker_faults_total`,
 * `limit_trips_total{limit}`) that read `app.povRealtime.stats()` at each scrape. Call it after `await app.register(povRealtime, …)`, once per registry.
 * @param app a Fastify instance with fastify-pov-realtime registered
 * @param [options.register=prom-client's default registry] where the metrics are registered
 * @param [options.prefix='pov_realtime_'] prefix of every metric name
 */
export function povRealtimeCollector (app: FastifyInstance, options: PovRealtimeCollectorOptions = {}): PovRealtimeCollector {
  const { register = defaultRegistry, prefix = 'pov_realtime_' } = options
  if (typeof app?.povRealtime?.stats !== 'function') {
    throw new InvalidOptionError('povRealtimeCollector needs an app with the plugin registered: await app.register(povRealtime, …) first')
  }
  if (typeof prefix !== 'string' || !PREFIX_PATTERN.test(prefix)) {
    throw new InvalidOptionError(`prefix must be a valid Prometheus metric name prefix, got ${JSON.stringify(prefix)}`)
  }
  const names = [...GAUGES, ...COUNTERS, ...LABELLED_COUNTERS].map(({ name }) => prefix + name)
  const taken = names.filter((name) => register.getSingleMetric(name) !== undefined)
  if (taken.length > 0) {
    throw new InvalidOptionError(`the registry already has ${taken.join(', ')}: use another prefix or registry, or unregister() the previous collector`)
  }
  const stats = (): PovRealtimeStats => app.povRealtime.stats()
  const registers = [register]

  // Each metric registers itself in `registers`; the registry is what holds on to it.
  for (const { field, name, help } of GAUGES) {
    new Gauge({ name: prefix + name, help, registers, collect () { this.set(stats()[field]) } }) // eslint-disable-line no-new
  }
  for (const { field, name, help } of COUNTERS) {
    new Counter({ // eslint-disable-line no-new
      name: prefix + name,
      help,
      registers,
      collect () {
        this.reset()
        this.inc(stats()[field])
      }
    })
  }
  for (const { field, name, label, help } of LABELLED_COUNTERS) {
    new Counter({ // eslint-disable-line no-new
      name: prefix + name,
      help,
      labelNames: [label],
      registers,
      collect () {
        this.reset()
        for (const [value, count] of Object.entries(stats()[field])) this.inc({ [label]: value }, count)
      }
    })
  }
  return {
    names,
    unregister () {
      for (const name of names) register.removeSingleMetric(name)
    }
  }
}
