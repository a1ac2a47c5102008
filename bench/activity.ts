/**
 * The one activity every target publishes, and the clock that timestamps it. Latency is measured from
 * `metadata.sentAt` (set when the target publishes) to the moment the load generator parses the message; both
 * processes run on the same machine, so `performance.timeOrigin + performance.now()` is one clock for both.
 */
import { randomBytes } from 'node:crypto'

/** The activity as published: a valid `ActivityInput` of the plugin, and the payload of every other target. */
export interface BenchActivity {
  id: string
  type: 'note'
  action: 'created'
  povId: string
  userId: string
  title: string
  message: string
  createdAt: string
  metadata: { sentAt: number }
}

/** Milliseconds since the epoch, with sub-millisecond precision, comparable across processes of one machine. */
export function now (): number {
  return performance.timeOrigin + performance.now()
}

/** An activity for `povId`, stamped now. */
export function benchActivity (seq: number, povId: string): BenchActivity {
  return {
    id: `a-${seq}`,
    type: 'note',
    action: 'created',
    povId,
    userId: 'u1',
    title: 'New note',
    message: 'Someone added a note to this PoV; open it to read the whole text.',
    createdAt: new Date().toISOString(),
    metadata: { sentAt: now() }
  }
}

/**
 * Cursors for the targets that have none of their own, shaped like the plugin's (`<epoch>.<seq in base 36>`), so
 * that every target sends frames of the same size.
 */
export function cursorMaker (): (seq: number) => string {
  const epoch = randomBytes(6).toString('base64url')
  return (seq) => `${epoch}.${seq.toString(36)}`
}

/** The `activity` message of the JSON targets, the same shape as the plugin's. */
export interface ActivityMessage {
  type: 'activity'
  cursor: string
  data: BenchActivity
}
