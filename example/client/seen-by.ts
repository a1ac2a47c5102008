/**
 * Where "Seen by" goes: each reader is named once, under the newest activity their read mark reaches (the marks only
 * move forward, so everything older is read too). The viewer is never named (they know what they read), nor an
 * activity's author under it (they wrote it); such a reader is still placed, so they do not turn up further down.
 */
import type { Activity } from 'fastify-pov-realtime/hooks'

/**
 * @param newestFirst the feed as shown
 * @param readersOf `useReadReceipts(povId).readersOf`: who has read at least up to an activity
 * @param viewer the signed-in user
 * @returns the readers to name under each activity, by activity id (activities with none are left out)
 */
export function seenByPerActivity (
  newestFirst: readonly Activity[],
  readersOf: (activityId: string) => readonly string[],
  viewer: string
): Map<string, string[]> {
  const placed = new Set<string>([viewer])
  const named = new Map<string, string[]>()
  for (const activity of newestFirst) {
    const readers = readersOf(activity.id).filter((reader) => !placed.has(reader))
    for (const reader of readers) placed.add(reader)
    const shown = readers.filter((reader) => reader !== activity.userId)
    if (shown.length > 0) named.set(activity.id, shown)
  }
  return named
}
