/**
 * The load generator: a process of plain `ws` clients, the same for every target. It connects (fetching a real
 * token first for the plugin), subscribes, and counts the activities that arrive and how long each took. Only the
 * wire protocol differs between targets, and all of them parse each message once as JSON, so client cost is equal.
 */
import { Agent, request as httpRequest } from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'
import { createSigner } from 'fast-jwt'
import WebSocket from 'ws'
import { now, type BenchActivity } from './activity.js'
import { serveRequests } from './ipc.js'

/**
 * The wire protocol of a target:
 * - `pov`: this plugin (token from the token route, sent as `bearer.<token>` subprotocol; JSON messages);
 * - `json`: the same JSON messages, no authentication (plain `ws`, @fastify/websocket);
 * - `socket.io`: Engine.IO v4 / Socket.IO v5 packets over the WebSocket transport.
 */
export type Wire = 'pov' | 'json' | 'socket.io'

/** One server instance to connect to. */
export interface Endpoint {
  /** `http://127.0.0.1:<port>` */
  origin: string
}

export interface ConnectRequest {
  wire: Wire
  /** Clients are spread over the endpoints round robin (several instances of one deployment). */
  endpoints: Endpoint[]
  count: number
  /** Connections in flight at once. */
  concurrency: number
  /** For `pov`: the secret that signs the access cookies (as the app's login would). */
  secret?: string
  /** Each client subscribes to this PoV as soon as it is open (the reconnect storm). */
  subscribeTo?: string
  /**
   * The user of this process's first client is `u<firstUser>` (default 0), the next `u<firstUser + 1>`…: when a
   * scenario's clients are spread over several load generators, every client is still a distinct user.
   */
  firstUser?: number
}

export interface ConnectResult {
  /** Wall time from the first connection attempt to the last one open, token fetches included. */
  ms: number
}

export interface SubscribeRequest {
  /** Client `i` subscribes to `p<i % povCount>`. */
  povCount: number
  /** The first `count` clients also subscribe to `povId` (the density scenario's large PoV). */
  extra?: { povId: string, count: number }
}

export interface WaitResult {
  /** Activities received since `arm`. */
  received: number
  /** When the expected count was reached (or the last activity arrived, if it never was). */
  lastAt: number
  /** Latency percentiles in ms, over every activity received. */
  p50: number
  p99: number
  max: number
  /** Error messages received from the server since `arm`. */
  errors: number
  /** The fewest and the most activities one client received since `arm`. */
  perClient: { min: number, max: number }
  /**
   * Messages other than activities received since `arm` (presence, typing, read events); the frames telling of moved
   * marks alone (`read` events and unsolicited `reads`), and the marks they carried.
   */
  others: number
  readEvents: number
  readMarks: number
  /** When the last `read` or `reads` frame arrived (0 if none did). */
  lastReadAt: number
  /** This process's CPU time (user + system, µs) from `arm` until the expected count was reached (or the deadline). */
  cpuMicros: number
}

/** What the clients do besides receiving, from `arm` until the activities arrived. */
export interface ArmRequest {
  expected: number
  /** The first `members` clients switch between active and idle and type on their PoV every `intervalMs`. */
  chatter?: { members: number, intervalMs: number }
  /** Every client sends `read` for each activity it receives. */
  readEach?: boolean
}

/** A storm: every client subscribes to `povId` at once, or (`reconnect`) drops and connects again to subscribe. */
export interface StormRequest {
  povId: string
  /** Whether to wait for each client's member list to reach one member per client (presence on). */
  presence: boolean
  /** How to connect again, for a reconnect storm. */
  reconnect?: ConnectRequest
  timeout: number
  /** Ms to go on counting messages once every client is done. */
  settle: number
}

export interface StormResult {
  /** From the first subscription (the drop, for a reconnect storm) until every client was done. */
  ms: number
  /** Clients that got `subscribed`, and those whose member list was complete (presence on). */
  subscribed: number
  settled: number
  /** Messages and payload bytes all the clients received, settle included. */
  messages: number
  bytes: number
  /** The fewest and the most members a client's list held at the end. */
  members: { min: number, max: number }
}

