/**
 * The one engine behind every ordered channel of the Redis broker (a PoV's activities, a PoV's presence changes):
 * subscribe the channel first, then read from Redis where its subject stands (its start, the gap it missed, a
 * snapshot), hold the live messages that arrive meanwhile, then apply them in order; read again when a message shows a
 * gap, and retry while Redis cannot answer. The sync state (held messages, whether a sync runs or is asked for) is
 * private to this file; a subject only says where a message falls (`place`) and applies it (`apply`), without I/O.
 *
 * Why subscribe before reading: a message published after the read is then surely on the channel, and one published
 * before it is either in what was read or dropped by `place` as already applied. Nothing is missed, nothing is twice.
 */
import { ChannelSet } from './channel-set.js'
import type { RedisLink } from './link.js'

/** Messages held per channel while a sync runs; past that, they are dropped and the sync reads their outcome instead. */
const MAX_HELD = 10_000

/** Delay before a channel whose sync with Redis failed is tried again (also retried as soon as a connection is back). */
const SYNC_RETRY_MS = 1000

/** Where a message from the channel falls, given what the subject has applied. */
export type Placement =
  /** At or before what was applied: a duplicate, dropped. */
  | 'applied'
  /** Directly after it: applied now. */
  | 'next'
  /** After a message the subject never saw: Redis is read again (the message stays held). */
  | 'gap'

/** What follows one ordered channel: the engine holds, orders and retries; the subject decides and applies. */
export interface OrderedSubject<M> {
  /** Whether the first sync is done; until then, messages are only held. */
  readonly synced: boolean
  place (message: M): Placement
  apply (message: M): void
}

export interface OrderedChannelsOptions<M, S extends OrderedSubject<M>> {
  /** A message as published (its bytes), or undefined for one that is not of this kind (ignored). */
  parse (message: Buffer): M | undefined
  /**
   * Reads from Redis where `subject` stands and brings it there (its start, the gap it missed, a snapshot). Runs
   * once its channel is subscribed on the current connection; `isOpen()` turns false when the channel was closed
   * meanwhile (the result is then to be dropped). Rejects when Redis did not answer: the sync is retried.
   */
  sync (subject: S, isOpen: () => boolean): Promise<void>
  /** What the channels carry, for the log line of a failed sync (`"a PoV's presence"`). */
  readonly what: string
}

/** One open channel and its private sync state. */
interface Slot<M, S> {
  readonly channel: string
  readonly subject: S
  held: M[]
  /** Set while a sync runs; messages arriving meanwhile are held. */
  syncing: boolean
  /** Another sync was asked for while one was running. */
  syncRequested: boolean
}

export class OrderedChannels<M, S extends OrderedSubject<M>> {
  readonly #link: RedisLink
  readonly #options: OrderedChannelsOptions<M, S>
  readonly #channels: ChannelSet
  readonly #open = new Map<string, Slot<M, S>>()
  readonly #toRetry = new Set<Slot<M, S>>()
  #retryTimer: NodeJS.Timeout | undefined
  #stopped = false

