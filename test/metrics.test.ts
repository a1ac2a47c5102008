/**
 * `fastify-pov-realtime/metrics`: a `/metrics` route served from prom-client's registry shows what
 * `fastify.povRealtime.stats()` counts, scraped over HTTP while real clients subscribe and activities flow.
 */
import { Registry, register as defaultRegistry } from 'prom-client'
import t, { type Test } from 'tap'
import { povRealtimeCollector } from '../lib/metrics.js'
import type { PovRealtimeStats } from '../lib/stats.js'
import { RawWebSocket } from './helpers/raw-socket.js'
import { activity, sleep, socketToken, startServer, waitFor, type TestServer } from './helpers/server.js'
import { attemptUpgrade } from './helpers/upgrade.js'
import { closed } from './helpers/socket-waits.js'

/** One scrape: every sample by `name{label="value",…}` (labels sorted), and every `# TYPE` by metric name. */
interface Scrape {
  readonly samples: ReadonlyMap<string, number>
  readonly types: ReadonlyMap<string, string>
}

/** Parses the Prometheus text exposition format (version 0.0.4): enough of it for what prom-client writes. */
function parseExposition (text: string): Scrape {
  const samples = new Map<string, number>()
  const types = new Map<string, string>()
  for (const line of text.split('\n')) {
    if (line === '') continue
    const type = /^# TYPE (\S+) (\S+)$/.exec(line)
    if (type) {
      types.set(type[1]!, type[2]!)
      continue
    }
    if (line.startsWith('#')) continue
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
    if (!sample) throw new Error(`not an exposition line: ${line}`)
    const labels = [...(sample[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)]
      .map(([, name, value]) => `${name}="${value}"`).sort()
    samples.set(labels.length > 0 ? `${sample[1]}{${labels.join(',')}}` : sample[1]!, Number(sample[3]))
  }
  return { samples, types }
}

/** The samples the collector should expose for `stats`, under the default prefix. */
function samplesOf (stats: PovRealtimeStats): Map<string, number> {
  const samples = new Map<string, number>([
    ['pov_realtime_connections', stats.connections],
    ['pov_realtime_subscriptions', stats.subscriptions],
    ['pov_realtime_povs', stats.povs],
    ['pov_realtime_broadcasts_total', stats.broadcasts],
    ['pov_realtime_deliveries_total', stats.deliveries],
    ['pov_realtime_auth_failures_total', stats.authFailures],
    ['pov_realtime_slow_consumer_closes_total', stats.slowConsumerCloses],
    ['pov_realtime_presence_members', stats.presenceMembers],
    ['pov_realtime_presence_dropped_total', stats.presenceDropped],
    ['pov_realtime_revoked_total', stats.revoked],
    ['pov_realtime_feed_interruptions_total', stats.feedInterruptions],
    ['pov_realtime_resyncs_total', stats.resyncs],
    ['pov_realtime_broker_faults_total', stats.brokerFaults]
  ])
  for (const [code, count] of Object.entries(stats.rejected)) samples.set(`pov_realtime_rejected_total{code="${code}"}`, count)
  for (const [code, count] of Object.entries(stats.closed)) samples.set(`pov_realtime_closed_total{code="${code}"}`, count)
  for (const [limit, count] of Object.entries(stats.limitTrips)) samples.set(`pov_realtime_limit_trips_total{limit="${limit}"}`, count)
  return samples
}

/** A server whose `/metrics` route serves a registry of its own with the collector in it. */
async function startServerWithMetrics (t: Test, options: Parameters<typeof startServer>[1] = {}) {
  const registry = new Registry()
  const server = await startServer(t, options, undefined, (app) => {
    povRealtimeCollector(app, { register: registry })
    app.get('/metrics', async (_request, reply) => reply.type(registry.contentType).send(await registry.metrics()))
  })
  async function scrape (): Promise<Scrape> {
    const response = await fetch(`${server.httpUrl}/metrics`)
    t.equal(response.status, 200)
    t.match(response.headers.get('content-type'), /^text\/plain; version=0\.0\.4/)
    return parseExposition(await response.text())
  }
  return { server, registry, scrape }
}

t.test('/metrics shows what stats() counts, scraped while clients subscribe and activities flow', async (t) => {
  const { server, scrape } = await startServerWithMetrics(t, {
    maxSubscriptions: 2,
    rateLimit: { max: 10, timeWindow: 60_000 },
    maxBufferedBytes: 64 * 1024
  })

  const idle = await scrape()
  t.same(Object.fromEntries(idle.samples), Object.fromEntries(samplesOf(server.app.povRealtime.stats())), 'idle: every sample is there')
  t.match(Object.fromEntries(idle.samples), { pov_realtime_connections: 0, pov_realtime_broadcasts_total: 0, pov_realtime_deliveries_total: 0 })
  t.same(Object.fromEntries(idle.types), {
    pov_realtime_connections: 'gauge',
    pov_realtime_subscriptions: 'gauge',
    pov_realtime_povs: 'gauge',
    pov_realtime_broadcasts_total: 'counter',
    pov_realtime_deliveries_total: 'counter',
    pov_realtime_auth_failures_total: 'counter',
    pov_realtime_slow_consumer_closes_total: 'counter',
    pov_realtime_presence_members: 'gauge',
    pov_realtime_presence_dropped_total: 'counter',
    pov_realtime_revoked_total: 'counter',
    pov_realtime_feed_interruptions_total: 'counter',
    pov_realtime_resyncs_total: 'counter',
    pov_realtime_broker_faults_total: 'counter',
    pov_realtime_rejected_total: 'counter',
    pov_realtime_closed_total: 'counter',
    pov_realtime_limit_trips_total: 'counter'
  }, 'gauges for current values, counters for totals')

  const alice = await server.connect({ claims: { userId: 'alice' } })
  const bob = await server.connect({ claims: { userId: 'bob' } })
  await alice.subscribe('p1')
  await alice.subscribe('p2')
  await bob.subscribe('p1')

  // Activities flow (one every 2 ms, alternating PoVs) while /metrics is scraped.
  const BROADCASTS = 60
  let published = 0
  let delivered = 0
  const flow = (async () => {
    for (let i = 0; i < BROADCASTS; i++) {
      delivered += (await server.app.broadcastActivity(activity(i % 2 === 0 ? 'p1' : 'p2', { id: `a${i}` }))).delivered
      published++
      await sleep(2)
    }
  })()
  const flowing = (): boolean => published < BROADCASTS
  const during: Scrape[] = []
  while (flowing()) {
    during.push(await scrape())
    await sleep(10)
  }
  await flow
  t.ok(during.length >= 2, `scraped ${during.length} times while activities flowed`)
  let previous = 0
  for (const { samples } of during) {
    t.match(Object.fromEntries(samples), { pov_realtime_connections: 2, pov_realtime_subscriptions: 3, pov_realtime_povs: 2 })
    const broadcasts = samples.get('pov_realtime_broadcasts_total')!
    t.ok(broadcasts >= previous && broadcasts <= BROADCASTS, `broadcasts_total only grows (${previous} → ${broadcasts})`)
    previous = broadcasts
  }
  t.ok(during.some(({ samples }) => samples.get('pov_realtime_broadcasts_total')! < BROADCASTS), 'a scrape saw the flow midway')

  await waitFor(() => alice.activities().length + bob.activities().length === delivered, 5000, 'every delivery to arrive')
  const afterFlow = await scrape()
  t.equal(afterFlow.samples.get('pov_realtime_broadcasts_total'), BROADCASTS, 'every broadcast counted')
  t.equal(delivered, BROADCASTS / 2 * 2 + BROADCASTS / 2, 'p1 reached both clients, p2 one')
  t.equal(afterFlow.samples.get('pov_realtime_deliveries_total'), delivered, 'deliveries_total is what the clients received')

  // Rejections by code: a message that is not JSON, a subscription past maxSubscriptions.
  await bob.request('not json', 'error')
  t.match(await bob.subscribe('p2'), { type: 'subscribed' })
  t.match(await bob.subscribe('p3'), { type: 'error', code: 'SUBSCRIPTION_LIMIT' })
  // Refused credentials: the token route without a cookie, an upgrade with a foreign token.
  t.equal((await fetch(`${server.httpUrl}/api/auth/ws-token`)).status, 401)
  const refused = await attemptUpgrade(t, `${server.wsUrl}?token=${socketToken({}, { key: 'x'.repeat(40) })}`)
  t.match(refused, { opened: false, status: 401 })
  // A flood: RATE_LIMITED, then 4008.
  const flooder = await server.connect({ claims: { userId: 'carol' } })
  for (let i = 0; i < 25; i++) flooder.send({ type: 'ping' })
  t.equal((await closed(flooder)).code, 4008)
  // A slow consumer: it stops reading, and a burst of large activities is written to it in one event-loop turn.
  const slow = await RawWebSocket.open(server.port, '/ws', await server.wsToken({ userId: 'dave' }))
  t.teardown(() => slow.destroy())
  slow.send({ type: 'subscribe', povId: 'slow' })
  await waitFor(() => slow.messages().some((m) => m.type === 'subscribed'), 5000, 'the slow peer to be subscribed')
  slow.stopReading()
  const burst = []
  for (let i = 0; i < 3000 && server.app.povRealtime.stats().slowConsumerCloses === 0; i++) {
    burst.push(server.app.broadcastActivity(activity('slow', { id: `s${i}`, message: 'x'.repeat(9000) })))
  }
  await Promise.all(burst)
  // A revocation of a user as a whole: her socket is closed with 4003, her subscription counted as revoked.
  const erin = await server.connect({ claims: { userId: 'erin' } })
  await erin.subscribe('p1')
  await server.app.povRealtime.revoke({ userId: 'erin' })
  t.equal((await closed(erin)).code, 4003)
  await waitFor(() => server.app.povRealtime.stats().connections === 2, 5000, 'the flooder, the slow peer and erin to be gone')

  const busy = await scrape()
  const stats = server.app.povRealtime.stats()
  t.same(Object.fromEntries(busy.samples), Object.fromEntries(samplesOf(stats)), 'every sample equals stats()')
  t.match(Object.fromEntries(busy.samples), {
    pov_realtime_connections: 2,
    pov_realtime_subscriptions: 4,
    pov_realtime_povs: 2,
    pov_realtime_broadcasts_total: BROADCASTS + burst.length,
    'pov_realtime_rejected_total{code="INVALID_MESSAGE"}': 1,
    'pov_realtime_rejected_total{code="SUBSCRIPTION_LIMIT"}': 1,
    'pov_realtime_rejected_total{code="RATE_LIMITED"}': 1,
    'pov_realtime_closed_total{code="4008"}': 2,
    'pov_realtime_closed_total{code="4003"}': 1,
    pov_realtime_auth_failures_total: 2,
    pov_realtime_slow_consumer_closes_total: 1,
    pov_realtime_revoked_total: 1,
    'pov_realtime_limit_trips_total{limit="maxSubscriptions"}': 1,
    'pov_realtime_limit_trips_total{limit="maxSocketsPerUser"}': 0
  }, 'each rejection, close, refusal, revocation and limit trip by code')

  alice.close()
  bob.close()
  await waitFor(() => server.app.povRealtime.stats().connections === 0, 5000, 'every socket to be forgotten')
  const after = await scrape()
  t.match(Object.fromEntries(after.samples), { pov_realtime_connections: 0, pov_realtime_subscriptions: 0, pov_realtime_povs: 0 },
    'the current values return to 0')
  t.equal(after.samples.get('pov_realtime_deliveries_total'), busy.samples.get('pov_realtime_deliveries_total'), 'totals stay')
})

t.test('the collector goes in prom-client\'s default registry under the default prefix, or where it is told', async (t) => {
  const server: TestServer = await startServer(t)
  const collector = povRealtimeCollector(server.app)
  t.teardown(() => collector.unregister())
  t.equal(collector.names.length, 16)
  t.ok(collector.names.every((name) => name.startsWith('pov_realtime_')))
  const client = await server.connect()
  await client.subscribe('p1')
  const text = await defaultRegistry.metrics()
  t.match(parseExposition(text).samples.get('pov_realtime_subscriptions'), 1, 'the default registry serves it')

  const registry = new Registry()
  const prefixed = povRealtimeCollector(server.app, { register: registry, prefix: 'feeds_' })
  t.same(prefixed.names.filter((name) => !name.startsWith('feeds_')), [])
  t.equal(parseExposition(await registry.metrics()).samples.get('feeds_connections'), 1)

  t.throws(() => povRealtimeCollector(server.app, { register: registry, prefix: 'feeds_' }),
    { code: 'POV_REALTIME_INVALID_OPTION', message: /already has feeds_connections/ }, 'a second collector with the same names is refused')
  t.equal(parseExposition(await registry.metrics()).samples.size, 20,
    'and registered nothing new (12 plain samples, one per limit, none yet by error or close code)')
  prefixed.unregister()
  t.equal((await registry.metrics()).trim(), '', 'unregister() removes every metric')
  povRealtimeCollector(server.app, { register: registry, prefix: 'feeds_' })
  t.equal(parseExposition(await registry.metrics()).samples.get('feeds_subscriptions'), 1, 'after which the names are free again')
})

t.test('the collector refuses an app without the plugin and a prefix that is not a metric name', async (t) => {
  const server = await startServer(t)
  const registry = new Registry()
  const { default: Fastify } = await import('fastify')
  const bare = Fastify()
  t.teardown(() => bare.close())
  t.throws(() => povRealtimeCollector(bare, { register: registry }), { code: 'POV_REALTIME_INVALID_OPTION', message: /register\(povRealtime/ })
  for (const prefix of ['pov-realtime_', '1pov_', 'pov realtime ', 42 as unknown as string]) {
    t.throws(() => povRealtimeCollector(server.app, { register: registry, prefix }), { code: 'POV_REALTIME_INVALID_OPTION' }, `refused: ${JSON.stringify(prefix)}`)
  }
  t.equal((await registry.metrics()).trim(), '', 'nothing was registered')
})

t.test('with presence on, /metrics counts the members of the watched PoVs', async (t) => {
  const { server, scrape } = await startServerWithMetrics(t, { presence: true })
  const alice = await server.connect({ claims: { userId: 'alice' } })
  const aliceAgain = await server.connect({ claims: { userId: 'alice' } })
  const bob = await server.connect({ claims: { userId: 'bob' } })
  for (const client of [alice, aliceAgain, bob]) await client.subscribe('p1')
  await bob.subscribe('p2')
  const scraped = await scrape()
  t.equal(scraped.samples.get('pov_realtime_presence_members'), 3, 'alice (two tabs) and bob on p1, bob on p2')
  t.same(Object.fromEntries(scraped.samples), Object.fromEntries(samplesOf(server.app.povRealtime.stats())), 'every sample equals stats()')
  for (const client of [alice, aliceAgain, bob]) client.close()
  await waitFor(() => server.app.povRealtime.stats().connections === 0, 5000, 'every socket to be forgotten')
  t.equal((await scrape()).samples.get('pov_realtime_presence_members'), 0, 'back to 0 once everyone left')
})

t.test('/metrics shows each limit\'s trips, every limit from 0, and the feed interruptions', async (t) => {
  const { server, scrape } = await startServerWithMetrics(t, { maxSocketsPerUser: 1 })
  const idle = await scrape()
  for (const limit of ['maxSocketsPerUser', 'maxSubscriptions', 'statusChanges', 'historyMaxBytes', 'historyMaxTotalBytes', 'readMarksPerUser', 'readMarksPerPov']) {
    t.equal(idle.samples.get(`pov_realtime_limit_trips_total{limit="${limit}"}`), 0, `${limit}: 0 before it trips`)
  }
  t.equal(idle.samples.get('pov_realtime_feed_interruptions_total'), 0)
  t.equal(idle.samples.get('pov_realtime_resyncs_total'), 0)
  t.equal(idle.samples.get('pov_realtime_broker_faults_total'), 0)
  await server.connect({ claims: { userId: 'alice' } })
  t.match(await attemptUpgrade(t, server.wsUrl, { protocols: ['pov-realtime.v1', `bearer.${await server.wsToken({ userId: 'alice' })}`] }),
    { opened: false, status: 429 })
  const scraped = await scrape()
  t.equal(scraped.samples.get('pov_realtime_limit_trips_total{limit="maxSocketsPerUser"}'), 1, 'the refused upgrade is a trip')
  t.same(Object.fromEntries(scraped.samples), Object.fromEntries(samplesOf(server.app.povRealtime.stats())), 'every sample equals stats()')
})