const PATHS = { pov: '/ws', json: '/ws', 'socket.io': '/socket.io/?EIO=4&transport=websocket' } as const

/** Counters for the current measurement. */
class Tally {
  received = 0
  errors = 0
  lastAt = 0
  others = 0
  readEvents = 0
  readMarks = 0
  lastReadAt = 0
  /** Every message, since the process started (for `quiet`). */
  lastMessageAt = 0
  readEach = false
  latencies = new Float64Array(0)
  /** `process.cpuUsage()` at `arm`. */
  cpuAtArm = process.cpuUsage()

  arm (expected: number, readEach: boolean): void {
    this.cpuAtArm = process.cpuUsage()
    this.received = 0
    this.errors = 0
    this.lastAt = 0
    this.others = 0
    this.readEvents = 0
    this.readMarks = 0
    this.lastReadAt = 0
    this.readEach = readEach
    // Room for a few unexpected extra deliveries; beyond it latencies are not sampled (the count still is).
    this.latencies = new Float64Array(expected + 1024)
  }

  activity (client: BenchClient, data: BenchActivity): void {
    client.received++
    const at = now()
    if (this.received < this.latencies.length) this.latencies[this.received] = at - data.metadata.sentAt
    this.received++
    this.lastAt = at
  }

  /** A `read` event (one mark) or an unsolicited `reads` (several, moved in one of the server's windows). */
  readEvent (marks: number): void {
    this.readEvents++
    this.readMarks += marks
    this.lastReadAt = now()
  }
}

const tally = new Tally()

class BenchClient {
  readonly ws: WebSocket
  readonly ready: Promise<void>
  /** Activities received since the last `arm`. */
  received = 0
  /** Messages and payload bytes received since the last reset (storms). */
  messages = 0
  bytes = 0
  /** PoVs this client got `subscribed` for, and the members each holds (from `presence` and `presence_diff`). */
  readonly subscribed = new Set<string>()
  readonly members = new Map<string, Set<string>>()
  readonly #wire: Wire
  readonly #subscribing = new Map<string, () => void>()
  #connected: (() => void) | undefined

  constructor (url: string, wire: Wire, protocols?: string[]) {
    this.#wire = wire
    this.ws = new WebSocket(url, protocols)
    this.ready = new Promise((resolve, reject) => {
      // Errors after the open (a reset at the end of a run) are of no interest: the counts tell what arrived.
      this.ws.on('error', reject)
      this.ws.once('close', () => reject(new Error('closed before it was ready')))
      if (wire === 'socket.io') {
        this.#connected = resolve // on the namespace's CONNECT answer
      } else {
        this.ws.once('open', () => resolve())
      }
    })
    this.ready.catch(() => {})
    this.ws.on('message', (data: Buffer) => {
      this.messages++
      this.bytes += data.length
      tally.lastMessageAt = now()
      this.#onMessage(data.toString())
    })
  }

  send (message: object): void {
    this.ws.send(JSON.stringify(message))
  }

  subscribe (povId: string): Promise<void> {
    return new Promise((resolve) => {
      this.#subscribing.set(povId, resolve)
      this.ws.send(this.#wire === 'socket.io' ? `42${JSON.stringify(['subscribe', povId])}` : JSON.stringify({ type: 'subscribe', povId }))
    })
  }

  #subscribed (povId: string): void {
    this.subscribed.add(povId)
    this.#subscribing.get(povId)?.()
    this.#subscribing.delete(povId)
  }

