/**
 * A free loopback port for a process the test starts itself (redis-server, HAProxy, nginx, the example app): asked
 * of the kernel by listening on port 0, then released.
 */
import { once } from 'node:events'
import net from 'node:net'

/** A free port on 127.0.0.1 (free when this resolves). */
export async function freePort (): Promise<number> {
  const server = net.createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as net.AddressInfo
  server.close()
  await once(server, 'close')
  return port
}
