/**
 * This page's activity status as the server has it (`active` or `idle`, see `idle-detector.ts`): reported while a
 * presence hook is mounted, changes only, and only once the server has shown it has presence on (its first `presence`
 * message of the session), so that an app whose server has presence off never draws a `NOT_ENABLED`.
 */
import type { MemberStatus } from '../../../types/messages.js'
import { IdleDetector, type PageDocument } from './idle-detector.js'
import { releaseOnce } from '../support/release-once.js'
import type { Timers } from '../connection/timers.js'

export interface StatusReporterOptions {
  /** ms without input before the user counts as idle, or `false` to report nothing. */
  idleTimeout: number | false
  timers: Timers
  /** The page, looked up when reporting starts; `null` for none (nothing is reported). */
  document: () => PageDocument | null
  /** Puts a `status` on the wire; false when it could not (not connected). */
  send: (status: MemberStatus) => boolean
}

export class StatusReporter {
  readonly #options: StatusReporterOptions
  #reporters = 0
  #monitor: IdleDetector | undefined
  /** The server has sent a presence message in this session: it has presence on. */
  #presenceOn = false
  /** The status the server has for this connection (`active` at connect). */
  #sentStatus: MemberStatus = 'active'

  constructor (options: StatusReporterOptions) {
    this.#options = options
  }

  /** Reports the status until the returned function is called (however many call it, one monitor watches the page). */
  retain (): () => void {
    if (++this.#reporters === 1) this.#startMonitor()
    return releaseOnce(() => {
      if (--this.#reporters === 0) this.#stopMonitor()
    })
  }

  /** A presence message arrived: the server has presence on, and hears the status from now on. */
  presenceSeen (): void {
    if (this.#presenceOn) return
    this.#presenceOn = true
    this.report()
  }

  /** Tells the server the current status if it differs from what it has, and presence is known to be on. */
  report (): void {
    const status = this.#monitor?.status ?? 'active'
    if (status === this.#sentStatus || !this.#presenceOn) return
    if (this.#options.send(status)) this.#sentStatus = status
  }

  /** The connection dropped: a new one starts `active` at the server. */
  connectionLost (): void {
    this.#sentStatus = 'active'
  }

  /** The session ended: whether the next server has presence on is unknown. */
  forget (): void {
    this.#presenceOn = false
  }

  #startMonitor (): void {
    const { idleTimeout, timers } = this.#options
    if (idleTimeout === false) return
    const document = this.#options.document()
    if (!document) return
    this.#monitor = new IdleDetector({ document, timers, idleTimeout, changed: () => this.report() })
    this.report()
  }

  #stopMonitor (): void {
    this.#monitor?.stop()
    this.#monitor = undefined
    // Nobody shows presence any more: the server goes back to its default.
    this.report()
  }
}
