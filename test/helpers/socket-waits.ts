/**
 * Bounded waits for socket events. A test that awaits a close, an open or a message which a regression never
 * delivers fails within seconds, saying which socket and what it waited for, instead of hanging its file until tap's
 * 120 s timeout. Every wait for a socket event in the tests goes through here.
 */
import { once, type EventEmitter } from 'node:events'

/** A socket helper that keeps its close (and open) as promises from the start: TestClient, RawWebSocket. */
export interface WatchedSocket<Close> {
  /** Says whose socket it is and where it goes, in the timeout's message. */
  readonly name: string
  readonly closed: Promise<Close>
}

/** Events on loopback come within milliseconds: the rest is room for a loaded CI machine. */
export const SOCKET_WAIT_MS = 5000
/** A test's child process (a Redis instance fixture) compiling its TypeScript and starting to serve, on a loaded machine. */
export const PROCESS_START_MS = 30_000

export interface WaitOptions {
  /** How long the event may take, in ms (default SOCKET_WAIT_MS). */
  within?: number
}

/**
 * `promise`, or after `ms` a rejection "timed out after {ms} ms waiting for {what}". The error is made here, when
 * the wait starts, so that its stack shows the test line that waited.
 */
export function within<T> (promise: Promise<T>, ms: number, what: string): Promise<T> {
  const timedOut = new Error(`timed out after ${ms} ms waiting for ${what}`)
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<never>((_resolve, reject) => { timer = setTimeout(() => reject(timedOut), ms) })
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer))
}

/** The close of a socket, already past or still to come: a TestClient's code and reason, a RawWebSocket's end. */
export function closed<Close> (socket: WatchedSocket<Close>, { within: ms = SOCKET_WAIT_MS }: WaitOptions = {}): Promise<Close> {
  return within(socket.closed, ms, `${socket.name} to close`)
}

/** A TestClient's socket open; rejects at once, as `client.opened` does, when the upgrade is refused. */
export function opened (socket: { readonly name: string, readonly opened: Promise<void> }, { within: ms = SOCKET_WAIT_MS }: WaitOptions = {}): Promise<void> {
  return within(socket.opened, ms, `${socket.name} to open`)
}

/**
 * The arguments of the next `event` of `emitter` (a `ws` WebSocket, a net socket, a readline interface), which
 * `name` describes in the timeout's message. Rejects on the emitter's 'error', as `events.once` does.
 */
export function nextEvent<T extends unknown[] = unknown[]> (emitter: EventEmitter, event: string, name: string,
  { within: ms = SOCKET_WAIT_MS }: WaitOptions = {}): Promise<T> {
  const stop = new AbortController()
  const next = once(emitter, event, { signal: stop.signal }) as Promise<T>
  next.catch(() => {}) // after a timeout, the abort below rejects it: that is not news
  return within(next, ms, `${name} to emit '${event}'`).finally(() => stop.abort())
}
