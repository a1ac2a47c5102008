/**
 * The Redis broker's presence relay: each instance's members of each PoV in a Redis hash (one field per member per
 * instance), their changes on the PoV's presence channel, and instance liveness from heartbeats. See
 * `presence-scripts.ts` for what lives in Redis and `presence-mirror.ts` for how a watched PoV follows it.
 *
 * Liveness: every instance records a heartbeat every `ttl / 3` ms; every `ttl / 3` ms it also checks the heartbeats of
 * the instances whose members it shows. An instance whose last heartbeat is older than `ttl` is dead: its members are
 * removed from the hash (one change, published) and reported gone, so they leave everywhere within `ttl + ttl / 3` of
 * its last heartbeat. An instance cut off from Redis for longer than `ttl` counts as dead too, and announces its
 * members again when it is back.
 */
import { randomBytes } from 'node:crypto'
import type { MemberState, PresenceRelay, PresenceSink, RemoteMember } from '../broker.js'
import type { RedisLink } from './link.js'
import { OrderedChannels } from './ordered-channel.js'
import { PresenceMirror, type OriginVerdict } from './presence-mirror.js'
import {
  PRESENCE_HASH_LIFETIME_MS, announceMember, heartbeat, livenessOf, parseChange, publishTyping, readSnapshot, removeOrigin,
  type Liveness, type PresenceChange, type PresenceSnapshot
} from './presence-scripts.js'
import { instancesKey, povKeys, type PovKeys } from './scripts.js'

/** Default of the Redis broker's `presenceTtl` option (ms). */
export const DEFAULT_PRESENCE_TTL = 15_000

/** How often an instance refreshes the lifetime of the members hashes it has members in. */
const REFRESH_EVERY_MS = 60 * 60_000

/** Members whose last change could not reach Redis, kept to be sent again; past that, the oldest are forgotten. */
const MAX_UNSENT = 100_000

/** Writes in flight at once when all of this instance's members are announced again. */
const WRITE_BATCH = 500

/** A fresh instance name: 11 random letters and digits (no `:`, which ends it in a members hash field). */
export function newInstanceId (): string {
  return randomBytes(8).toString('base64url').replace(/[^A-Za-z0-9]/g, '0')
}

