/**
 * The secret `npm start` signs sign-ins with when `JWT_SECRET` is not set: made once, kept in a git-ignored file
 * (`example/.data/dev-secret`), and read again at every start, so that stopping and starting the server keeps everyone
 * signed in (the quick start's restart story). A real deployment sets `JWT_SECRET` from its secret store instead.
 */
import { randomBytes } from 'node:crypto'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { dirname } from 'node:path'

/** A secret shorter than this in the file is refused: someone edited it by hand, and it would be easy to guess. */
const MIN_SECRET_LENGTH = 32

/**
 * The secret kept in `file`, or a new random one written there (readable by the owner only) when there is none.
 * @param {string} file
 * @returns {Promise<{ secret: string, created: boolean }>}
 */
export async function loadOrCreateDevSecret (file) {
  let kept
  try {
    kept = (await readFile(file, 'utf8')).trim()
  } catch (err) {
    if (err.code !== 'ENOENT') throw err
  }
  if (kept !== undefined) {
    if (kept.length < MIN_SECRET_LENGTH) {
      throw new Error(`${file} holds a secret shorter than ${MIN_SECRET_LENGTH} characters: delete the file to make a new one`)
    }
    return { secret: kept, created: false }
  }
  const secret = randomBytes(32).toString('base64url')
  await mkdir(dirname(file), { recursive: true })
  // `wx`: if another start wrote the file in the meantime, this fails rather than replacing a secret in use.
  await writeFile(file, `${secret}\n`, { mode: 0o600, flag: 'wx' })
  return { secret, created: true }
}
