/**
 * One client per socket URL, shared by every component that uses it, so that however many components use the
 * hooks there is one socket. Idle clients hold no socket and no timer; they stay here to be reused.
 */
import { CLIENT_DEFAULTS, type RealtimeClientOptions } from './client-options.js'
import { RealtimeClient } from './realtime-client.js'

const clients = new Map<string, RealtimeClient>()

/**
 * The shared client of `options.socketUrl` (default `'/ws'`), created with `options` on first use; later calls with
 * the same URL get that client whatever their other options say.
 */
export function getSharedClient (options: RealtimeClientOptions = {}): RealtimeClient {
  const key = options.socketUrl ?? CLIENT_DEFAULTS.socketUrl
  let client = clients.get(key)
  if (!client) {
    client = new RealtimeClient(options)
    clients.set(key, client)
  }
  return client
}
