/**
 * The counters behind `fastify.povRealtime.stats()`: totals since start, kept by the code that does the counted
 * thing; the current values (connections, subscriptions, PoVs, presence members) are read from the live structures instead.
 */

/**
 * The fairness limits that count their trips in `stats().limitTrips`: `maxSocketsPerUser` (an upgrade refused with
 * 429), `maxSubscriptions` (a `subscribe` refused), `statusChanges` (a `status` change held back), and the broker's
 * bounds (`historyMaxBytes`, `historyMaxTotalBytes`: entries left the replay window; `readMarksPerUser`,
 * `readMarksPerPov`: a read mark was forgotten).
 */
export const LIMITS = [
  'maxSocketsPerUser', 'maxSubscriptions', 'statusChanges',
  'historyMaxBytes', 'historyMaxTotalBytes', 'readMarksPerUser', 'readMarksPerPov'
] as const

export type LimitName = typeof LIMITS[number]

/** What `fastify.povRealtime.stats()` returns. */
export interface PovRealtimeStats {
  /** Open sockets now. */
  connections: number
  /** Socket–PoV subscriptions now. */
  subscriptions: number
  /** PoVs with at least one subscriber on this instance now. */
  povs: number
  /** Activities published from this instance. */
  broadcasts: number
  /** Activity frames written to this instance's sockets. */
  deliveries: number
  /** `error` messages sent, by code. */
  rejected: Record<string, number>
  /** Closes this server started, by the code it sent. */
  closed: Record<string, number>
  /** Refused token requests and refused upgrades. */
  authFailures: number
  /** Sockets closed with 4008 for reading too slowly. */
  slowConsumerCloses: number
  /** `presence` on: members on this instance's watched PoVs now (one per user per PoV, other instances' included). */
  presenceMembers: number
  /** `presence` on: presence and typing messages not written to a socket because it was reading too slowly. */
  presenceDropped: number
  /**
   * Subscriptions ended by revocation (`fastify.povRealtime.revoke`, a socket closed with 4003 by it included) or by
   * `authorizeSubscription` refusing them on a re-check (a repeated `subscribe`, an in-band `auth`, `reauthorizeInterval`).
   */
  revoked: number
  /** Each fairness limit's trips (see `LIMITS`): every key is present, 0 until it trips. */
  limitTrips: Record<LimitName, number>
  /** Times the broker reported that a PoV's feed lost activities in transit (its subscribers were sent `resync`). */
  feedInterruptions: number
  /** `resync` messages sent: one per subscriber of each PoV whose feed lost activities in transit. */
  resyncs: number
  /** Faults of the broker's backing service (the Redis broker: a connection lost, Redis not answering), once per outage. */
  brokerFaults: number
}

export class StatsCounters {
  broadcasts = 0
  deliveries = 0
  authFailures = 0
  slowConsumerCloses = 0
  presenceDropped = 0
  revoked = 0
  feedInterruptions = 0
  resyncs = 0
  brokerFaults = 0
  readonly limitTrips = Object.fromEntries(LIMITS.map((limit) => [limit, 0])) as Record<LimitName, number>
  readonly rejected: Record<string, number> = Object.create(null)
  readonly closed: Record<string, number> = Object.create(null)

  countRejected (code: string): void {
    this.rejected[code] = (this.rejected[code] ?? 0) + 1
  }

  countClosed (code: number): void {
    this.closed[code] = (this.closed[code] ?? 0) + 1
  }

  countLimitTrip (limit: LimitName): void {
    this.limitTrips[limit]++
  }

  snapshot (current: Pick<PovRealtimeStats, 'connections' | 'subscriptions' | 'povs' | 'presenceMembers'>): PovRealtimeStats {
    return {
      ...current,
      broadcasts: this.broadcasts,
      deliveries: this.deliveries,
      rejected: { ...this.rejected },
      closed: { ...this.closed },
      authFailures: this.authFailures,
      slowConsumerCloses: this.slowConsumerCloses,
      presenceDropped: this.presenceDropped,
      revoked: this.revoked,
      limitTrips: { ...this.limitTrips },
      feedInterruptions: this.feedInterruptions,
      resyncs: this.resyncs,
      brokerFaults: this.brokerFaults
    }
  }
}
