/**
 * `MockWebSocketProvider`: every hook below it talks to the in-memory mock server instead of a socket.
 */
import { useEffect, useState, type ReactNode } from 'react'
import { PovRealtimeProvider } from '../provider.js'
import { mockServer, type MockClientOptions } from './mock-server.js'

export interface MockWebSocketProviderProps {
  children?: ReactNode
  /**
   * The mock client's options: limits and timeouts (`activityLimit`, `optimisticTimeout`, `maxQueuedMessages`,
   * `linger`, `idleTimeout`, `typingInterval`, `typingExpiry`), `persist` (default `false`), `timers`, `document`, and
   * `userId` (default `'test-user'`).
   */
  options?: MockClientOptions
}

/**
 * Renders `children` with a mock connection: `useWebSocket`, `usePovActivities`, `usePresence`, `useTyping`,
 * `useReadReceipts` and the other hooks run unchanged, with no socket and no fetch. It starts `connected`; drive it with
 * `simulateConnectionStatus` and `simulateWebSocketMessage`, and read what the components sent with `getSentMessages`.
 */
export function MockWebSocketProvider ({ children, options }: MockWebSocketProviderProps) {
  // One client per mounted provider, made once (the options of the first render apply).
  const [client] = useState(() => mockServer.createClient(options))
  useEffect(() => mockServer.register(client), [client])
  return <PovRealtimeProvider client={client}>{children}</PovRealtimeProvider>
}
