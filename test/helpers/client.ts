/**
 * A WebSocket client for tests: records every parsed message and lets a test await the next one it wants.
 */
import WebSocket from 'ws'

export interface Closed { code: number, reason: string }
export type Message = Record<string, unknown> & { type: string }

export class TestClient {
  readonly ws: WebSocket
  /** Names the socket in the messages of bounded waits (helpers/socket-waits.ts): whose it is and where it goes. */
  readonly name: string
  /** Every message received, in order. */
  readonly messages: Message[] = []
  readonly opened: Promise<void>
  readonly closed: Promise<Closed>
  /** The HTTP status when the upgrade was refused. */
  refusedWith: number | undefined
  #waiters: Array<{ match: (m: Message) => boolean, resolve: (m: Message) => void }> = []
  #seen = 0

  /** `options` go to the `ws` client as they are (for example `{ autoPong: false }` for a peer that ignores pings). */
  constructor (url: string, protocols?: string[], headers?: Record<string, string>, options: WebSocket.ClientOptions = {}) {
    this.ws = new WebSocket(url, protocols, { ...options, headers })
    this.name = describeSocket(url, protocols)
    this.opened = new Promise((resolve, reject) => {
      this.ws.once('open', () => resolve())
      this.ws.once('unexpected-response', (_request, response) => {
        this.refusedWith = response.statusCode
        reject(Object.assign(new Error(`upgrade refused with ${response.statusCode}`), { statusCode: response.statusCode }))
      })
      this.ws.once('error', reject)
    })
    this.opened.catch(() => {})
    this.closed = new Promise((resolve) => {
      this.ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() }))
    })
    this.ws.on('error', () => {})
    this.ws.on('message', (data) => {
      const message = JSON.parse(data.toString()) as Message
      this.messages.push(message)
      this.#waiters = this.#waiters.filter((waiter) => {
        if (!waiter.match(message)) return true
        waiter.resolve(message)
        return false
      })
    })
  }

  send (message: unknown): void {
    this.ws.send(typeof message === 'string' ? message : JSON.stringify(message))
  }

  /**
   * The next message (after those already taken with `next`) that matches; rejects after `timeout` ms.
   * `match` is a message type or a predicate.
   */
  next (match: string | ((m: Message) => boolean), timeout = 2000): Promise<Message> {
    const test = typeof match === 'string' ? (m: Message) => m.type === match : match
    for (let i = this.#seen; i < this.messages.length; i++) {
      if (test(this.messages[i]!)) {
        this.#seen = i + 1
        return Promise.resolve(this.messages[i]!)
      }
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no '${typeof match === 'string' ? match : 'matching'}' message within ${timeout} ms; got ${JSON.stringify(this.messages)}`)), timeout)
      this.#waiters.push({
        match: test,
        resolve: (m) => {
          clearTimeout(timer)
          this.#seen = this.messages.length
          resolve(m)
        }
      })
    })
  }

  /** Sends `message` and awaits the answer of type `answerType`. */
  async request (message: unknown, answerType: string | ((m: Message) => boolean), timeout?: number): Promise<Message> {
    const answer = this.next(answerType, timeout)
    this.send(message)
    return answer
  }

  /** Subscribes and awaits `subscribed` (or an error for that PoV). */
  subscribe (povId: string, since?: string): Promise<Message> {
    return this.request({ type: 'subscribe', povId, ...(since ? { since } : {}) },
      (m) => (m.type === 'subscribed' || m.type === 'error') && m.povId === povId)
  }

  /** Activities received so far (their `data`), optionally of one PoV. */
  activities (povId?: string): Array<Record<string, unknown>> {
    return this.messages
      .filter((m) => m.type === 'activity' && (!povId || (m.data as { povId: string }).povId === povId))
      .map((m) => m.data as Record<string, unknown>)
  }

  close (code?: number): void {
    this.ws.close(code)
  }

  terminate (): void {
    this.ws.terminate()
  }
}

/** "u1's socket to 127.0.0.1:PORT/ws": the user from its token (the subprotocol's or the query's), if it has one. */
function describeSocket (url: string, protocols?: string[]): string {
  const parsed = new URL(url)
  const token = protocols?.find((protocol) => protocol.startsWith('bearer.'))?.slice('bearer.'.length) ?? parsed.searchParams.get('token')
  let userId: unknown
  try {
    userId = token ? (JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString()) as { userId?: unknown }).userId : undefined
  } catch {}
  return `${typeof userId === 'string' ? `${userId}'s socket` : 'a socket'} to ${parsed.host}${parsed.pathname}`
}
