/**
 * The example's "database": activities per PoV. In memory for the tests; `npm start` opens it on a git-ignored file
 * (`example/.data/activities.json`), written after each post, so that after a restart everyone, whether they kept
 * the page open or came afterwards, sees the same items. A real app keeps them in its own database.
 */
import { mkdirSync, renameSync, writeFileSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { dirname } from 'node:path'

/**
 * @typedef {import('fastify-pov-realtime').Activity} Activity
 */

export class ActivityStore {
  /** @type {Map<string, Activity[]>} */
  #byPov = new Map()
  #maxPerPov
  /** @type {string | undefined} */
  #file

  /**
   * @param {object} [options]
   * @param {number} [options.maxPerPov=200] activities kept per PoV (the oldest go first)
   * @param {string} [options.file] where each change is written (see {@link ActivityStore.open}); none: memory only
   */
  constructor ({ maxPerPov = 200, file } = {}) {
    this.#maxPerPov = maxPerPov
    this.#file = file
  }

  /**
   * A store kept in `file`: what the file holds now (nothing if it does not exist yet), and every post written to it.
   * @param {string} file
   * @param {{ maxPerPov?: number }} [options]
   * @returns {Promise<ActivityStore>}
   */
  static async open (file, options = {}) {
    const store = new ActivityStore({ ...options, file })
    let text
    try {
      text = await readFile(file, 'utf8')
    } catch (err) {
      if (err.code !== 'ENOENT') throw err
      return store
    }
    let saved
    try {
      saved = JSON.parse(text)
    } catch (err) {
      throw new Error(`${file} is not the JSON this store writes (${err.message}): delete it to start afresh`)
    }
    for (const [povId, activities] of Object.entries(saved.activitiesByPov ?? {})) {
      store.#byPov.set(povId, activities.slice(-store.#maxPerPov))
    }
    return store
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
    this.#save()
  }

  /**
   * Writes the whole store (a few hundred activities at most) to a temporary file renamed over the old one: a stop
   * in the middle of a write leaves the previous version, never half a file. Synchronous, so writes keep their order.
   */
  #save () {
    if (!this.#file) return
    mkdirSync(dirname(this.#file), { recursive: true })
    const temporary = `${this.#file}.${process.pid}.tmp`
    writeFileSync(temporary, JSON.stringify({ activitiesByPov: Object.fromEntries(this.#byPov) }))
    renameSync(temporary, this.#file)
  }
}
