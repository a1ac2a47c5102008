import Fastify from 'fastify'
import t from 'tap'
import povRealtime from '../index.js'
import { SECRET, activity, startServer } from './helpers/server.js'
import { closed } from './helpers/socket-waits.js'

t.test('broadcastActivity after fastify.close() rejects with POV_REALTIME_CLOSED and reaches no one', async (t) => {
  const app = Fastify()
  await app.register(povRealtime, { secret: SECRET })
  await app.ready()
  await app.close()
  await t.rejects(app.broadcastActivity(activity()), { code: 'POV_REALTIME_CLOSED', statusCode: 503 })
  t.equal(app.povRealtime.stats().broadcasts, 0)
})

t.test('a broadcast made while sockets are being closed for shutdown is refused, not half-delivered', async (t) => {
  let during: Promise<unknown> | undefined
  const server = await startServer(t, {}, undefined, (app) => {
    // Added after the plugin's own preClose hook (hooks run in registration order): the sockets are closing.
    app.addHook('preClose', async () => { during = app.broadcastActivity(activity('p1')) })
  })
  const client = await server.connect()
  await client.subscribe('p1')
  await server.app.close()
  await t.rejects(during!, { code: 'POV_REALTIME_CLOSED' })
  t.equal((await closed(client)).code, 1001)
  t.same(client.activities(), [], 'the subscriber got nothing after the shutdown began')
})
