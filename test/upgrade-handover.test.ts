/**
 * Once a socket is open, its upgrade request is let go (lib/socket/upgrade-handover.ts): nothing of the socket keeps
 * the FastifyRequest, and `authorizeSubscription` gets a small view of it instead. The first test guards the private
 * part, @fastify/websocket's per-socket `error` listener that the plugin removes: an update that changes it fails here.
 */
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import type { FastifyRequest } from 'fastify'
import type { UpgradeRequestView } from '../index.js'
import { exposeGc } from './helpers/resources.js'
import { activity, startServer } from './helpers/server.js'

const KEPT_REQUEST_WARNING = 'each socket keeps its upgrade request in memory'

t.test('@fastify/websocket adds the per-socket error listener the plugin removes, with the shape it expects', async (t) => {
  const source = readFileSync(createRequire(import.meta.url).resolve('@fastify/websocket'), 'utf8')
  // One listener per socket, taking the error alone, closing over the request and reply: what releaseUpgrade removes.
  t.match(source, /handleUpgrade\(request\.raw, socket => \{[^]*?socket\.on\('error', \(error\) => \{\s*errorHandler\.call\(this, error, socket, request, reply\)\s*\}\)/,
    'the listener is added in the upgrade callback, before the route handler runs')
  t.equal(source.match(/socket\.on\('error', \(error\) =>/g)?.length, 1, 'and it is the only such listener')
})

t.test('once a socket is open, its upgrade request can be collected, and the socket works', async (t) => {
  const gc = exposeGc()
  if (!gc) return t.pass('memory', { skip: 'gc() could not be exposed in this process' })
  const requests: Array<WeakRef<object>> = []
  const server = await startServer(t, {}, (app) => {
    app.addHook('onRequest', async (request: FastifyRequest) => {
      if (request.headers.upgrade) requests.push(new WeakRef(request), new WeakRef(request.raw))
    })
  })
  const clients = [await server.connect({ claims: { userId: 'u1' } }), await server.connect({ claims: { userId: 'u2' } })]
  for (const client of clients) t.match(await client.subscribe('p1'), { type: 'subscribed', povId: 'p1' })
  t.equal(requests.length, 4, 'two upgrades seen')
  for (let pass = 0; pass < 4; pass++) {
    gc()
    await sleep(10)
  }
  t.same(requests.map((ref) => ref.deref() === undefined), [true, true, true, true],
    'neither the FastifyRequest nor the raw request of an open socket is kept')
  t.notOk(server.logs.some((line) => line.includes(KEPT_REQUEST_WARNING)), 'no warning that the listener was not found')
  t.equal((await server.app.broadcastActivity(activity('p1', { id: 'a1' }))).delivered, 2)
  for (const client of clients) t.match(await client.next('activity'), { data: { id: 'a1' } }, 'the sockets still receive')
})

t.test('requestDecorators carries the named decorations of the upgrade request into authorizeSubscription\'s view', async (t) => {
  const seen: UpgradeRequestView[] = []
  const server = await startServer(t, {
    requestDecorators: ['tenant'],
    authorizeSubscription (_user, povId, request) {
      seen.push(request)
      return povId.startsWith(`${String(request.tenant)}:`)
    }
  }, (app) => {
    app.decorateRequest('tenant', '')
    app.decorateRequest('secretThing', '')
    app.addHook('onRequest', async (request: FastifyRequest) => {
      const decorated = request as FastifyRequest & { tenant: string, secretThing: string }
      decorated.tenant = String(request.headers['x-tenant'] ?? 'none')
      decorated.secretThing = 'not declared'
    })
  })
  const client = await server.connect({ headers: { 'x-tenant': 'acme' } })
  t.match(await client.subscribe('acme:p1'), { type: 'subscribed', povId: 'acme:p1' }, 'the decoration decides')
  t.match(await client.subscribe('other:p1'), { type: 'error', code: 'FORBIDDEN', povId: 'other:p1' })
  t.equal(seen[0]!.tenant, 'acme')
  t.notOk('secretThing' in seen[0]!, 'a decoration not named is not carried')
  t.equal(seen[0], seen[1], 'one view per socket, the same at every check')
})

t.test('requestDecorators is checked at registration', async (t) => {
  for (const [value, message] of [
    ['tenant', /requestDecorators must be an array/],
    [['tenant', ''], /requestDecorators must be an array/],
    [['headers'], /cannot name 'headers'/]
  ] as const) {
    await t.rejects(startServer(t, { requestDecorators: value as unknown as string[] }), { code: 'POV_REALTIME_INVALID_OPTION', message }, JSON.stringify(value))
  }
})

t.test('when the socket has other error listeners than the one expected, nothing is removed: a warning, and the socket works', async (t) => {
  const server = await startServer(t, {}, undefined, (app) => {
    // An app watching every connection of the WebSocket server adds its own error listener before the plugin's route.
    app.websocketServer.on('connection', (ws: { on (event: 'error', listener: () => void): void }) => ws.on('error', () => {}))
  })
  const clients = [await server.connect({ claims: { userId: 'u1' } }), await server.connect({ claims: { userId: 'u2' } })]
  for (const client of clients) t.match(await client.subscribe('p1'), { type: 'subscribed', povId: 'p1' })
  t.equal(server.logs.filter((line) => line.includes(KEPT_REQUEST_WARNING)).length, 1, 'one warning, not one per socket')
  t.equal((await server.app.broadcastActivity(activity('p1', { id: 'a1' }))).delivered, 2, 'the sockets work as before')
  for (const client of clients) t.match(await client.next('activity'), { data: { id: 'a1' } })
})
