// Types of activity-store.mjs, for the TypeScript tests.
import type { Activity } from 'fastify-pov-realtime'

/** The example's activity "database": in memory, or kept in a file by `ActivityStore.open`. */
export declare class ActivityStore {
  constructor (options?: { maxPerPov?: number, file?: string })
  static open (file: string, options?: { maxPerPov?: number }): Promise<ActivityStore>
  list (povId: string, limit?: number): Activity[]
  has (povId: string, id: string): boolean
  add (activity: Activity): void
}
