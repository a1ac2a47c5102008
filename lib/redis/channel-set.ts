/**
 * The channels one part of the Redis broker (the ordered channels of `ordered-channel.ts`, read marks, control) listens
 * to on the broker's subscriber connection: subscribed while wanted, subscribed again when the connection comes back
 * (it does not resubscribe by itself), their messages handed to the part.
 */
import type { RedisLink } from './link.js'

/** Channels per SUBSCRIBE when the set is restored after a reconnect. */
const SUBSCRIBE_BATCH = 1000

/** Delay before channels that could not be restored are tried again. */
const RETRY_MS = 1000

export class ChannelSet {
  readonly #link: RedisLink
  readonly #receive: (channel: string, message: Buffer) => void
  readonly #restored: (channels: string[]) => void
  /** Wanted channel → generation of the subscriber connection it is subscribed on (-1: not yet). */
  readonly #channels = new Map<string, number>()
  /** Bumped each time the subscriber connection is (re)established. */
  #generation = 0
  #retryTimer: NodeJS.Timeout | undefined
  #started = false
  readonly #onReady = () => {
    this.#generation++
    this.#restore().catch(() => {})
  }

  /**
   * On `messageBuffer` (`smessageBuffer` on a Cluster), not `message`: with no `message` listener on the connection,
   * ioredis decodes no message to a string; each receiver decodes only what it needs (an activity's JSON never is: see `parseChannelEntry`).
   */
  readonly #onMessage = (channelBytes: Buffer, message: Buffer) => {
    const channel = channelBytes.toString()
    if (this.#channels.has(channel)) this.#receive(channel, message)
  }

  /**
   * @param receive a message on one of the wanted channels
   * @param restored the channels subscribed again after the connection came back (what they carried meanwhile is lost)
   */
  constructor (
    link: RedisLink,
    receive: (channel: string, message: Buffer) => void,
    restored: (channels: string[]) => void
  ) {
    this.#link = link
    this.#receive = receive
    this.#restored = restored
  }

  start (): void {
    this.#started = true
    for (const event of this.#readyEvents()) this.#link.subscriber.on(event, this.#onReady)
    this.#link.subscriber.on(this.#messageEvent(), this.#onMessage)
  }

  /** Whether `channel` is subscribed on the current connection. */
  isSubscribed (channel: string): boolean {
    return this.#channels.get(channel) === this.#generation
  }

  /** Wants `channel` and subscribes it unless it already is; rejects when Redis did not confirm (it is then retried). */
  async add (channel: string): Promise<void> {
    if (!this.#channels.has(channel)) this.#channels.set(channel, -1)
    if (this.isSubscribed(channel)) return
    const generation = this.#generation
    try {
      await this.#link.subscribe([channel])
    } catch (err) {
      this.#retryLater()
      throw err
    }
    if (this.#channels.has(channel) && generation === this.#generation) this.#channels.set(channel, generation)
  }

  /** No longer wants `channel`; resolves once the unsubscribe was sent and answered (or failed: nothing to undo). */
  async delete (channel: string): Promise<void> {
    if (!this.#channels.delete(channel)) return
    // Sent even if a SUBSCRIBE is still on its way: the connection handles them in order.
    if (this.#link.subscriber.status === 'ready') await this.#link.unsubscribe(channel)
  }

  stop (): void {
    clearTimeout(this.#retryTimer)
    this.#channels.clear()
    if (!this.#started) return
    this.#started = false
    for (const event of this.#readyEvents()) this.#link.subscriber.off(event, this.#onReady)
    this.#link.subscriber.off(this.#messageEvent(), this.#onMessage)
  }

  /**
   * When the subscriptions may have been lost and must be made (again). On a Cluster also each time ioredis has
   * rebuilt its sharded subscriber connections (a failover, a topology change): what they carried meanwhile is lost,
   * and ioredis's own resubscription does not say so, so the set subscribes again and says which were restored.
   */
  #readyEvents (): string[] {
    return this.#link.sharded ? ['ready', 'subscribersReady'] : ['ready']
  }

  #messageEvent (): string {
    return this.#link.sharded ? 'smessageBuffer' : 'messageBuffer'
  }

  /** Subscribes every wanted channel that is not subscribed on the current connection, then says which were. */
  async #restore (): Promise<void> {
    const generation = this.#generation
    const missing = [...this.#channels].filter(([, on]) => on !== generation).map(([channel]) => channel)
    const done: string[] = []
    try {
      for (let i = 0; i < missing.length; i += SUBSCRIBE_BATCH) {
        const batch = missing.slice(i, i + SUBSCRIBE_BATCH)
        await this.#link.subscribe(batch)
        if (generation !== this.#generation) return // lost again; the next 'ready' starts over
        for (const channel of batch) {
          if (this.#channels.has(channel)) {
            this.#channels.set(channel, generation)
            done.push(channel)
          }
        }
      }
    } catch {
      this.#retryLater()
    }
    if (done.length > 0) this.#restored(done)
  }

  #retryLater (): void {
    if (this.#retryTimer !== undefined || !this.#started) return
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined
      if (this.#link.subscriber.status === 'ready') this.#restore().catch(() => {})
    }, RETRY_MS).unref()
  }
}
