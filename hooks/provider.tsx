/**
 * `PovRealtimeProvider`: the URLs and options for the hooks below it, or a client of the app's own.
 */
import { createContext, useContext, useMemo, type ReactNode } from 'react'
import type { RealtimeClientOptions } from './client/client-options.js'
import type { RealtimeClient } from './client/realtime-client.js'
import { getSharedClient } from './client/shared-clients.js'

interface RealtimeContextValue {
  readonly client: RealtimeClient | undefined
  readonly options: RealtimeClientOptions
}

const RealtimeContext = createContext<RealtimeContextValue>({ client: undefined, options: {} })

export interface PovRealtimeProviderProps {
  children?: ReactNode
  /** The token route. Default `'/api/auth/ws-token'` on the page's origin. */
  tokenUrl?: string
  /** The socket: a `ws(s)://` URL or a path on the page's origin. Default `'/ws'` (`wss:` on https pages). */
  socketUrl?: string
  /** The other client options (reconnection, ping, limits, …); see `RealtimeClientOptions`. */
  options?: RealtimeClientOptions
  /** A client the app made itself; the hooks below then use it and the other props are ignored. */
  client?: RealtimeClient
}

/**
 * Optional: sets the token URL, socket URL and client options for every hook below it. Without it the hooks work
 * same-origin with the defaults. Hooks with the same socket URL share one connection whichever provider they are under
 * (the first to create it decides its options).
 */
export function PovRealtimeProvider ({ children, tokenUrl, socketUrl, options, client }: PovRealtimeProviderProps) {
  const value = useMemo<RealtimeContextValue>(() => ({
    client,
    options: {
      ...options,
      ...(tokenUrl === undefined ? {} : { tokenUrl }),
      ...(socketUrl === undefined ? {} : { socketUrl })
    }
  }), [client, options, tokenUrl, socketUrl])
  return <RealtimeContext.Provider value={value}>{children}</RealtimeContext.Provider>
}

/** Where a hook may override the provider: the URLs. */
export interface ConnectionTarget {
  socketUrl?: string
  tokenUrl?: string
}

/**
 * The client the hooks of this component use: the provider's own client if it has one, else the shared client of
 * the socket URL (from `target`, else the provider, else `'/ws'`).
 */
export function useRealtimeClient (target?: ConnectionTarget): RealtimeClient {
  const { client, options } = useContext(RealtimeContext)
  if (client) return client
  if (target?.socketUrl === undefined && target?.tokenUrl === undefined) return getSharedClient(options)
  return getSharedClient({
    ...options,
    ...(target.socketUrl === undefined ? {} : { socketUrl: target.socketUrl }),
    ...(target.tokenUrl === undefined ? {} : { tokenUrl: target.tokenUrl })
  })
}
