/**
 * What an idle authenticated connection costs the server (heap + external, after full collections, each socket
 * subscribed to one PoV), against plain `ws` measured the same way in the same process: a ratio, not an absolute, so
 * that a dependency update (or a change here) that brings back a per-socket copy of the upgrade request, or doubles
 * the session, fails here. The bound is generous (the machine is shared and the figures noisy); docs/benchmarks.md
 * has the measured figures. The clients run in a child process so that only the server's memory is counted.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { WebSocketServer, type WebSocket } from 'ws'
import { exposeGc } from '../helpers/resources.js'
import Fastify from 'fastify'
import povRealtime from '../../index.js'
import { SECRET, socketToken } from '../helpers/server.js'

/**
 * Measured here: 1.16–1.18 (3.81–3.89 KiB against 3.28–3.30, with no `authorizeSubscription`, so no view of the
 * request is kept; plain ws's figure moves most from run to run); 1.31 (4.3 KiB) before the session's parts were
 * trimmed, and 2.9–3.0 (9 KiB) before the upgrade request was let go. A doubling of the plugin's cost, or the request
 * kept again (about 4 KiB), fails.
 */
const MAX_RATIO = 2
const WARM_UP = 25
const MEASURED = 250
const POVS = 25

/** The clients: connect `count` sockets one after the other, subscribe each, then report and wait. */
const CLIENTS = `
import WebSocket from 'ws'
async function open (url, protocols, povId) {
  const ws = new WebSocket(url, protocols)
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject) })
  await new Promise((resolve) => { ws.once('message', resolve); ws.send(JSON.stringify({ type: 'subscribe', povId })) })
  return ws
}
globalThis.sockets = []
process.on('message', async ({ url, protocols, count, first, povs }) => {
  for (let i = 0; i < count; i += 25) {
    const batch = protocols.slice(i, i + 25).map((offer, k) => open(url, offer ?? undefined, 'p' + ((first + i + k) % povs)))
    globalThis.sockets.push(...await Promise.all(batch))
  }
  process.send('done')
})
process.on('disconnect', () => process.exit(0))
`

function startClients (): ChildProcess {
  return spawn(process.execPath, ['--input-type=module', '-e', CLIENTS], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], cwd: process.cwd() })
}

async function connectClients (child: ChildProcess, url: string, protocols: Array<string[] | undefined>, first: number): Promise<void> {
  child.send({ url, protocols, count: protocols.length, first, povs: POVS })
  const [answer] = await once(child, 'message') as [string]
  if (answer !== 'done') throw new Error(`clients answered ${answer}`)
}

async function memory (gc: () => void): Promise<number> {
  for (let pass = 0; pass < 4; pass++) {
    gc()
    await sleep(20)
  }
  const { heapUsed, external } = process.memoryUsage()
  return heapUsed + external
}

/** A server under measurement: where to connect, how to offer the token of client `i`, and how to stop it. */
interface Measured {
  url: string
  protocols (i: number): string[] | undefined
  close (): Promise<void>
}

/**
 * Bytes per idle connection: memory after `MEASURED` more connections, over memory after the warm-up ones. Each
 * measurement has a server of its own, closed at the end, so that nothing of an earlier one is still being freed.
 */
async function perConnection (gc: () => void, start: () => Promise<Measured>): Promise<number> {
  const server = await start()
  const child = startClients()
  try {
    await connectClients(child, server.url, Array.from({ length: WARM_UP }, (_, i) => server.protocols(i)), 0)
    const before = await memory(gc)
    await connectClients(child, server.url, Array.from({ length: MEASURED }, (_, i) => server.protocols(WARM_UP + i)), WARM_UP)
    const after = await memory(gc)
    return (after - before) / MEASURED
  } finally {
    child.kill()
    await once(child, 'exit')
    await server.close()
  }
}

/** Plain ws as the benchmark's yardstick runs it: a topic index, a Set of PoVs per socket. */
async function startPlainWs (): Promise<Measured> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 })
  await once(wss, 'listening')
  const byPov = new Map<string, Set<WebSocket>>()
  wss.on('connection', (ws) => {
    const watched = new Set<string>()
    ws.on('message', (data: Buffer) => {
      const { povId } = JSON.parse(data.toString()) as { povId: string }
      let subscribers = byPov.get(povId)
      if (!subscribers) byPov.set(povId, subscribers = new Set())
      subscribers.add(ws)
      watched.add(povId)
      ws.send(JSON.stringify({ type: 'subscribed', povId }))
    })
    ws.on('close', () => { for (const povId of watched) byPov.get(povId)?.delete(ws) })
  })
  return {
    url: `ws://127.0.0.1:${(wss.address() as { port: number }).port}`,
    protocols: () => undefined,
    close: () => new Promise<void>((resolve) => {
      for (const client of wss.clients) client.terminate()
      wss.close(() => resolve())
    })
  }
}

/** The plugin with its defaults and no logger, as the benchmark runs it (the test harness's logger keeps every line). */
async function startPlugin (tokens: readonly string[]): Promise<Measured> {
  const app = Fastify({ logger: false })
  await app.register(povRealtime, { secret: SECRET })
  await app.listen({ host: '127.0.0.1', port: 0 })
  return {
    url: `ws://127.0.0.1:${(app.server.address() as { port: number }).port}/ws`,
    protocols: (i) => ['pov-realtime.v1', `bearer.${tokens[i]!}`],
    close: () => app.close()
  }
}

t.test(`an idle authenticated connection costs at most ${MAX_RATIO}× plain ws (heap + external)`, async (t) => {
  const gc = exposeGc()
  if (!gc) return t.pass('memory', { skip: 'gc() could not be exposed in this process' })
  const tokens = Array.from({ length: WARM_UP + MEASURED }, (_, i) => socketToken({ userId: `u${i}`, sub: `u${i}` }))
  const plugin = () => perConnection(gc, () => startPlugin(tokens))
  const plain = () => perConnection(gc, startPlainWs)
  // Once each first, so that what either compiles or allocates once is there before the measured runs.
  await plain()
  await plugin()
  // Two measured rounds each, alternating: one round's figure moves by ±20 % on a shared machine.
  const rounds: Array<{ ws: number, plugin: number }> = []
  for (let round = 0; round < 2; round++) rounds.push({ ws: await plain(), plugin: await plugin() })
  const wsBytes = (rounds[0]!.ws + rounds[1]!.ws) / 2
  const pluginBytes = (rounds[0]!.plugin + rounds[1]!.plugin) / 2
  const ratio = pluginBytes / wsBytes
  t.comment(`per idle connection: plugin ${(pluginBytes / 1024).toFixed(2)} KiB, plain ws ${(wsBytes / 1024).toFixed(2)} KiB, ratio ${ratio.toFixed(2)}`)
  t.ok(wsBytes > 1024, `the measurement sees plain ws's sockets (${Math.round(wsBytes)} B each)`)
  t.ok(ratio <= MAX_RATIO, `plugin ÷ plain ws = ${ratio.toFixed(2)} ≤ ${MAX_RATIO}`)
})
