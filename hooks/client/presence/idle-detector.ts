/**
 * Whether the person in front of the page is there: `idle` after `idleTimeout` ms without input (pointer, keys, touch,
 * wheel, scroll) or as soon as the page is hidden, `active` again on the next input or when the page shows again.
 *
 * Input events only note the time (they come by the hundred while the pointer moves); one timer looks at it when the
 * timeout could have passed, so an active user costs one timer per `idleTimeout`, not one per event.
 */
import type { MemberStatus } from '../../../types/messages.js'
import type { Timers } from '../connection/timers.js'

/** The part of `document` the client uses: its events and whether it is hidden. */
export interface PageDocument {
  readonly visibilityState?: string
  addEventListener (type: string, listener: () => void, options?: { capture?: boolean, passive?: boolean }): void
  removeEventListener (type: string, listener: () => void, options?: { capture?: boolean }): void
}

/** The events that count as the user being there. Captured on the document, so scrolls inside elements count too. */
export const INPUT_EVENTS: readonly string[] = Object.freeze(['pointerdown', 'pointermove', 'keydown', 'touchstart', 'wheel', 'scroll'])

export interface IdleDetectorOptions {
  document: PageDocument
  timers: Timers
  /** ms without input before the user counts as idle. */
  idleTimeout: number
  /** Called on every change of status. */
  changed: (status: MemberStatus) => void
}

const LISTENER_OPTIONS = { capture: true, passive: true }

export class IdleDetector {
  readonly #options: IdleDetectorOptions
  #status: MemberStatus = 'active'
  #lastInputAt: number
  #timer: unknown

  /** Starts watching at once; the user counts as active until the timeout passes (or the page is hidden). */
  constructor (options: IdleDetectorOptions) {
    this.#options = options
    this.#lastInputAt = options.timers.now()
    for (const type of INPUT_EVENTS) options.document.addEventListener(type, this.#onInput, LISTENER_OPTIONS)
    options.document.addEventListener('visibilitychange', this.#onVisibility)
    if (this.#hidden()) this.#set('idle')
    else this.#watch(options.idleTimeout)
  }

  get status (): MemberStatus {
    return this.#status
  }

  /** Stops listening and the timer. */
  stop (): void {
    const { document, timers } = this.#options
    for (const type of INPUT_EVENTS) document.removeEventListener(type, this.#onInput, LISTENER_OPTIONS)
    document.removeEventListener('visibilitychange', this.#onVisibility)
    if (this.#timer !== undefined) timers.clearTimeout(this.#timer)
    this.#timer = undefined
  }

  readonly #onInput = (): void => {
    this.#lastInputAt = this.#options.timers.now()
    if (this.#hidden()) return
    if (this.#status === 'idle') this.#set('active')
    if (this.#timer === undefined) this.#watch(this.#options.idleTimeout)
  }

  readonly #onVisibility = (): void => {
    if (this.#hidden()) {
      if (this.#timer !== undefined) this.#options.timers.clearTimeout(this.#timer)
      this.#timer = undefined
      this.#set('idle')
    } else {
      this.#onInput()
    }
  }

  #watch (delay: number): void {
    const { timers, idleTimeout } = this.#options
    this.#timer = timers.setTimeout(() => {
      this.#timer = undefined
      const quiet = timers.now() - this.#lastInputAt
      if (quiet >= idleTimeout) this.#set('idle')
      else this.#watch(idleTimeout - quiet)
    }, delay)
  }

  #hidden (): boolean {
    return this.#options.document.visibilityState === 'hidden'
  }

  #set (status: MemberStatus): void {
    if (status === this.#status) return
    this.#status = status
    this.#options.changed(status)
  }
}
