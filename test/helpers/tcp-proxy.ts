/**
 * A TCP proxy on a loopback port, to break the network between a client and a server on purpose: cut every
 * connection (and refuse new ones), freeze the live ones (a half-open network: nothing passes, nothing closes),
 * or point new connections at another server (a restart on "the same address").
 */
import net from 'node:net'
import type { Teardown } from './server.js'

export interface TcpProxy {
  readonly port: number
  /** `http://127.0.0.1:<port>` */
  readonly httpUrl: string
  /** `ws://127.0.0.1:<port><path>` */
  wsUrl (path?: string): string
  /** Resets every live connection and refuses new ones, until `restore()`. */
  cut (): void
  /** Accepts and forwards new connections again. */
  restore (): void
  /** From now on the live connections pass nothing either way and never close; new ones work normally. */
  freeze (): void
  /** New connections go to `port` from now on. */
  retarget (port: number): void
  /** Connections being forwarded now. */
  readonly liveConnections: number
  close (): Promise<void>
}

interface Pair {
  client: net.Socket
  upstream: net.Socket
  frozen: boolean
}

/** Starts a proxy to `127.0.0.1:targetPort`; it closes at teardown. */
export async function startTcpProxy (t: Teardown, targetPort: number): Promise<TcpProxy> {
  let target = targetPort
  let refusing = false
  const pairs = new Set<Pair>()

  const destroy = (pair: Pair) => {
    pairs.delete(pair)
    pair.client.destroy()
    pair.upstream.destroy()
  }

  const server = net.createServer((client) => {
    if (refusing) {
      client.resetAndDestroy()
      return
    }
    const upstream = net.connect(target, '127.0.0.1')
    const pair: Pair = { client, upstream, frozen: false }
    pairs.add(pair)
    const forward = (from: net.Socket, to: net.Socket) => {
      from.on('data', (chunk) => { if (!pair.frozen) to.write(chunk) })
      from.on('close', () => { if (!pair.frozen) destroy(pair) })
      from.on('error', () => {})
    }
    forward(client, upstream)
    forward(upstream, client)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as net.AddressInfo).port

  const proxy: TcpProxy = {
    port,
    httpUrl: `http://127.0.0.1:${port}`,
    wsUrl: (path = '/ws') => `ws://127.0.0.1:${port}${path}`,
    cut () {
      refusing = true
      for (const pair of [...pairs]) {
        pairs.delete(pair)
        pair.client.resetAndDestroy()
        pair.upstream.resetAndDestroy()
      }
    },
    restore () {
      refusing = false
    },
    freeze () {
      for (const pair of pairs) pair.frozen = true
    },
    retarget (newPort) {
      target = newPort
    },
    get liveConnections () {
      return [...pairs].filter((pair) => !pair.frozen).length
    },
    async close () {
      for (const pair of [...pairs]) destroy(pair)
      await new Promise<void>((resolve) => server.close(() => resolve()))
    }
  }
  t.teardown(() => proxy.close())
  return proxy
}
