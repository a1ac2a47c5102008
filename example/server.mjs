/**
 * `npm start`: bundles the page and serves the example app.
 * Environment: `PORT` (default 3000), `HOST` (default 127.0.0.1), `JWT_SECRET` (default: a random one per run).
 */
import { randomBytes } from 'node:crypto'
import { startExampleServer } from './app.mjs'

const port = Number(process.env.PORT ?? 3000)
const host = process.env.HOST ?? '127.0.0.1'
const secret = process.env.JWT_SECRET || randomBytes(32).toString('base64url')

const { app, url } = await startExampleServer({ port, host, secret, logger: { level: process.env.LOG_LEVEL ?? 'info' } })
if (!process.env.JWT_SECRET) {
  app.log.info('JWT_SECRET is not set: generated a random secret for this run (sign-ins end when the server stops)')
}
app.log.info(`example app: open ${url} in two tabs, sign in as two users, pick the same PoV`)

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    app.close().then(() => process.exit(0), (err) => {
      app.log.error({ err }, 'shutdown failed')
      process.exit(1)
    })
  })
}
