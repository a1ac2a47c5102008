/**
 * What presence leaves behind and what it gives up first: once every socket has gone the instance holds no member,
 * no timer and no socket; for a client that reads too slowly, presence and typing are dropped before activities are,
 * and the client is healed with a full snapshot once it reads again.
 */
import { createHook } from 'node:async_hooks'
import v8 from 'node:v8'
import vm from 'node:vm'
import t from 'tap'
import type { WebSocket } from 'ws'
import { PRESENCE_HEAL_DELAY_MS } from '../lib/constants.js'
import type { Member } from '../types/messages.js'
import { settle } from './helpers/presence.js'
import { RawWebSocket } from './helpers/raw-socket.js'
import { activity, sleep, startServer, waitFor } from './helpers/server.js'
import { connectAs } from './helpers/members.js'

v8.setFlagsFromString('--expose-gc')
const gc = vm.runInNewContext('gc') as () => void

/** Timers created by the presence code, by async id, while the hook is on: those not yet cleared or fired. */
function trackPresenceTimers (): { live: Map<number, string>, created: () => number, stop: () => void } {
  const live = new Map<number, string>()
  let created = 0
  const hook = createHook({
    init (asyncId, type) {
      if (type !== 'Timeout') return
      const stack = new Error().stack ?? ''
      if (!/(pov-presence|typing-indicators|presence-feature)\.[jt]s/.test(stack)) return
      created++
      live.set(asyncId, stack)
    },
    destroy (asyncId) { live.delete(asyncId) }
  }).enable()
  return { live, created: () => created, stop: () => hook.disable() }
}

t.test('after every socket has gone, presence holds no member, no timer and no socket', async (t) => {
  const server = await startServer(t, { presence: { typingTimeout: 60_000 } })
  const timers = trackPresenceTimers()
  t.teardown(timers.stop)
  const serverSockets: Array<WeakRef<WebSocket>> = []
  server.app.websocketServer.on('connection', (ws: WebSocket) => serverSockets.push(new WeakRef(ws)))

  for (let round = 0; round < 3; round++) {
    const clients = await Promise.all(['u1', 'u1', 'u2', 'u3', 'u4'].map((userId) => connectAs(server, userId)))
    for (const [i, client] of clients.entries()) {
      await client.subscribe('p1')
      if (i % 2 === 0) await client.subscribe('p2')
    }
    clients[0]!.send({ type: 'typing', povId: 'p1', typing: true })
    clients[2]!.send({ type: 'typing', povId: 'p2', typing: true })
    clients[3]!.send({ type: 'status', status: 'idle' })
    await clients[4]!.next((m) => m.type === 'typing' && m.userId === 'u1')
    t.match(server.app.povRealtime.stats(), { connections: 5, povs: 2, presenceMembers: 4 + 3 }, `round ${round}: in use`)
    // Gone while typing and with diffs still pending: half cut, half closed cleanly.
    for (const [i, client] of clients.entries()) {
      if (i % 2 === 0) client.terminate()
      else client.close()
    }
    await waitFor(() => server.app.povRealtime.stats().connections === 0, 5000, 'every socket to be forgotten')
    // Sooner than a diff window: the diffs the leaves scheduled went with their PoVs, they are not merely due.
    await sleep(10)
    t.same([...timers.live.values()], [], `round ${round}: no presence timer is left`)
  }
  t.ok(timers.created() > 0, `the presence code made timers (${timers.created()}), so the check below means something`)
  t.match(server.app.povRealtime.stats(), { connections: 0, subscriptions: 0, povs: 0, presenceMembers: 0 })
  t.same(await server.app.povRealtime.presence('p1'), [])

  // Destroy hooks run asynchronously; collected sockets need a few collections.
  for (let i = 0; i < 10 && (timers.live.size > 0 || serverSockets.some((ref) => ref.deref())); i++) {
    await sleep(20)
    gc()
  }
  t.same([...timers.live.values()], [], 'no presence timer is left')
  t.equal(serverSockets.length, 15)
  t.equal(serverSockets.filter((ref) => ref.deref()).length, 0, 'every server-side socket was garbage-collected')
})

t.test('presence and typing are dropped first for a slow reader, activities are not, and a snapshot heals it', async (t) => {
  const maxBufferedBytes = 256 * 1024
  const server = await startServer(t, { presence: true, maxBufferedBytes, rateLimit: false })
  const typist = await connectAs(server, 'u2')
  await typist.subscribe('p1')
  const slow = await RawWebSocket.open(server.port, '/ws', await server.wsToken({ userId: 'slow' }))
  t.teardown(() => slow.destroy())
  slow.send({ type: 'subscribe', povId: 'p1' })
  await waitFor(() => slow.messages().some((m) => m.type === 'presence'), 5000, 'the slow peer\'s snapshot')
  slow.stopReading()

  const published: string[] = []
  let typing = false
  const stats = () => server.app.povRealtime.stats()
  while (stats().presenceDropped === 0 && stats().slowConsumerCloses === 0 && published.length < 8000) {
    for (let i = 0; i < 10; i++) {
      const input = activity('p1', { id: `a${published.length}`, message: 'x'.repeat(8 * 1024) })
      published.push(input.id)
      await server.app.broadcastActivity(input)
    }
    typing = !typing
    typist.send({ type: 'typing', povId: 'p1', typing })
    await typist.request({ type: 'ping' }, 'pong')
  }
  const dropping = server.app.povRealtime.stats()
  t.ok(dropping.presenceDropped > 0, `typing to the slow peer was dropped after ${published.length} activities of 8 KiB`)
  t.equal(dropping.slowConsumerCloses, 0, 'while its activities were still queued for it')

  const newcomer = await connectAs(server, 'u3')
  await newcomer.subscribe('p1')
  await settle(newcomer)
  t.ok(server.app.povRealtime.stats().presenceDropped > dropping.presenceDropped, 'the diff about the newcomer was dropped too')

  slow.socket.resume()
  const healed = (): Member[] | undefined => {
    const snapshots = slow.messages().filter((m) => m.type === 'presence')
    return snapshots.length > 1 ? snapshots.at(-1)!.members as Member[] : undefined
  }
  const deadline = Date.now() + PRESENCE_HEAL_DELAY_MS * 5
  while (!healed() && Date.now() < deadline) await sleep(100)
  t.same(healed()?.map((m) => m.userId).sort(), ['slow', 'u2', 'u3'], 'reading again, it gets a full snapshot with the newcomer')
  const activities = slow.messages().filter((m) => m.type === 'activity').map((m) => (m.data as { id: string }).id)
  t.same(activities, published, 'every activity reached it, in order')
  t.equal(server.app.povRealtime.stats().slowConsumerCloses, 0)
})
