/**
 * `fastify-pov-realtime/testing`: test doubles for components that use `fastify-pov-realtime/hooks`.
 * No runner's globals: works under tap, node:test, vitest and jest alike.
 *
 * ```tsx
 * render(<MockWebSocketProvider><MyComponent /></MockWebSocketProvider>)   // every hook inside talks to the mock
 * act(() => simulateConnectionStatus('disconnected'))
 * act(() => simulateWebSocketMessage({ type: 'activity', cursor: 'c1', data: { … } }))
 * getSentMessages()     // [{ type: 'subscribe', povId: 'p1' }, …]
 * resetWebSocketMock()  // between tests
 * ```
 */
import type { ServerMessage } from '../../types/messages.js'
import type { ConnectionStatus } from '../connection-machine.js'
import type { OutgoingMessage } from '../realtime-client.js'
import { useClientWebSocket, type UseWebSocketResult } from '../use-web-socket.js'
import { mockServer } from './mock-server.js'

export { MockWebSocketProvider } from './mock-provider.js'
export type { MockWebSocketProviderProps } from './mock-provider.js'
export type { MockClientOptions } from './mock-server.js'

/**
 * Sets the connection status of every mounted mock at once (shown after a synchronous `act()`):
 * - `'disconnected'`: the connections drop; `sendMessage` queues until the next status;
 * - `'reconnected'`: they connect again, as after a network drop: watched PoVs are subscribed again, with `since`
 *   = the last cursor seen, and the queue is flushed;
 * - `'connected'`: a fresh session (the status reads `'connected'`), watched PoVs subscribed again.
 */
export function simulateConnectionStatus (status: ConnectionStatus): void {
  mockServer.setStatus(status)
}

/**
 * Delivers a server message (an object, or raw JSON text) to every connected mock, as if the server had sent it:
 * an `activity` lands in `usePovActivities` of its PoV (if watched) and in `useActivityEffect`, every message but
 * `pong` becomes `lastMessage`. Shown after a synchronous `act()`.
 */
export function simulateWebSocketMessage (message: ServerMessage | { type: string, [field: string]: unknown } | string): void {
  mockServer.deliver(message)
}

/**
 * What the components sent over the mock since the last reset, oldest first, as plain objects (a fresh copy each call):
 * `[{ type: 'subscribe', povId: 'p1' }, …]`. The `unsubscribe` of an unmounted component is sent on the next microtask.
 */
export function getSentMessages (): OutgoingMessage[] {
  return mockServer.sentMessages()
}

/**
 * Clears everything between tests: the sent messages, the status (back to `connected`), and each mounted mock's
 * watched PoVs, activities, queued messages and last message.
 */
export function resetWebSocketMock (): void {
  mockServer.reset()
}

/**
 * A hook with `useWebSocket`'s return shape on a mock of its own (no provider needed), driven by the same
 * `simulate*` calls: for apps that replace the hooks module with their runner's mocking, e.g.
 * `vi.mock('fastify-pov-realtime/hooks', () => ({ useWebSocket: mockUseWebSocket }))`.
 */
export function mockUseWebSocket (): UseWebSocketResult {
  return useClientWebSocket(mockServer.defaultClient)
}
