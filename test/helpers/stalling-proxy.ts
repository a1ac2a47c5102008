/**
 * A TCP proxy on a loopback port that can make chosen connections lag: it holds back what the server sends to
 * them (nothing is lost or closed) until released. With Redis behind it, holding the connections that named
 * themselves `pov-realtime:subscriber` delays an instance's pub/sub traffic while its commands still get through.
 */
import net from 'node:net'
import type { Teardown } from './server.js'

export interface StallingProxy {
  readonly port: number
  /** From now on, hold the server's data to connections whose client has sent something containing `marker`. */
  hold (marker: string): void
  /** Sends everything held and stops holding. */
  release (): void
}

interface Connection {
  readonly client: net.Socket
  readonly upstream: net.Socket
  /** What the client has sent so far (only kept until a marker may have been seen). */
  sent: string
  held: Buffer[] | undefined
}

/** Starts a proxy to `127.0.0.1:targetPort`; it closes at teardown. */
export async function startStallingProxy (t: Teardown, targetPort: number): Promise<StallingProxy> {
  const connections = new Set<Connection>()
  let marker: string | undefined

  const holds = (connection: Connection) => marker !== undefined && connection.sent.includes(marker)

  const server = net.createServer((client) => {
    const upstream = net.connect(targetPort, '127.0.0.1')
    const connection: Connection = { client, upstream, sent: '', held: undefined }
    connections.add(connection)
    client.on('data', (chunk) => {
      if (connection.sent.length < 4096) connection.sent += chunk.toString('latin1')
      upstream.write(chunk)
    })
    upstream.on('data', (chunk) => {
      if (connection.held || holds(connection)) (connection.held ??= []).push(chunk)
      else client.write(chunk)
    })
    const close = () => {
      connections.delete(connection)
      client.destroy()
      upstream.destroy()
    }
    for (const socket of [client, upstream]) {
      socket.on('close', close)
      socket.on('error', () => {})
    }
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => {
    for (const connection of connections) {
      connection.client.destroy()
      connection.upstream.destroy()
    }
    await new Promise<void>((resolve) => server.close(() => resolve()))
  })
  return {
    port: (server.address() as net.AddressInfo).port,
    hold (newMarker) {
      marker = newMarker
    },
    release () {
      marker = undefined
      for (const connection of connections) {
        const held = connection.held
        connection.held = undefined
        for (const chunk of held ?? []) connection.client.write(chunk)
      }
    }
  }
}
