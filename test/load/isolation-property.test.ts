/**
 * Isolation as a property (PROTOCOL.md, "Authorization" and "Revocation"): with every feature on, whatever several
 * users send (every client message, in random order) while the server broadcasts on random PoVs and revokes
 * subscriptions in the background, no socket ever receives anything of a PoV its user may not watch at that moment:
 * not an activity (live or replayed), not `subscribed`, presence, a presence diff, typing, a read event or a `reads`
 * answer. "At that moment" follows the socket's own story as the client sees it: after `unsubscribed` (asked for, or
 * `reason: 'revoked'`) or a `FORBIDDEN` for the PoV, nothing more of it until the client sends a new `subscribe`.
 *
 * Each socket plays its actions one at a time, each followed by a ping whose pong proves that every answer to it has
 * been written (the server handles a socket's messages in order); so while a `subscribe` waits for its pong, the
 * replay and `subscribed` may come, and after the pong nothing of an ended PoV may. Each run has a server of its own.
 */
import fc from 'fast-check'
import t from 'tap'
import { READ_EVENT_COALESCE_MS } from '../../lib/constants.js'
import type { Message, TestClient } from '../helpers/client.js'
import { activity, sleep, startServer, type TestServer } from '../helpers/server.js'

const POVS = ['p0', 'p1', 'p2', 'p3', 'p4'] as const
const USERS = ['u0', 'u1', 'u2', 'u3'] as const
/** Which user each socket is (u0 and u2 have two tabs). */
const SOCKET_USERS = [0, 0, 1, 2, 2, 3] as const
const NUM_RUNS = 20

/** The app's rule: user uN may watch the PoVs whose index is not divisible by N + 2 (so nobody may watch p0). */
function mayWatch (userId: string, povId: string): boolean {
  const user = Number(userId.slice(1))
  const pov = Number(povId.slice(1))
  return Number.isInteger(user) && Number.isInteger(pov) && pov % (user + 2) !== 0
}

/** A cursor the action uses: one of the PoV's own, one of another PoV's, or one that was never issued. */
type CursorChoice = 'none' | 'own' | 'other' | 'bogus'

type Action =
  | { readonly type: 'subscribe', readonly pov: number, readonly since: CursorChoice }
  | { readonly type: 'unsubscribe', readonly pov: number }
  | { readonly type: 'ping' }
  | { readonly type: 'auth', readonly valid: boolean }
  | { readonly type: 'status', readonly status: 'active' | 'idle' }
  | { readonly type: 'typing', readonly pov: number, readonly typing: boolean }
  | { readonly type: 'read', readonly pov: number, readonly cursor: Exclude<CursorChoice, 'none'> }
  | { readonly type: 'reads', readonly pov: number }

const pov = fc.integer({ min: 0, max: POVS.length - 1 })
const action: fc.Arbitrary<Action> = fc.oneof(
  { arbitrary: fc.record({ type: fc.constant('subscribe' as const), pov, since: fc.constantFrom<CursorChoice>('none', 'own', 'other', 'bogus') }), weight: 5 },
  { arbitrary: fc.record({ type: fc.constant('unsubscribe' as const), pov }), weight: 2 },
  { arbitrary: fc.record({ type: fc.constant('ping' as const) }), weight: 1 },
  { arbitrary: fc.record({ type: fc.constant('auth' as const), valid: fc.boolean() }), weight: 1 },
  { arbitrary: fc.record({ type: fc.constant('status' as const), status: fc.constantFrom('active' as const, 'idle' as const) }), weight: 2 },
  { arbitrary: fc.record({ type: fc.constant('typing' as const), pov, typing: fc.boolean() }), weight: 2 },
  { arbitrary: fc.record({ type: fc.constant('read' as const), pov, cursor: fc.constantFrom('own' as const, 'own' as const, 'other' as const, 'bogus' as const) }), weight: 3 },
  { arbitrary: fc.record({ type: fc.constant('reads' as const), pov }), weight: 2 }
)
const script = fc.array(fc.array(action, { minLength: 10, maxLength: 30 }), { minLength: SOCKET_USERS.length, maxLength: SOCKET_USERS.length })