  #onMessage (text: string): void {
    if (this.#wire !== 'socket.io') {
      const message = JSON.parse(text) as PovMessage
      if (message.type === 'activity') {
        tally.activity(this, message.data!)
        if (tally.readEach) this.send({ type: 'read', povId: message.data!.povId, cursor: message.cursor })
        return
      }
      tally.others++
      if (message.type === 'subscribed') this.#subscribed(message.povId!)
      else if (message.type === 'presence') this.members.set(message.povId!, new Set(message.members!.map((m) => m.userId)))
      else if (message.type === 'presence_diff') this.#applyDiff(message)
      else if (message.type === 'read') tally.readEvent(1)
      else if (message.type === 'reads') tally.readEvent(message.reads!.length)
      else if (message.type === 'error') tally.errors++
      return
    }
    // Engine.IO: 0 open, 2 ping (answered 3), 4 message; Socket.IO inside it: 0 connect, 2 event, 4 connect error.
    if (text.startsWith('42')) {
      const [event, payload] = JSON.parse(text.slice(2)) as [string, unknown]
      if (event === 'activity') tally.activity(this, (payload as { data: BenchActivity }).data)
      else if (event === 'subscribed') this.#subscribed(payload as string)
      else tally.others++
    } else if (text === '2') {
      this.ws.send('3')
    } else if (text.startsWith('40')) {
      this.#connected?.()
    } else if (text.startsWith('0')) {
      this.ws.send('40')
    } else if (text.startsWith('44')) {
      tally.errors++
    }
  }

  #applyDiff ({ povId, joins, leaves }: PovMessage): void {
    const members = this.members.get(povId!)
    if (!members) return
    for (const userId of leaves!) members.delete(userId)
    for (const { userId } of joins!) members.add(userId)
  }
}

/** The fields of the plugin's server messages that the load generator looks at. */
interface PovMessage {
  type: string
  povId?: string
  cursor?: string
  data?: BenchActivity
  members?: Array<{ userId: string }>
  joins?: Array<{ userId: string }>
  leaves?: string[]
  reads?: unknown[]
}

let clients: BenchClient[] = []

/** A WebSocket token from the token route, as the React hook gets it: GET with the access cookie. */
function fetchToken (origin: string, cookie: string, agent: Agent): Promise<string> {
  return new Promise((resolve, reject) => {
    const request = httpRequest(`${origin}/api/auth/ws-token`, { agent, headers: { cookie: `accessToken=${cookie}` } }, (response) => {
      let body = ''
      response.setEncoding('utf8')
      response.on('data', (chunk: string) => { body += chunk })
      response.on('end', () => {
        if (response.statusCode !== 200) reject(new Error(`token route answered ${response.statusCode}: ${body}`))
        else resolve((JSON.parse(body) as { token: string }).token)
      })
    })
    request.on('error', reject)
    request.end()
  })
}

async function connect ({ wire, endpoints, count, concurrency, secret, subscribeTo, firstUser = 0 }: ConnectRequest): Promise<ConnectResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency })
  // The access cookies exist before the measurement: the app's login set them.
  const sign = secret ? createSigner({ key: secret, expiresIn: '8h' }) : undefined
  const cookies = sign
    ? Array.from({ length: count }, (_, i) => sign({ userId: `u${firstUser + i}`, email: `u${firstUser + i}@example.com`, role: 'member' }) as string)
    : []
  const opened: BenchClient[] = new Array(count)
  let next = 0
  const startedAt = now()

  async function worker (): Promise<void> {
    while (next < count) {
      const i = next++
      const { origin } = endpoints[i % endpoints.length]!
      const url = origin.replace(/^http/, 'ws') + PATHS[wire]
      let protocols: string[] | undefined
      if (wire === 'pov') protocols = ['pov-realtime.v1', `bearer.${await fetchToken(origin, cookies[i]!, agent)}`]
      const client = new BenchClient(url, wire, protocols)
      opened[i] = client
      await client.ready
      if (subscribeTo) client.subscribe(subscribeTo)
    }
  }
  try {
    await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker))
  } finally {
    agent.destroy()
    clients.push(...opened.filter(Boolean))
  }
  return { ms: now() - startedAt }
}

async function subscribe ({ povCount, extra }: SubscribeRequest): Promise<{ ms: number }> {
  const startedAt = now()
  await Promise.all(clients.map((client, i) => client.subscribe(`p${i % povCount}`)))
  if (extra) await Promise.all(clients.slice(0, extra.count).map((client) => client.subscribe(extra.povId)))
  return { ms: now() - startedAt }
}

function percentile (sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!
}

/**
 * Waits until `expected` activities arrived (or `timeout` ms passed), stops the chatter, then waits `settle` ms more to
 * catch any extra.
 */
