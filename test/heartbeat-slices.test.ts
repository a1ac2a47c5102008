/**
 * With more sockets than one slice of the heartbeat takes (HEARTBEAT_SLICE_SOCKETS), the pings are spread over the
 * interval: every socket is still pinged about once per interval, each ping with bytes of its own, a healthy peer
 * stays, and a deaf one among them is still cut.
 */
import t from 'tap'
import WebSocket from 'ws'
import { HEARTBEAT_SLICE_SOCKETS } from '../lib/constants.js'
import { sleep, socketToken, startServer, waitFor } from './helpers/server.js'
import { closed, within } from './helpers/socket-waits.js'

const SOCKETS = Math.floor(HEARTBEAT_SLICE_SOCKETS * 2.5)

interface Peer { ws: WebSocket, pings: Buffer[], pingTimes: number[], closed: Promise<{ code: number, reason: string }>, name: string }

function openPeer (url: string, userId: string, autoPong = true): Promise<Peer> {
  const ws = new WebSocket(url, ['pov-realtime.v1', `bearer.${socketToken({ userId, sub: userId })}`], { autoPong })
  const peer: Peer = {
    ws,
    pings: [],
    pingTimes: [],
    name: `socket of ${userId}`,
    closed: new Promise((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })))
  }
  ws.on('ping', (data: Buffer) => {
    peer.pings.push(Buffer.from(data))
    peer.pingTimes.push(Date.now())
  })
  return within(new Promise<Peer>((resolve, reject) => {
    ws.once('open', () => resolve(peer))
    ws.once('error', reject)
  }), 20_000, `${peer.name} to open`)
}

t.test(`${SOCKETS} sockets: every one pinged about once per interval, in slices; a deaf one is cut`, async (t) => {
  const heartbeatInterval = 1500
  const server = await startServer(t, { heartbeatInterval })
  const peers: Peer[] = []
  for (let i = 0; i < SOCKETS; i += 50) {
    peers.push(...await Promise.all(Array.from({ length: Math.min(50, SOCKETS - i) }, (_, k) => openPeer(server.wsUrl, `u${i + k}`))))
  }
  t.teardown(() => { for (const peer of peers) peer.ws.terminate() })
  const deaf = await openPeer(server.wsUrl, 'deaf', false)
  t.teardown(() => deaf.ws.terminate())
  await waitFor(() => server.app.povRealtime.stats().connections === SOCKETS + 1, 10_000, 'every socket to be open')
  const watchFrom = Date.now()

  const { code } = await closed(deaf, { within: heartbeatInterval * 4 })
  t.equal(code, 1006, 'the deaf socket is terminated')
  await sleep(heartbeatInterval * 2)
  const watched = Date.now() - watchFrom
  t.ok(peers.every((peer) => peer.ws.readyState === WebSocket.OPEN), 'every healthy socket is still open')
  const counts = peers.map((peer) => peer.pingTimes.filter((at) => at >= watchFrom).length)
  const expected = watched / heartbeatInterval
  t.ok(Math.min(...counts) >= Math.floor(expected) - 1 && Math.max(...counts) <= Math.ceil(expected) + 1,
    `each socket pinged about once per interval (${Math.min(...counts)}–${Math.max(...counts)} pings in ${watched} ms)`)
  const firstPings = peers.map((peer) => peer.pingTimes[0]!)
  t.ok(Math.max(...firstPings) - Math.min(...firstPings) >= heartbeatInterval / 4,
    'the pings are spread over the interval, not sent all at once')
  const payloads = new Set(peers.map((peer) => peer.pings.at(-1)!.toString('hex')))
  t.equal(payloads.size, SOCKETS, 'each ping carries bytes of its own')
  t.equal(server.app.povRealtime.stats().connections, SOCKETS)
})

t.test('sockets that arrive after a quiet spell: the slices keep pace, and a deaf one among them is cut within two intervals of its open', async (t) => {
  // The first slice ran with no socket (one slice per interval planned); then enough sockets for three slices arrive
  // at once, the deaf one last. Its round must still end within an interval, not an interval and two thirds.
  const heartbeatInterval = 4000
  const server = await startServer(t, { heartbeatInterval })
  const peers: Peer[] = []
  t.teardown(() => { for (const peer of peers) peer.ws.terminate() })
  for (let i = 0; i < SOCKETS; i += 50) {
    peers.push(...await Promise.all(Array.from({ length: Math.min(50, SOCKETS - i) }, (_, k) => openPeer(server.wsUrl, `u${i + k}`))))
  }
  const deaf = await openPeer(server.wsUrl, 'deaf', false)
  t.teardown(() => deaf.ws.terminate())
  const openedAt = Date.now()

  const { code } = await closed(deaf, { within: heartbeatInterval * 4 })
  const cutAfter = Date.now() - openedAt
  t.equal(code, 1006, 'the deaf socket is terminated')
  t.ok(cutAfter <= 2 * heartbeatInterval + 1000, `within two intervals of its open (${cutAfter} ms, interval ${heartbeatInterval} ms)`)
  t.ok(peers.every((peer) => peer.ws.readyState === WebSocket.OPEN), 'the healthy sockets stay open')
})