  constructor (link: RedisLink, options: OrderedChannelsOptions<M, S>) {
    this.#link = link
    this.#options = options
    this.#channels = new ChannelSet(link,
      (channel, message) => this.#receive(channel, message),
      // What the channels carried while the connection was down is lost: each subject reads its gap.
      (channels) => {
        for (const channel of channels) {
          const slot = this.#open.get(channel)
          if (slot) this.#requestSync(slot)
        }
      })
  }

  /** Listens from now on (the broker's connections exist). */
  start (): void {
    this.#channels.start()
  }

  /** Follows `channel` with `subject`: subscribes it, syncs the subject, then applies what arrives, in order. */
  open (channel: string, subject: S): void {
    const slot: Slot<M, S> = { channel, subject, held: [], syncing: false, syncRequested: false }
    this.#open.set(channel, slot)
    this.#requestSync(slot)
  }

  /** No longer follows `channel`: nothing more reaches its subject. Resolves once the unsubscribe was sent. */
  async close (channel: string): Promise<void> {
    const slot = this.#open.get(channel)
    if (!slot) return
    this.#open.delete(channel)
    this.#toRetry.delete(slot)
    slot.held = []
    await this.#channels.delete(channel)
  }

  /** Reads Redis again for `channel`'s subject (its owner learned that what it shows may be stale). */
  requestSync (channel: string): void {
    const slot = this.#open.get(channel)
    if (slot) this.#requestSync(slot)
  }

  /** Whether `channel`'s subject is up to date with what Redis delivers now (synced, no sync running, subscribed). */
  isLive (channel: string): boolean {
    const slot = this.#open.get(channel)
    return slot !== undefined && slot.subject.synced && !slot.syncing && this.#channels.isSubscribed(channel)
  }

  /** A connection is back: the syncs that failed are tried now rather than at their timer. */
  retryNow (): void {
    clearTimeout(this.#retryTimer)
    this.#retryTimer = undefined
    const slots = [...this.#toRetry]
    this.#toRetry.clear()
    for (const slot of slots) {
      if (this.#isOpen(slot)) this.#requestSync(slot)
    }
  }

  /** Stops following every channel. */
  stop (): void {
    this.#stopped = true
    clearTimeout(this.#retryTimer)
    this.#channels.stop()
    this.#open.clear()
    this.#toRetry.clear()
  }

  #isOpen (slot: Slot<M, S>): boolean {
    return !this.#stopped && this.#open.get(slot.channel) === slot
  }

  #receive (channel: string, bytes: Buffer): void {
    const slot = this.#open.get(channel)
    const message = slot && this.#options.parse(bytes)
    if (!slot || message === undefined) return
    if (slot.held.length >= MAX_HELD) {
      // Redis is slow to answer a sync: let go of what is held, the sync reads its outcome instead.
      slot.held = []
      this.#requestSync(slot)
    }
    slot.held.push(message)
    if (!slot.syncing && slot.subject.synced) this.#drain(slot)
  }

  /**
   * Applies the held messages that follow what the subject has applied and drops those it already has. Stops at a
   * gap and asks for a sync; the messages from there on stay held.
   */
  #drain (slot: Slot<M, S>): void {
    while (slot.held.length > 0) {
      const message = slot.held[0]!
      const placement = slot.subject.place(message)
      if (placement === 'gap') {
        this.#requestSync(slot)
        return
      }
      slot.held.shift()
      if (placement === 'next') slot.subject.apply(message)
    }
  }

  #requestSync (slot: Slot<M, S>): void {
    if (slot.syncing) {
      slot.syncRequested = true
      return
    }
    this.#sync(slot).catch((err: unknown) => {
      if (!this.#isOpen(slot)) return
      this.#link.log.debug({ err, channel: slot.channel }, `pov-realtime: could not sync ${this.#options.what} with Redis; retrying`)
      this.#toRetry.add(slot)
      this.#retryTimer ??= setTimeout(() => this.retryNow(), SYNC_RETRY_MS).unref()
    })
  }

  /**
   * Brings one subject up to date: its channel subscribed on the current connection first (so that nothing published
   * after the read can be missed), then Redis read, then the messages that arrived meanwhile. Repeats while a gap or
   * a reconnect asks for more.
   */
  async #sync (slot: Slot<M, S>): Promise<void> {
    slot.syncing = true
    try {
      do {
        slot.syncRequested = false
        await this.#channels.add(slot.channel)
        if (!this.#isOpen(slot)) return
        await this.#options.sync(slot.subject, () => this.#isOpen(slot))
        if (!this.#isOpen(slot)) return
        this.#drain(slot)
      } while (slot.syncRequested && this.#isOpen(slot))
    } finally {
      slot.syncing = false
    }
  }
}
