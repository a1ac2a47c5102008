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
}

export interface ConnectResult {
  /** Wall time from the first connection attempt to the last one open, token fetches included. */
  ms: number
}

export interface SubscribeRequest {
  /** Client `i` subscribes to `p<i % povCount>`. */
  povCount: number
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
}

const PATHS = { pov: '/ws', json: '/ws', 'socket.io': '/socket.io/?EIO=4&transport=websocket' } as const

/** Counters for the current measurement. */
class Tally {
  received = 0
  errors = 0
  lastAt = 0
  latencies = new Float64Array(0)

  arm (expected: number): void {
    this.received = 0
    this.errors = 0
    this.lastAt = 0
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
}

const tally = new Tally()

class BenchClient {
  readonly ws: WebSocket
  readonly ready: Promise<void>
  /** Activities received since the last `arm`. */
  received = 0
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
    this.ws.on('message', (data: Buffer) => this.#onMessage(data.toString()))
  }

  subscribe (povId: string): Promise<void> {
    return new Promise((resolve) => {
      this.#subscribing.set(povId, resolve)
      this.ws.send(this.#wire === 'socket.io' ? `42${JSON.stringify(['subscribe', povId])}` : JSON.stringify({ type: 'subscribe', povId }))
    })
  }

  #subscribed (povId: string): void {
    this.#subscribing.get(povId)?.()
    this.#subscribing.delete(povId)
  }

  #onMessage (text: string): void {
    if (this.#wire !== 'socket.io') {
      const message = JSON.parse(text) as { type: string, povId?: string, data?: BenchActivity }
      if (message.type === 'activity') tally.activity(this, message.data!)
      else if (message.type === 'subscribed') this.#subscribed(message.povId!)
      else if (message.type === 'error') tally.errors++
      return
    }
    // Engine.IO: 0 open, 2 ping (answered 3), 4 message; Socket.IO inside it: 0 connect, 2 event, 4 connect error.
    if (text.startsWith('42')) {
      const [event, payload] = JSON.parse(text.slice(2)) as [string, unknown]
      if (event === 'activity') tally.activity(this, (payload as { data: BenchActivity }).data)
      else if (event === 'subscribed') this.#subscribed(payload as string)
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

async function connect ({ wire, endpoints, count, concurrency, secret }: ConnectRequest): Promise<ConnectResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency })
  // The access cookies exist before the measurement: the app's login set them.
  const sign = secret ? createSigner({ key: secret }) : undefined
  const cookies = sign ? Array.from({ length: count }, (_, i) => sign({ userId: `u${i}`, email: `u${i}@example.com`, role: 'member' }) as string) : []
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

async function subscribe ({ povCount }: SubscribeRequest): Promise<{ ms: number }> {
  const startedAt = now()
  await Promise.all(clients.map((client, i) => client.subscribe(`p${i % povCount}`)))
  return { ms: now() - startedAt }
}

function percentile (sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!
}

/** Waits until `expected` activities arrived (or `timeout` ms passed), then `settle` ms more to catch any extra. */
async function wait ({ expected, timeout, settle }: { expected: number, timeout: number, settle: number }): Promise<WaitResult> {
  const deadline = Date.now() + timeout
  while (tally.received < expected && Date.now() < deadline) await sleep(5)
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
    }
  }
}

serveRequests({
  connect,
  subscribe,
  arm: ({ expected }: { expected: number }) => {
    tally.arm(expected)
    for (const client of clients) client.received = 0
  },
  wait,
  disconnect: () => {
    for (const client of clients) client.ws.terminate()
    clients = []
  }
}, {})
