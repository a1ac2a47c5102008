/**
 * One soak client: a real `ws` client that logs in through the token route, watches a few PoVs, and, each time it
 * connects again, resumes every one of them with `since` (its last cursor), as the React hook does. For each PoV it
 * checks the sequence numbers the server stamps: each activity once, in order, none missing.
 */
import WebSocket from 'ws'
import { now } from '../activity.js'

/** What a client has seen of one PoV. */
export interface Feed {
  /** The highest sequence number received. */
  last: number
  /** The cursor of that activity: where a resume starts. */
  cursor: string | undefined
  /** Activity messages received, duplicates included. */
  received: number
  /** Sequence numbers jumped over (a later one came first). */
  skipped: number
  /** Received again, with no gap before it (so it had certainly been received). */
  duplicated: number
  /** Arrived after a later one had (it filled a skipped number, or was a copy of one received before a skip). */
  outOfOrder: number
  /** Resumes answered `recovered: false` (the history could not fill the gap). */
  unrecovered: number
  /** `subscribed` came on the current connection: what arrives now is live, not replayed. */
  live: boolean
}

export interface SoakEndpoint {
  wsUrl: string
  /** A WebSocket token for `userId`, fetched as the hook does. */
  token (userId: string): Promise<string>
}

export interface SoakClientEvents {
  /** A live delivery's latency, from publish to parse, in ms. */
  latency (ms: number): void
  /** The connection ended without this client asking (the orchestrator reconnects it). */
  lost (client: SoakClient): void
}

interface ActivityMessage { type: 'activity', cursor: string, data: { povId: string, metadata: { seq: number, sentAt: number } } }
type ServerMessage = ActivityMessage | { type: string, povId?: string, recovered?: boolean, code?: string }

export class SoakClient {
  readonly feeds = new Map<string, Feed>()
  connects = 0
  /** Close codes of the connections that ended without this client asking. */
  readonly unexpectedCloses: number[] = []
  /** Codes of the `error` messages received. */
  readonly errors: string[] = []
  readonly #endpoint: SoakEndpoint
  readonly #events: SoakClientEvents
  #ws: WebSocket | undefined
  #leaving = false

  constructor (readonly userId: string, povIds: readonly string[], endpoint: SoakEndpoint, events: SoakClientEvents) {
    for (const povId of povIds) {
      this.feeds.set(povId, { last: 0, cursor: undefined, received: 0, skipped: 0, duplicated: 0, outOfOrder: 0, unrecovered: 0, live: false })
    }
    this.#endpoint = endpoint
    this.#events = events
  }

  get connected (): boolean {
    return this.#ws?.readyState === WebSocket.OPEN
  }

  /** Connected, and every PoV subscribed on this connection. */
  get live (): boolean {
    return this.connected && [...this.feeds.values()].every((feed) => feed.live)
  }

  /** Connects and (re)subscribes every PoV, resuming from its cursor when it has one. */
  async connect (): Promise<void> {
    const token = await this.#endpoint.token(this.userId)
    const ws = new WebSocket(this.#endpoint.wsUrl, ['pov-realtime.v1', `bearer.${token}`])
    this.#ws = ws
    this.#leaving = false
    for (const feed of this.feeds.values()) feed.live = false
    ws.on('message', (data: Buffer) => this.#onMessage(JSON.parse(data.toString()) as ServerMessage))
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve())
      ws.once('error', reject)
      ws.once('unexpected-response', (_request, response) => reject(new Error(`upgrade refused with ${response.statusCode}`)))
    })
    ws.on('error', () => {}) // the close that follows says what happened
    ws.on('close', (code: number) => {
      if (this.#leaving || ws !== this.#ws) return
      this.unexpectedCloses.push(code)
      this.#events.lost(this)
    })
    this.connects++
    for (const [povId, { cursor }] of this.feeds) {
      ws.send(JSON.stringify({ type: 'subscribe', povId, ...(cursor ? { since: cursor } : {}) }))
    }
  }

  /** Leaves on purpose: `cut` drops the TCP connection, `close` says goodbye (1000) first. */
  leave (how: 'cut' | 'close'): void {
    this.#leaving = true
    if (how === 'cut') this.#ws?.terminate()
    else this.#ws?.close(1000)
  }

  #onMessage (message: ServerMessage): void {
    if (message.type === 'activity') {
      const { cursor, data } = message as ActivityMessage
      const feed = this.feeds.get(data.povId)
      if (!feed) {
        this.errors.push(`STRAY_ACTIVITY:${data.povId}`)
        return
      }
      feed.received++
      const { seq, sentAt } = data.metadata
      if (seq > feed.last) {
        feed.skipped += seq - feed.last - 1
        feed.last = seq
        feed.cursor = cursor
      } else if (feed.skipped === 0) {
        feed.duplicated++ // nothing was skipped, so this one had arrived already
      } else {
        feed.outOfOrder++
      }
      if (feed.live) this.#events.latency(now() - sentAt)
    } else if (message.type === 'subscribed') {
      const feed = this.feeds.get(message.povId!)
      if (!feed) return
      feed.live = true
      if (message.recovered === false) feed.unrecovered++
    } else if (message.type === 'error') {
      this.errors.push(message.code ?? 'UNKNOWN')
    }
  }
}
