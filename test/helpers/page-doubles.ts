/**
 * Stand-ins for the page around the client: a document whose visibility a test sets and whose input events it fires,
 * and a Web Storage with a quota and a write counter. (jsdom has both, but neither a settable visibility nor a quota.)
 */
import type { PageDocument, StorageLike } from '../../hooks/index.js'

export class FakePage extends EventTarget implements PageDocument {
  visibilityState: 'visible' | 'hidden' = 'visible'
  #listeners = 0

  override addEventListener (type: string, listener: () => void, options?: AddEventListenerOptions | boolean): void {
    this.#listeners++
    super.addEventListener(type, listener, options)
  }

  override removeEventListener (type: string, listener: () => void, options?: EventListenerOptions | boolean): void {
    this.#listeners--
    super.removeEventListener(type, listener, options)
  }

  /** Listeners added and not removed. */
  get listenerCount (): number {
    return this.#listeners
  }

  input (type = 'keydown'): void {
    this.dispatchEvent(new Event(type))
  }

  hide (): void {
    this.visibilityState = 'hidden'
    this.dispatchEvent(new Event('visibilitychange'))
  }

  show (): void {
    this.visibilityState = 'visible'
    this.dispatchEvent(new Event('visibilitychange'))
  }
}

/** Web Storage in memory; beyond `quota` characters in all, `setItem` throws `QuotaExceededError` as browsers do. */
export class MemoryStorage implements StorageLike {
  readonly #items = new Map<string, string>()
  quota = Number.POSITIVE_INFINITY
  /** Successful `setItem` calls. */
  writes = 0

  get length (): number {
    return this.#items.size
  }

  key (index: number): string | null {
    return [...this.#items.keys()][index] ?? null
  }

  getItem (key: string): string | null {
    return this.#items.get(key) ?? null
  }

  setItem (key: string, value: string): void {
    let used = key.length + value.length
    for (const [k, v] of this.#items) if (k !== key) used += k.length + v.length
    if (used > this.quota) throw new DOMException('The quota has been exceeded.', 'QuotaExceededError')
    this.#items.set(key, value)
    this.writes++
  }

  removeItem (key: string): void {
    this.#items.delete(key)
  }

  keys (): string[] {
    return [...this.#items.keys()]
  }
}