export class RedisPresenceRelay implements PresenceRelay {
  readonly instanceId: string
  readonly #link: RedisLink
  readonly #ttl: number
  readonly #instancesKey: string
  /** The watched PoVs' presence channels, each followed in order by its mirror. */
  readonly #channels: OrderedChannels<PresenceChange, PresenceMirror>
  #sink: PresenceSink | undefined
  #closed = false
  /** Watched PoVs. */
  readonly #mirrors = new Map<string, PresenceMirror>()
  /** This instance's members: PoV → user → state. What it announces again after Redis comes back. */
  readonly #local = new Map<string, Map<string, MemberState>>()
  /** Members whose last change may not have reached Redis (`<povId>\n<userId>`; a PoV id has no newline). */
  readonly #unsent = new Set<string>()
  /** Instances whose heartbeat Redis does not hold, since when (ms): dead once that lasts `ttl`. */
  readonly #unknownSince = new Map<string, number>()
  #tickTimer: NodeJS.Timeout | undefined
  #ticking = false
  #unsentOverflowed = false
  #announcing = false
  #announceAgain = false
  #announceEverything = false
  #lastRefresh = Date.now()
  readonly #onCommandsReady = () => {
    this.#announceAll(true).catch(() => {})
    this.#channels.retryNow()
  }

  /**
   * @param link the broker's connections and settings
   * @param ttl ms after its last heartbeat that an instance counts as dead
   */
  constructor (link: RedisLink, ttl: number) {
    this.#link = link
    this.instanceId = link.instanceId
    this.#ttl = ttl
    this.#instancesKey = instancesKey(link.keyPrefix)
    this.#channels = new OrderedChannels(link, {
      parse: (message) => parseChange(message.toString()),
      sync: async (mirror, isOpen) => await this.#sync(mirror, isOpen),
      what: 'a PoV\'s presence'
    })
  }

  async start (sink: PresenceSink): Promise<void> {
    if (this.#sink || this.#closed) return
    this.#sink = sink
    this.#channels.start()
    this.#link.commands.on('ready', this.#onCommandsReady)
    this.#tickTimer = setInterval(() => { this.#tick().catch(() => {}) }, Math.max(1, Math.floor(this.#ttl / 3))).unref()
    // Before any member is announced, so that another instance never takes this one's first members for a dead one's.
    await this.#heartbeat().catch(() => {})
  }

  announce (povId: string, userId: string, state: MemberState | null): void {
    if (!this.#sink || this.#closed) return
    let members = this.#local.get(povId)
    if (state) {
      if (!members) this.#local.set(povId, members = new Map())
      members.set(userId, state)
    } else if (members?.delete(userId) && members.size === 0) {
      this.#local.delete(povId)
    }
    this.#write(povId, userId).catch(() => {})
  }

  typing (povId: string, userId: string, typing: boolean): void {
    if (!this.#sink || this.#closed || this.#link.commands.status !== 'ready') return
    this.#link.command((redis) => publishTyping(redis, this.#keys(povId), this.instanceId, userId, typing)).catch(() => {})
  }

  async members (povId: string): Promise<RemoteMember[]> {
    const mirror = this.#mirrors.get(povId)
    if (mirror && this.#channels.isLive(mirror.channel)) {
      return [...mirror.entries()].map(([origin, userId, state]) => ({ origin, userId, state }))
    }
    const keys = this.#keys(povId)
    const snapshot = await this.#link.command((redis) => readSnapshot(redis, keys, this.instanceId))
    const liveness = await this.#liveness([...snapshot.members.keys()])
    const members: RemoteMember[] = []
    for (const [origin, ofOrigin] of snapshot.members) {
      if (this.#verdict(origin, liveness) === 'dead') {
        this.#removeDead(keys, origin).catch(() => {})
        continue
      }
      for (const [userId, state] of ofOrigin) members.push({ origin, userId, state })
    }
    return members
  }

  /** The broker watches `povId` now: resolves once its members are known (or after the broker's timeout). */
  async watch (povId: string): Promise<void> {
    if (!this.#sink || this.#closed) return
    let mirror = this.#mirrors.get(povId)
    if (mirror) {
      mirror.refs++
    } else {
      const keys = this.#keys(povId)
      mirror = new PresenceMirror(povId, keys.presenceChannel, this.#sink, this.instanceId, () => this.#announcePov(povId))
      this.#mirrors.set(povId, mirror)
      this.#channels.open(mirror.channel, mirror)
    }
    // While Redis is unreachable, the members come once it is back.
    if (this.#link.subscriber.status !== 'ready' || this.#link.commands.status !== 'ready') return
    await mirror.untilSynced(this.#link.timeout)
  }

  unwatch (povId: string): void {
    const mirror = this.#mirrors.get(povId)
    if (!mirror || --mirror.refs > 0) return
    this.#mirrors.delete(povId)
    mirror.close()
    this.#channels.close(mirror.channel).catch(() => {})
  }

  /** Removes this instance's members from Redis (each PoV's other instances see them leave) and its heartbeat. */
  async close (): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    clearInterval(this.#tickTimer)
    this.#channels.stop()
    for (const mirror of this.#mirrors.values()) mirror.close()
    this.#mirrors.clear()
    if (!this.#sink) return
    this.#link.commands.off('ready', this.#onCommandsReady)
    const povIds = new Set([...this.#local.keys(), ...[...this.#unsent].map((key) => key.slice(0, key.indexOf('\n')))])
    this.#local.clear()
    this.#unsent.clear()
    // Stops at the first batch Redis did not take: while it is away, the heartbeat dated expired (or left to expire)
    // makes the others drop what stays.
    const all = [...povIds]
    for (let i = 0; i < all.length; i += WRITE_BATCH) {
      const batch = all.slice(i, i + WRITE_BATCH).map((povId) =>
        this.#link.command((redis) => removeOrigin(redis, this.#keys(povId), this.instanceId)))
      if ((await Promise.allSettled(batch)).some((outcome) => outcome.status === 'rejected')) break
    }
    await this.#link.command((redis) => heartbeat(redis, this.#instancesKey, this.instanceId, this.#ttl, true)).catch(() => {})
  }

  // ---- this instance's members ---------------------------------------------------------------

  #keys (povId: string): PovKeys {
    return povKeys(this.#link.keyPrefix, povId, this.#link.sharded)
  }

  /** Sends one member's current state; remembers it to send again if that fails. Never rejects. */
  async #write (povId: string, userId: string): Promise<void> {
    const key = `${povId}\n${userId}`
    this.#unsent.delete(key)
    const state = this.#local.get(povId)?.get(userId) ?? null
    try {
      await this.#link.command((redis) => announceMember(redis, this.#keys(povId), this.instanceId, userId, state))
    } catch {
      if (this.#closed) return
      if (this.#unsent.size >= MAX_UNSENT) {
        this.#unsent.delete(this.#unsent.values().next().value!)
        if (!this.#unsentOverflowed) {
          this.#unsentOverflowed = true
          this.#link.log.warn(`pov-realtime: more than ${MAX_UNSENT} presence changes could not reach Redis; the oldest are forgotten`)
        }
      }
      this.#unsent.add(key)
    }
  }

  /**
   * Sends again the changes that may not have reached Redis and, when Redis is back (`everything`), every member of
   * this instance, then records a heartbeat.
   */
  async #announceAll (everything: boolean): Promise<void> {
    this.#announceEverything ||= everything
    if (this.#announcing) {
      this.#announceAgain = true
      return
    }
    this.#announcing = true
    try {
      do {
        this.#announceAgain = false
        const writes: Array<[string, string]> = [...this.#unsent].map((key) => {
          const newline = key.indexOf('\n')
          return [key.slice(0, newline), key.slice(newline + 1)]
        })
        this.#unsentOverflowed = false
        if (this.#announceEverything) {
          this.#announceEverything = false
          for (const [povId, members] of this.#local) {
            for (const userId of members.keys()) writes.push([povId, userId])
          }
        }
        for (let i = 0; i < writes.length && !this.#closed; i += WRITE_BATCH) {
          await Promise.all(writes.slice(i, i + WRITE_BATCH).map(([povId, userId]) => this.#write(povId, userId)))
        }
        // Only now: another instance that sees this heartbeat after a Redis restart can trust the hash for this one.
        await this.#heartbeat()
      } while (this.#announceAgain && !this.#closed)
    } finally {
      this.#announcing = false
    }
  }

  /** Another instance took this one for dead and removed its members of `povId`: send them again. */
  #announcePov (povId: string): void {
    for (const userId of this.#local.get(povId)?.keys() ?? []) this.#write(povId, userId).catch(() => {})
  }

  async #heartbeat (): Promise<void> {
    await this.#link.command((redis) => heartbeat(redis, this.#instancesKey, this.instanceId, this.#ttl))
  }

  // ---- other instances' members --------------------------------------------------------------

  #isWatched (mirror: PresenceMirror): boolean {
    return !this.#closed && this.#mirrors.get(mirror.povId) === mirror
  }

  /**
   * Brings one mirror up to the hash (its channel is subscribed: no change made after the read can be missed), with
   * the liveness of every instance it shows.
   */
  async #sync (mirror: PresenceMirror, isOpen: () => boolean): Promise<void> {
    const keys = this.#keys(mirror.povId)
    // The liveness of the instances already shown is read before the hash: one found alive announced its members
    // again (after a Redis restart) before its heartbeat, so the hash read next holds them.
    const liveness = await this.#liveness([...mirror.origins()])
    const snapshot: PresenceSnapshot = await this.#link.command((redis) => readSnapshot(redis, keys, this.instanceId))
    const newcomers = [...snapshot.members.keys()].filter((origin) => !liveness.has(origin))
    for (const [origin, said] of await this.#liveness(newcomers)) liveness.set(origin, said)
    if (!isOpen()) return
    mirror.sync(snapshot, (origin) => {
      const verdict = this.#verdict(origin, liveness)
      if (verdict === 'dead' && snapshot.members.has(origin)) this.#removeDead(keys, origin).catch(() => {})
      return verdict
    })
  }

  async #liveness (origins: string[]): Promise<Map<string, Liveness>> {
    if (origins.length === 0) return new Map()
    return await this.#link.command((redis) => livenessOf(redis, this.#instancesKey, origins, this.#ttl))
  }

  /** What to make of an instance's members: an instance whose heartbeat Redis lacks for `ttl` is dead too. */
  #verdict (origin: string, liveness: Map<string, Liveness>): OriginVerdict {
    const said = liveness.get(origin)
    if (said === 'alive') {
      this.#unknownSince.delete(origin)
      return 'alive'
    }
    if (said === 'expired') return 'dead'
    const since = this.#unknownSince.get(origin)
    if (since === undefined) this.#unknownSince.set(origin, Date.now())
    return since !== undefined && Date.now() - since >= this.#ttl ? 'dead' : 'unknown'
  }

  /** Removes a dead instance's members of one PoV from Redis; resolves whether there were any (their leave was published). */
  async #removeDead (keys: PovKeys, origin: string): Promise<boolean> {
    return await this.#link.command((redis) => removeOrigin(redis, keys, origin))
  }

  // ---- the periodic work ---------------------------------------------------------------------

  /** Heartbeat, changes to send again, liveness of the instances whose members are shown, hashes' lifetime. */
  async #tick (): Promise<void> {
    if (this.#ticking || this.#announcing || this.#closed || this.#link.commands.status !== 'ready') return
    this.#ticking = true
    try {
      await this.#heartbeat()
      if (this.#unsent.size > 0) await this.#announceAll(false)
      await this.#checkOrigins()
      if (Date.now() - this.#lastRefresh >= REFRESH_EVERY_MS) await this.#refreshLifetimes()
    } finally {
      this.#ticking = false
    }
  }

  /** Removes dead instances' members from the watched PoVs; syncs again the PoVs of instances whose liveness is settled. */
  async #checkOrigins (): Promise<void> {
    const holders = new Map<string, PresenceMirror[]>()
    for (const mirror of this.#mirrors.values()) {
      for (const origin of mirror.origins()) {
        let mirrors = holders.get(origin)
        if (!mirrors) holders.set(origin, mirrors = [])
        mirrors.push(mirror)
      }
    }
    for (const origin of this.#unknownSince.keys()) {
      if (!holders.has(origin)) this.#unknownSince.delete(origin)
    }
    const liveness = await this.#liveness([...holders.keys()])
    for (const [origin, mirrors] of holders) {
      const wasUnknown = this.#unknownSince.has(origin)
      const verdict = this.#verdict(origin, liveness)
      if (verdict === 'alive' && wasUnknown) {
        // Back after a Redis restart: its members were kept meanwhile; the hash is the truth for it again.
        for (const mirror of mirrors) this.#channels.requestSync(mirror.channel)
      } else if (verdict === 'dead') {
        this.#unknownSince.delete(origin)
        for (const mirror of mirrors) {
          const published = await this.#removeDead(this.#keys(mirror.povId), origin)
          // Published: the mirror learns it from the channel, in order. Otherwise Redis held none (it lost them).
          if (!published && this.#isWatched(mirror)) mirror.removeOrigin(origin)
        }
      }
    }
  }

  /** Keeps the members hashes this instance has members in from expiring while they stay. */
  async #refreshLifetimes (): Promise<void> {
    this.#lastRefresh = Date.now()
    const povIds = [...this.#local.keys()]
    for (let i = 0; i < povIds.length; i += WRITE_BATCH) {
      await Promise.all(povIds.slice(i, i + WRITE_BATCH).map((povId) =>
        this.#link.command((redis) => redis.pexpire(this.#keys(povId).presence, PRESENCE_HASH_LIFETIME_MS))))
    }
  }
}
