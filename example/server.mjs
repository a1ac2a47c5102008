/**
 * `npm start`: bundles the page and serves the example app, then says in one plain line what to open.
 * Environment: `PORT` (default 3000), `HOST` (default 127.0.0.1), `JWT_SECRET` (default: the dev secret kept in
 * `example/.data/dev-secret`, made at the first start), `EXAMPLE_DATA_DIR` (default `example/.data/`: the dev secret
 * and the posted activities, both kept across restarts), `LOG_LEVEL` (default `warn`; `info` logs every request).
 */
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { ActivityStore } from './activity-store.mjs'
import { startExampleServer } from './app.mjs'
import { loadOrCreateDevSecret } from './dev-secret.mjs'

const port = Number(process.env.PORT ?? 3000)
const host = process.env.HOST ?? '127.0.0.1'
const dataDir = process.env.EXAMPLE_DATA_DIR || fileURLToPath(new URL('./.data/', import.meta.url))
/** `path` as the user would type it: relative to where they ran `npm start` when under it. */
const shown = (path) => {
  const fromHere = relative(process.cwd(), path)
  return fromHere && !fromHere.startsWith('..') ? fromHere : path
}

let secret = process.env.JWT_SECRET
if (!secret) {
  const secretFile = join(dataDir, 'dev-secret')
  const devSecret = await loadOrCreateDevSecret(secretFile)
  secret = devSecret.secret
  console.log(`Sign-ins use the dev secret ${devSecret.created ? 'just made in' : 'kept in'} ${shown(secretFile)} ` +
    '(set JWT_SECRET to use your own): they outlive a restart.')
}
const storeFile = join(dataDir, 'activities.json')
const store = await ActivityStore.open(storeFile)

let server
try {
  server = await startExampleServer({ port, host, secret, store, logger: { level: process.env.LOG_LEVEL ?? 'warn' } })
} catch (err) {
  if (err.code !== 'EADDRINUSE' && err.code !== 'EADDRNOTAVAIL' && err.code !== 'EACCES') throw err
  const why = err.code === 'EADDRINUSE'
    ? `port ${port} is already in use (another "npm start"?). Stop that server, or set PORT to a free port: PORT=${port + 1} npm start`
    : err.code === 'EACCES'
      ? `this user may not listen on port ${port}. Set PORT to a port above 1023: PORT=3000 npm start`
      : `${host} is not an address of this machine. Set HOST to one that is: HOST=127.0.0.1 npm start`
  console.error(`Cannot start the example app: ${why}`)
  process.exit(1)
}

console.log(`Posted activities are kept in ${shown(storeFile)}.`)
console.log(`\nOpen ${server.url} in a normal and a private window, and sign in as two users.\n`)

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    server.app.close().then(() => process.exit(0), (err) => {
      server.app.log.error({ err }, 'shutdown failed')
      process.exit(1)
    })
  })
}
