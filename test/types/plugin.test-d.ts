// Type test: compiled by `npm run typecheck` (tsc), never run. A line marked @ts-expect-error fails the build when it
// stops being an error, so the public types cannot loosen silently.
import Fastify from 'fastify'
import povRealtime, {
  CloseCode, ErrorCode, type Activity, type ActivityInput, type BroadcastResult, type Member, type PovRealtimeStats,
  type ReadMark, type ReadState, type ServerMessage
} from '../../index.js'

const app = Fastify()
await app.register(povRealtime, { secret: 's'.repeat(32), tokenExpiresIn: '2s', history: { size: 10 } })
// @ts-expect-error secret is required
await app.register(povRealtime, {})
// @ts-expect-error rateLimit is an object or false
await app.register(povRealtime, { secret: 'x', rateLimit: true })

const result: Promise<BroadcastResult> = app.broadcastActivity({
  id: 'a1', type: 'anything', action: 'anything', povId: 'p1', userId: 'u1', title: 't', message: 'm'
})
void result
// @ts-expect-error title is required
void app.broadcastActivity({ id: 'a1', type: 'note', action: 'created', povId: 'p1', userId: 'u1', message: 'm' })
// @ts-expect-error severity is one of four
void app.broadcastActivity({ id: 'a1', type: 'note', action: 'created', povId: 'p1', userId: 'u1', title: 't', message: 'm', severity: 'fatal' })

const stats: PovRealtimeStats = app.povRealtime.stats()
const connections: number = stats.connections
void connections

const moved: Promise<boolean> = app.povRealtime.markRead('u1', 'p1', 'cursor')
const marks: Promise<ReadMark[]> = app.povRealtime.reads('p1')
const badges: Promise<Record<string, ReadState>> = app.povRealtime.unreadCounts('u1', ['p1', 'p2'])
void moved
void marks
void badges
// @ts-expect-error unreadCounts takes a list of PoVs
void app.povRealtime.unreadCounts('u1', 'p1')
await app.register(povRealtime, { secret: 's'.repeat(32), presence: { info: (user) => ({ name: user.userId }), typingTimeout: 3000 } })
// @ts-expect-error info returns an object
await app.register(povRealtime, { secret: 's'.repeat(32), presence: { info: () => 'Alice' } })
const members: Member[] = await app.povRealtime.presence('p1')
const status: 'active' | 'idle' = members[0]!.status
void status

// Without registration, type and action are plain strings.
const activityType: string = ({} as Activity).type
void activityType
const input: ActivityInput = { id: 'a', type: 't', action: 'a', povId: 'p', userId: 'u', title: 't', message: 'm' }
void input

function describe (message: ServerMessage): string {
  switch (message.type) {
    case 'activity': return message.data.title
    case 'error': return message.code
    case 'subscribed': return `${message.povId} ${message.recovered ?? ''}`
    default: return message.type
  }
}
void describe

const goingAway: 1001 = CloseCode.GOING_AWAY
const invalid: 'INVALID_MESSAGE' = ErrorCode.INVALID_MESSAGE
void goingAway
void invalid
