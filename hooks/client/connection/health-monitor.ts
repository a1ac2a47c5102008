/**
 * Notices a half-open connection (the network died without a close): an application-level `ping` every
 * `pingInterval`, and a connection that then stays silent for `pongTimeout` counts as dead. Any frame proves life,
 * so a busy feed is never taken for dead.
 */
import type { Timers } from './timers.js'

export interface HealthMonitorOptions {
  pingInterval: number
  pongTimeout: number
  timers: Timers
  sendPing: () => void
  /** The peer stayed silent past `pongTimeout`. */
  onDead: () => void
}

export class HealthMonitor {
  readonly #options: HealthMonitorOptions
  #pingTimer: unknown
  #pongTimer: unknown
  #stopped = false

  constructor (options: HealthMonitorOptions) {
    this.#options = options
    this.#schedulePing()
  }

  /** A frame arrived: the connection is alive. */
  received (): void {
    if (this.#pongTimer === undefined) return
    this.#options.timers.clearTimeout(this.#pongTimer)
    this.#pongTimer = undefined
  }

  /** Pings now (the network just came back: the connection may have died meanwhile). */
  checkNow (): void {
    if (this.#stopped || this.#pongTimer !== undefined) return
    this.#options.timers.clearTimeout(this.#pingTimer)
    this.#ping()
  }

  stop (): void {
    this.#stopped = true
    this.#options.timers.clearTimeout(this.#pingTimer)
    if (this.#pongTimer !== undefined) this.#options.timers.clearTimeout(this.#pongTimer)
  }

  #schedulePing (): void {
    this.#pingTimer = this.#options.timers.setTimeout(() => this.#ping(), this.#options.pingInterval)
  }

  #ping (): void {
    if (this.#stopped) return
    if (this.#pongTimer === undefined) {
      this.#pongTimer = this.#options.timers.setTimeout(() => {
        this.#pongTimer = undefined
        if (!this.#stopped) this.#options.onDead()
      }, this.#options.pongTimeout)
      this.#options.sendPing()
    }
    this.#schedulePing()
  }
}
