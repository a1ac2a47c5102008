/**
 * The Redis broker's control messages (`fastify.povRealtime.revoke`): one channel every instance listens to, and one
 * reply channel per instance for the confirmations.
 *
 * Sending: the message is applied on this instance first, then published on `<prefix>control`. PUBLISH answers with
 * the number of connections that received it: every instance whose subscriber connection is up at that moment, this
 * one included. Each applies it to its sockets and confirms on the sender's `<prefix>control:<instanceId>`; the send
 * resolves once as many confirmations as receivers have come (this instance counts itself), and rejects with
 * `POV_REALTIME_BROKER_UNAVAILABLE` when Redis cannot be reached or the confirmations do not all come within the
 * broker's `timeout`. "Every instance" is therefore every instance connected to Redis when `revoke` is called: one cut
 * off from it then is not counted and never hears of it (`reauthorizeInterval` re-checks its sockets, if set). In a
 * Redis Cluster, PUBLISH would count the receivers of one node only; there both channels are sharded instead, under one
 * hash tag (`<prefix>control{c}`, `<prefix>control{c}:<instanceId>`; `control` before the tag, so that no PoV's
 * channel, `<prefix>{<povId>}`, can have the name): every instance subscribes to them on the one shard
 * that owns that slot, so SPUBLISH's count is again every instance whose subscriber is up.
 */
import { randomUUID } from 'node:crypto'
import type { ControlMessage } from '../broker.js'
import { BrokerUnavailableError } from '../errors.js'
import { ChannelSet } from './channel-set.js'
import type { RedisLink } from './link.js'
import type { RedisClient } from './scripts.js'

/** The channel every instance listens to; in a Cluster one hash tag keeps it and the reply channels on one shard. */
function controlChannel (link: RedisLink): string {
  return link.sharded ? `${link.keyPrefix}control{c}` : `${link.keyPrefix}control`
}

async function publish (link: RedisLink, redis: RedisClient, channel: string, message: string): Promise<number> {
  return link.sharded ? await redis.spublish(channel, message) as number : await redis.publish(channel, message)
}

/** A control message on the wire: who sent it (for the confirmation) and under which id. */
interface Envelope {
  readonly id: string
  readonly from: string
  readonly message: ControlMessage
}

/** A send waiting for its confirmations. */
interface Waiting {
  confirmations: number
  /** How many instances received it (PUBLISH's answer), once known. */
  receivers: number | undefined
  readonly done: () => void
}

function parseEnvelope (text: string): Envelope | undefined {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    return undefined
  }
  const { id, from, message } = (value ?? {}) as Partial<Record<keyof Envelope, unknown>>
  if (typeof id !== 'string' || typeof from !== 'string' || message === null || typeof message !== 'object') return undefined
  const { type, userId, povId } = message as Record<string, unknown>
  if (type !== 'revoke' || typeof userId !== 'string' || (povId !== undefined && typeof povId !== 'string')) return undefined
  return { id, from, message: povId === undefined ? { type, userId } : { type, userId, povId } }
}

export class RedisControlRelay {
  readonly #link: RedisLink
  readonly #channel: string
  readonly #replyChannel: string
  readonly #channels: ChannelSet
  readonly #waiting = new Map<string, Waiting>()
  #apply: ((message: ControlMessage) => void) | undefined

  constructor (link: RedisLink) {
    this.#link = link
    this.#channel = controlChannel(link)
    this.#replyChannel = `${controlChannel(link)}:${link.instanceId}`
    this.#channels = new ChannelSet(link, (channel, message) => this.#onMessage(channel, message.toString()), () => {})
  }

  /** Listens from now on; resolves once Redis confirmed both channels (or could not: they are retried). */
  async start (apply: (message: ControlMessage) => void): Promise<void> {
    this.#apply = apply
    this.#channels.start()
    await Promise.all([this.#channels.add(this.#channel), this.#channels.add(this.#replyChannel)]).catch(() => {})
  }

  /** Applies `message` here, then on every other instance connected to Redis; resolves once all have confirmed. */
  async send (message: ControlMessage): Promise<void> {
    this.#apply?.(message)
    const id = randomUUID()
    const { timeout } = this.#link
    let timer: NodeJS.Timeout | undefined
    const confirmed = new Promise<void>((resolve, reject) => {
      this.#waiting.set(id, { confirmations: 0, receivers: undefined, done: resolve })
      timer = setTimeout(() => {
        const waiting = this.#waiting.get(id)
        const missing = waiting?.receivers === undefined ? 'all' : `${waiting.receivers - waiting.confirmations} of ${waiting.receivers}`
        reject(new BrokerUnavailableError(`${missing} instances did not confirm the revocation within ${timeout} ms`))
      }, timeout)
    })
    confirmed.catch(() => {})
    try {
      const listening = this.#channels.isSubscribed(this.#channel) && this.#channels.isSubscribed(this.#replyChannel)
      const envelope: Envelope = { id, from: this.#link.instanceId, message }
      // Rejects with POV_REALTIME_BROKER_UNAVAILABLE while Redis is away.
      const receivers = await this.#link.command((redis) => publish(this.#link, redis, this.#channel, JSON.stringify(envelope)))
      if (!listening) {
        // Published, so the others apply it, but this instance would not hear their confirmations.
        throw new BrokerUnavailableError('this instance is not listening for confirmations (its Redis subscriber connection is down)')
      }
      const waiting = this.#waiting.get(id)!
      waiting.receivers = receivers
      this.#settle(waiting)
      await confirmed
    } finally {
      clearTimeout(timer)
      this.#waiting.delete(id)
    }
  }

  /** Stops listening; sends still waiting fail at their timeout. */
  close (): void {
    this.#channels.stop()
  }

  #onMessage (channel: string, text: string): void {
    if (channel === this.#replyChannel) {
      const waiting = this.#waiting.get(text)
      if (waiting) {
        waiting.confirmations++
        this.#settle(waiting)
      }
      return
    }
    const envelope = parseEnvelope(text)
    if (!envelope) return
    if (envelope.from === this.#link.instanceId) {
      // Applied before it was sent; its arrival is this instance's own confirmation.
      const waiting = this.#waiting.get(envelope.id)
      if (waiting) {
        waiting.confirmations++
        this.#settle(waiting)
      }
      return
    }
    this.#apply?.(envelope.message)
    const replyTo = `${controlChannel(this.#link)}:${envelope.from}`
    this.#link.command((redis) => publish(this.#link, redis, replyTo, envelope.id)).catch((err: unknown) => {
      this.#link.log.warn({ err }, 'pov-realtime: could not confirm a revocation; it was applied here')
    })
  }

  #settle (waiting: Waiting): void {
    if (waiting.receivers !== undefined && waiting.confirmations >= waiting.receivers) waiting.done()
  }
}