/** What the runs saw, summed up, so that the test can show it exercised what it claims to. */
const seen = { revoked: 0, forbidden: 0, activities: 0, replayed: 0, presence: 0, typing: 0, read: 0, reads: 0 }

/** The PoV a server message is about, if any (errors left out: they carry nothing of the PoV). */
function povOf (message: Message): string | undefined {
  if (message.type === 'activity') return (message.data as { povId: string }).povId
  if (message.type === 'error') return undefined
  return typeof message.povId === 'string' ? message.povId : undefined
}

/** Follows one socket's story as its client sees it, and records every message it should not have received. */
class IsolationWatch {
  readonly #userId: string
  readonly #violations: string[]
  /** PoVs with an accepted `subscribe` not ended since. */
  readonly #live = new Set<string>()
  /** PoVs with a `subscribe` sent whose answers are still to come (until the pong that follows it). */
  readonly #subscribing = new Set<string>()

  constructor (client: TestClient, userId: string, violations: string[]) {
    this.#userId = userId
    this.#violations = violations
    client.ws.on('message', (data) => this.#received(JSON.parse(data.toString()) as Message))
  }

  /** Called as the client sends a `subscribe` of `povId`. */
  subscribing (povId: string): void {
    this.#subscribing.add(povId)
  }

  #received (message: Message): void {
    if (message.type === 'pong') return this.#subscribing.clear()
    if (message.type === 'error' && message.code === 'FORBIDDEN' && typeof message.povId === 'string') {
      seen.forbidden++
      this.#live.delete(message.povId)
      this.#subscribing.delete(message.povId)
      return
    }
    const povId = povOf(message)
    if (povId === undefined) return
    if (message.type === 'unsubscribed') {
      if (message.reason === 'revoked') seen.revoked++
      // It ends the live subscription or, when there is none, a subscribe whose authorization it cut short.
      if (!this.#live.delete(povId)) this.#subscribing.delete(povId)
      return
    }
    const what = `${this.#userId} received ${JSON.stringify(message).slice(0, 200)}`
    if (!mayWatch(this.#userId, povId)) {
      this.#violations.push(`${what}: ${this.#userId} may never watch ${povId}`)
      return
    }
    if (message.type === 'subscribed') {
      if (!this.#subscribing.delete(povId)) this.#violations.push(`${what}: no subscribe was waiting for it`)
      this.#live.add(povId)
      return
    }
    if (!this.#live.has(povId) && !this.#subscribing.has(povId)) {
      this.#violations.push(`${what}: its subscription to ${povId} had ended`)
      return
    }
    if (message.type === 'activity') seen[this.#live.has(povId) ? 'activities' : 'replayed']++
    else if (message.type === 'presence' || message.type === 'presence_diff') seen.presence++
    else if (message.type === 'typing' || message.type === 'read' || message.type === 'reads') seen[message.type]++
  }
}

/** The server's doings alongside the clients: broadcasts on random PoVs and revocations of random subscriptions. */
function background (server: TestServer, cursors: Map<string, string[]>): () => Promise<void> {
  let stopped = false
  const running: Array<Promise<unknown>> = []
  const loop = (step: () => Promise<unknown>, pause: () => number): void => {
    const next = (): void => {
      if (stopped) return
      const done = step().catch(() => {}).finally(() => { setTimeout(next, pause()) })
      running.push(done)
    }
    next()
  }
  const random = <T> (items: readonly T[]): T => items[Math.floor(Math.random() * items.length)]!
  loop(async () => {
    const povId = random(POVS)
    const { cursor } = await server.app.broadcastActivity(activity(povId))
    cursors.set(povId, [...cursors.get(povId) ?? [], cursor])
  }, () => Math.random() * 4)
  loop(() => server.app.povRealtime.revoke({ userId: random(USERS), povId: random(POVS) }), () => 5 + Math.random() * 30)
  return async () => {
    stopped = true
    await Promise.all(running)
  }
}

/** A cursor as `choice` says, for an action on `povId`. */
function pickCursor (choice: CursorChoice, povId: string, cursors: Map<string, string[]>, newest = false): string | undefined {
  if (choice === 'none') return undefined
  if (choice === 'bogus') return 'never-issued-1'
  const own = cursors.get(povId) ?? []
  // For a read, the PoV's newest, so that the mark moves forward (an older one is kept silently, with no event).
  if (choice === 'own' && newest) return own.at(-1) ?? 'never-issued-2'
  const pool = choice === 'own' ? own : [...cursors.entries()].filter(([other]) => other !== povId).flatMap(([, list]) => list)
  return pool.length === 0 ? 'never-issued-2' : pool[Math.floor(Math.random() * pool.length)]
}

t.test('no socket ever receives anything of a PoV its user may not watch at that moment', async (t) => {
  const errorLines: string[] = []
  const runs = fc.asyncProperty(script, async (actionsPerSocket) => {
    const closing: Array<() => unknown> = []
    try {
      const server = await startServer({ teardown: (fn) => closing.push(fn) }, {
        presence: true,
        readReceipts: true,
        rateLimit: false,
        authorizeSubscription: (user, povId) => mayWatch(user.userId, povId)
      })
      const tokens = await Promise.all(USERS.map((userId) => server.wsToken({ userId })))
      const violations: string[] = []
      const cursors = new Map<string, string[]>()
      const sockets = await Promise.all(SOCKET_USERS.map(async (user) => {
        const client = await server.connect({ token: tokens[user]! })
        return { client, user, watch: new IsolationWatch(client, USERS[user], violations) }
      }))
      const stop = background(server, cursors)

      await Promise.all(sockets.map(async ({ client, user, watch }, index) => {
        for (const step of actionsPerSocket[index]!) {
          const povId = 'pov' in step ? POVS[step.pov] : ''
          switch (step.type) {
            case 'subscribe': {
              const since = pickCursor(step.since, povId, cursors)
              watch.subscribing(povId)
              client.send({ type: 'subscribe', povId, ...(since === undefined ? {} : { since }) })
              break
            }
            case 'unsubscribe': client.send({ type: 'unsubscribe', povId }); break
            case 'ping': break // the ping below
            case 'auth': client.send({ type: 'auth', token: step.valid ? tokens[user] : 'not-a-token' }); break
            case 'status': client.send({ type: 'status', status: step.status }); break
            case 'typing': client.send({ type: 'typing', povId, typing: step.typing }); break
            case 'read': client.send({ type: 'read', povId, cursor: pickCursor(step.cursor, povId, cursors, true) }); break
            case 'reads': client.send({ type: 'reads', povId }); break
          }
          await client.request({ type: 'ping' }, 'pong', 5000)
        }
      }))
      await sleep(READ_EVENT_COALESCE_MS + 20) // what the last broadcasts, revocations and read marks bring
      await stop()
      await Promise.all(sockets.map(({ client }) => client.request({ type: 'ping' }, 'pong', 5000)))
      const closedSockets = sockets.filter(({ client }) => client.ws.readyState !== client.ws.OPEN).length
      if (closedSockets > 0) throw new Error(`${closedSockets} sockets were closed during the run`)
      errorLines.push(...server.logs.filter((line) => (JSON.parse(line) as { level: number }).level >= 50))
      if (violations.length > 0) throw new Error(`isolation broken:\n${violations.slice(0, 5).join('\n')}`)
    } finally {
      for (const close of closing.reverse()) await close()
    }
  })
  await fc.assert(runs, { numRuns: NUM_RUNS, endOnFailure: true })

  t.comment(`over ${NUM_RUNS} runs: ${JSON.stringify(seen)}`)
  t.same(errorLines, [], 'the servers logged no error or fatal line')
  // The property is only worth what it exercised: each kind of message of a PoV, and each way a subscription ends.
  for (const kind of ['revoked', 'forbidden', 'activities', 'replayed', 'presence', 'typing', 'read', 'reads'] as const) {
    t.ok(seen[kind] > 0, `the runs saw ${kind}`)
  }
})