async function wait ({ expected, timeout, settle }: { expected: number, timeout: number, settle: number }): Promise<WaitResult> {
  const deadline = Date.now() + timeout
  while (tally.received < expected && Date.now() < deadline) await sleep(5)
  stopChatter()
  const cpu = process.cpuUsage(tally.cpuAtArm)
  const lastAt = tally.lastAt
  await sleep(settle)
  const sorted = tally.latencies.slice(0, Math.min(tally.received, tally.latencies.length)).sort()
  return {
    received: tally.received,
    lastAt,
    p50: percentile(sorted, 0.5),
    p99: percentile(sorted, 0.99),
    max: sorted.length ? sorted[sorted.length - 1]! : NaN,
    errors: tally.errors,
    perClient: {
      min: clients.reduce((min, client) => Math.min(min, client.received), Infinity),
      max: clients.reduce((max, client) => Math.max(max, client.received), 0)
    },
    others: tally.others,
    readEvents: tally.readEvents,
    readMarks: tally.readMarks,
    lastReadAt: tally.lastReadAt,
    cpuMicros: cpu.user + cpu.system
  }
}

/** The chatter of `arm` while it runs: one timer, stopped when the activities arrived (or by `disconnect`). */
let chatterTimer: NodeJS.Timeout | undefined
/** Whether the chatting members are idle now; kept across `arm`s so that each tick is a change the server passes on. */
let chatterIdle = false

function startChatter ({ members, intervalMs }: { members: number, intervalMs: number }): void {
  const chatting = clients.slice(0, members)
  // Each tick changes the members' status (a `presence_diff`) and their typing (a `typing` event: a repeated
  // `typing: true` inside the timeout would be absorbed, `typing: false` is passed on at once).
  const tick = () => {
    chatterIdle = !chatterIdle
    for (const client of chatting) {
      client.send({ type: 'status', status: chatterIdle ? 'idle' : 'active' })
      for (const povId of client.subscribed) client.send({ type: 'typing', povId, typing: !chatterIdle })
    }
  }
  tick()
  chatterTimer = setInterval(tick, intervalMs)
}

function stopChatter (): void {
  clearInterval(chatterTimer)
  chatterTimer = undefined
}

/** Waits until no message arrived for `ms` (or `timeout` passed): what a subscription set off has settled. */
async function quiet ({ ms, timeout }: { ms: number, timeout: number }): Promise<void> {
  const deadline = Date.now() + timeout
  while (now() - tally.lastMessageAt < ms && Date.now() < deadline) await sleep(10)
}

async function storm ({ povId, presence, reconnect, timeout, settle }: StormRequest): Promise<StormResult> {
  for (const client of clients) {
    client.messages = 0
    client.bytes = 0
  }
  const startedAt = now()
  const deadline = Date.now() + timeout
  let connecting: Promise<ConnectResult> | undefined
  if (reconnect) {
    for (const client of clients) client.ws.terminate()
    clients = []
    connecting = connect({ ...reconnect, subscribeTo: povId })
  } else {
    for (const client of clients) client.subscribe(povId)
  }
  const count = reconnect?.count ?? clients.length
  const done = (client: BenchClient) => client.subscribed.has(povId) && (!presence || client.members.get(povId)?.size === count)
  await connecting
  while (!(clients.length === count && clients.every(done)) && Date.now() < deadline) await sleep(2)
  const ms = now() - startedAt
  await sleep(settle)
  const sizes = clients.map((client) => client.members.get(povId)?.size ?? 0)
  return {
    ms,
    subscribed: clients.filter((client) => client.subscribed.has(povId)).length,
    settled: clients.filter(done).length,
    messages: clients.reduce((sum, client) => sum + client.messages, 0),
    bytes: clients.reduce((sum, client) => sum + client.bytes, 0),
    members: { min: Math.min(...sizes), max: Math.max(...sizes) }
  }
}

serveRequests({
  connect,
  subscribe,
  arm: ({ expected, chatter, readEach = false }: ArmRequest) => {
    tally.arm(expected, readEach)
    for (const client of clients) client.received = 0
    if (chatter) startChatter(chatter)
  },
  wait,
  quiet,
  storm,
  disconnect: () => {
    stopChatter()
    for (const client of clients) client.ws.terminate()
    clients = []
  }
}, {})
