/**
 * What the client tests share: a `fetch` that carries the access cookie (jsdom's cookie jar does not reach Node's
 * fetch), and a WebSocket class (the `ws` package's, as in any Node program) that records every socket it makes.
 */
import type tap from 'tap'
import WebSocket from 'ws'
import type { RealtimeClientOptions, WebSocketConstructor } from '../../hooks/index.js'
import { accessToken, waitFor, type AccessClaims } from './server.js'

export interface FetchLog {
  /** Every call: the URL and the init it was given. */
  readonly calls: Array<{ url: string, init: RequestInit | undefined }>
  /** The cookie sent from now on; `undefined` sends none (signed out). */
  cookie: string | undefined
}

/** A `fetch` that adds `cookie: accessToken=<JWT for claims>`, as the browser would, and logs each call. */
export function cookieFetch (claims: AccessClaims = {}): { fetch: typeof globalThis.fetch, log: FetchLog } {
  const log: FetchLog = { calls: [], cookie: `accessToken=${accessToken(claims)}` }
  const fetch: typeof globalThis.fetch = (input, init) => {
    const url = String(input)
    log.calls.push({ url, init })
    const headers = new Headers(init?.headers)
    if (log.cookie !== undefined) headers.set('cookie', log.cookie)
    return globalThis.fetch(url, { ...init, headers })
  }
  return { fetch, log }
}

export interface SocketLog {
  /** Every socket made, in order. */
  readonly sockets: WebSocket[]
  /** The protocols each was offered. */
  readonly protocols: Array<string | string[] | undefined>
  /** Every frame the client sent, parsed, over all sockets. */
  readonly sent: Array<Record<string, unknown>>
  /** Every text frame the server sent to the client, parsed, over all sockets. */
  readonly received: Array<Record<string, unknown>>
  /** Sockets open now. */
  open: number
  /** The most that were ever open at once. */
  maxOpen: number
}

/** A `ws` WebSocket subclass that logs what the client does with it. */
export function recordingWebSocket (): { WebSocket: WebSocketConstructor, log: SocketLog } {
  const log: SocketLog = { sockets: [], protocols: [], sent: [], received: [], open: 0, maxOpen: 0 }
  class RecordingWebSocket extends WebSocket {
    constructor (url: string, protocols?: string | string[]) {
      super(url, protocols)
      log.sockets.push(this)
      log.protocols.push(protocols)
      let opened = false
      this.on('open', () => {
        opened = true
        log.maxOpen = Math.max(log.maxOpen, ++log.open)
      })
      this.on('close', () => { if (opened) log.open-- })
      this.on('message', (data, isBinary) => { if (!isBinary) log.received.push(JSON.parse(String(data))) })
      const send = this.send.bind(this)
      this.send = ((data: string) => {
        log.sent.push(JSON.parse(data))
        send(data)
      }) as typeof this.send
    }
  }
  return { WebSocket: RecordingWebSocket, log }
}

/** The frames of `type` the client sent (optionally for one PoV). */
export function sentOfType (log: SocketLog, type: string, povId?: string): Array<Record<string, unknown>> {
  return log.sent.filter((frame) => frame.type === type && (povId === undefined || frame.povId === povId))
}

/** The frames of `type` the server sent to the client (optionally for one PoV; an activity's PoV is in its `data`). */
export function receivedOfType (log: SocketLog, type: string, povId?: string): Array<Record<string, unknown>> {
  return log.received.filter((frame) => frame.type === type &&
    (povId === undefined || (frame.povId ?? (frame.data as { povId?: unknown } | undefined)?.povId) === povId))
}

/** Client options for a server (or a proxy in front of it) at `httpUrl`, with a recording socket and a cookie fetch. */
export function clientSetup (httpUrl: string, options: RealtimeClientOptions = {}, claims?: AccessClaims) {
  const { fetch, log: fetches } = cookieFetch(claims)
  const { WebSocket: RecordingWebSocket, log: sockets } = recordingWebSocket()
  const clientOptions: RealtimeClientOptions = {
    socketUrl: httpUrl.replace(/^http/, 'ws') + '/ws',
    tokenUrl: httpUrl + '/api/auth/ws-token',
    fetch,
    WebSocket: RecordingWebSocket,
    network: null,
    ...options
  }
  return { clientOptions, fetches, sockets }
}

// The `ws` package's class is accepted as the WebSocket option as it is, without a cast.
export const wsFits: RealtimeClientOptions = { WebSocket }

/** Waits until `actual()` deep-equals `expected` (tap's assertions record rather than throw, so poll first), then asserts it. */
export async function until (
  t: Pick<typeof tap, 'same'>, actual: () => unknown, expected: unknown, message = 'as expected', timeout = 10_000
): Promise<void> {
  const same = () => JSON.stringify(actual()) === JSON.stringify(expected)
  await waitFor(same, timeout).catch(() => {})
  t.same(actual(), expected, message)
}
