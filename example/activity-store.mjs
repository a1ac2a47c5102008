/**
 * The example's "database": activities per PoV, in memory. A real app keeps them in its own database, which
 * outlives a restart of the web server; the end-to-end test mimics that by handing the same store to the restarted
 * server.
 */

/** The PoVs (points of view: a project, a ticket, a document) a signed-in user may pick. */
export const DEMO_POVS = Object.freeze([
  { id: 'launch', name: 'Product launch' },
  { id: 'billing-migration', name: 'Billing migration' },
  { id: 'support', name: 'Support desk' }
])

/**
 * @typedef {import('fastify-pov-realtime').Activity} Activity
 */

export class ActivityStore {
  /** @type {Map<string, Activity[]>} */
  #byPov = new Map()
  #maxPerPov

  /**
   * @param {object} [options]
   * @param {number} [options.maxPerPov=200] activities kept per PoV (the oldest go first)
   */
  constructor ({ maxPerPov = 200 } = {}) {
    this.#maxPerPov = maxPerPov
  }

  /**
   * The latest activities of a PoV, oldest first (the order the hooks use).
   * @param {string} povId
   * @param {number} [limit=50]
   * @returns {Activity[]}
   */
  list (povId, limit = 50) {
    return (this.#byPov.get(povId) ?? []).slice(-limit)
  }

  /**
   * @param {string} povId
   * @param {string} id
   */
  has (povId, id) {
    return (this.#byPov.get(povId) ?? []).some((activity) => activity.id === id)
  }

  /** @param {Activity} activity */
  add (activity) {
    const activities = this.#byPov.get(activity.povId) ?? []
    activities.push(activity)
    if (activities.length > this.#maxPerPov) activities.shift()
    this.#byPov.set(activity.povId, activities)
  }
}
