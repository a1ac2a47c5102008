/**
 * The state the client holds per PoV (`pov-state.ts`), by PoV. A PoV's state exists while the PoV is subscribed
 * (watched, or leaving: see `watch-registry.ts`) or a component reads it, and goes once neither is true, so that a
 * component may read a PoV before it watches it, and a remount inside one commit keeps what was shown.
 */
import { PovState, type PovStateOptions } from './pov-state.js'
import type { WatchRegistry } from './watch-registry.js'

export class PovRegistry {
  readonly #options: PovStateOptions
  readonly #watches: WatchRegistry
  readonly #states = new Map<string, PovState>()

  /**
   * @param options what each PoV's state is made with
   * @param watches the PoVs subscribed: their state stays while nobody reads it
   */
  constructor (options: PovStateOptions, watches: WatchRegistry) {
    this.#options = options
    this.#watches = watches
  }

  /** `povId`'s state, if the client holds one. */
  get (povId: string): PovState | undefined {
    return this.#states.get(povId)
  }

  /**
   * `povId`'s state if the PoV is subscribed and `povId` is a string: what a server message about a PoV may change
   * (the server's messages are trusted but checked for shape).
   */
  subscribed (povId: unknown): PovState | undefined {
    return typeof povId === 'string' && this.#watches.has(povId) ? this.#states.get(povId) : undefined
  }

  /** `povId`'s state, made if there is none yet. */
  obtain (povId: string): PovState {
    let pov = this.#states.get(povId)
    if (!pov) {
      pov = new PovState(this.#options)
      this.#states.set(povId, pov)
    }
    return pov
  }

  /** Subscribes to a part of `povId`'s state; the state goes once nobody reads it and the PoV is not subscribed. */
  listen (povId: string, subscribe: (pov: PovState) => () => void): () => void {
    const pov = this.obtain(povId)
    const unsubscribe = subscribe(pov)
    return () => {
      unsubscribe()
      if (!this.#watches.has(povId) && this.#states.get(povId) === pov) this.releaseUnread(povId)
    }
  }

  /** Drops `povId`'s state if no component reads it (the PoV is no longer subscribed). */
  releaseUnread (povId: string): void {
    const pov = this.#states.get(povId)
    if (pov?.listenerCount !== 0) return
    pov.dispose()
    this.#states.delete(povId)
  }

  /** The PoVs the client holds a state for. */
  ids (): IterableIterator<string> {
    return this.#states.keys()
  }

  /** The connection dropped: no PoV is subscribed any more. */
  connectionLost (): void {
    for (const pov of this.#states.values()) pov.connectionLost()
  }

  /** Empties every PoV's state (a mounted component still reads it: emptied rather than orphaned). */
  clear (): void {
    for (const pov of this.#states.values()) pov.clear()
  }

  /** Empties every PoV's state and drops those nobody reads (the session ended). */
  forget (): void {
    this.clear()
    for (const povId of [...this.#states.keys()]) this.releaseUnread(povId)
  }
}
