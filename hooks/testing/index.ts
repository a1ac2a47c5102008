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
 *
 * Presence, typing and read receipts: `simulatePresence`, `simulateJoin`, `simulateLeave`, `simulateStatus`,
 * `simulateTyping`, `simulateSubscribed`, `simulateResync`, `simulateRead`, `simulateReads`, `simulateReadsMoved` (each a
 * server message, as the server sends it).
 * Revocation: `simulateRevoke(povId)`, or `simulateRevoke()` for the whole session (a 4003 close).
 */
import type { Member, MemberStatus, ReadMark, ServerMessage } from '../../types/messages.js'
import type { ConnectionStatus } from '../client/connection/connection-machine.js'
import type { OutgoingMessage } from '../client/realtime-client.js'
import { useClientWebSocket, type UseWebSocketResult } from '../use-web-socket.js'
import { mockServer } from './mock-server.js'

export { MockWebSocketProvider } from './mock-provider.js'
export type { MockWebSocketProviderProps } from './mock-provider.js'
export type { MockClientOptions } from './mock-server.js'
export { MOCK_USER_ID } from './mock-server.js'

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
 * The server revokes the user's access (shown after a synchronous `act()`):
 * - `simulateRevoke('p1')`: to one PoV, as `fastify.povRealtime.revoke({ userId, povId })` does (an `unsubscribed` with
 *   `reason: 'revoked'`): `usePovActivities('p1')` shows the `FORBIDDEN` error `'access revoked'`, `useActivityEffect`
 *   hears `{ type: 'revoked' }`, and the PoV is not subscribed again, even after a reconnect, until a component
 *   watches it anew;
 * - `simulateRevoke()`: to everything (every connection closed with 4003): the connection's `state` is `'revoked'`,
 *   every watched PoV shows it, and nothing reconnects until `reconnect()` (or `simulateConnectionStatus`).
 */
export function simulateRevoke (povId?: string): void {
  mockServer.revoke(povId)
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

// ---- presence, typing and read receipts ----------------------------------------------------------

/** A member for the simulate* calls: a `userId`, or part of a member (`status` defaults to `'active'`, `info` to `{}`). */
export type SimulatedMember = string | { userId: string, status?: MemberStatus, info?: Record<string, unknown> }

function toMember (member: SimulatedMember): Member {
  return typeof member === 'string'
    ? { userId: member, status: 'active', info: {} }
    : { userId: member.userId, status: member.status ?? 'active', info: member.info ?? {} }
}

/**
 * The server's `presence` snapshot of `povId`: these are its members now (the server sends one after each
 * `subscribed`). Also what tells the client that presence is on: until a snapshot has arrived it sends no `status`,
 * and no `typing` on that PoV.
 */
export function simulatePresence (povId: string, members: readonly SimulatedMember[]): void {
  mockServer.deliver({ type: 'presence', povId, members: members.map(toMember) })
}

/** Members join `povId` (a `presence_diff` with `joins`). */
export function simulateJoin (povId: string, ...members: SimulatedMember[]): void {
  mockServer.deliver({ type: 'presence_diff', povId, joins: members.map(toMember), leaves: [] })
}

/** Members leave `povId` (a `presence_diff` with `leaves`). */
export function simulateLeave (povId: string, ...userIds: string[]): void {
  mockServer.deliver({ type: 'presence_diff', povId, joins: [], leaves: userIds })
}

/** A member's status changed: the server sends them again in `joins` (with `info`, default `{}`). */
export function simulateStatus (povId: string, userId: string, status: MemberStatus, info: Record<string, unknown> = {}): void {
  simulateJoin(povId, { userId, status, info })
}

/** Another member started (`true`, the default) or stopped typing on `povId`. */
export function simulateTyping (povId: string, userId: string, typing = true): void {
  mockServer.deliver({ type: 'typing', povId, userId, typing })
}

/**
 * The server confirms the subscription of `povId`. With `readCursor` (a cursor, or `null`) it is a server with read
 * receipts on: `useReadReceipts` shows `readCursor` and `unread`, asks for `reads`, and may send `read` from then on.
 */
export function simulateSubscribed (povId: string, fields: { recovered?: boolean, readCursor?: string | null, unread?: number | null } = {}): void {
  mockServer.deliver({ type: 'subscribed', povId, ...fields })
}

/**
 * The server's in-band `resync` for `povId`: its feed had a gap the history could not fill (the broker lost
 * activities); the subscription stays. `useActivityEffect` hears `{ type: 'resync' }`, exactly as after a resume
 * answered `recovered: false`; `cursor` (default `null`) is where live delivery goes on.
 */
export function simulateResync (povId: string, cursor: string | null = null): void {
  mockServer.deliver({ type: 'resync', povId, cursor })
}

/** A user's read mark on `povId` moved to `cursor` (the `read` event; for the mock's own user it sets `readCursor`). */
export function simulateRead (povId: string, userId: string, cursor: string, readAt = new Date().toISOString()): void {
  mockServer.deliver({ type: 'read', povId, userId, cursor, readAt })
}

/** A mark as the simulate* calls take it: `readAt` defaults to now. */
type SimulatedMark = Omit<ReadMark, 'readAt'> & { readAt?: string }

/** The answer to a `reads` request: every user's mark on `povId` (`readAt` defaults to now); it replaces the PoV's marks. */
export function simulateReads (povId: string, marks: readonly SimulatedMark[]): void {
  deliverReads(povId, marks)
}

/**
 * Several users' marks on `povId` moved in one of the server's windows: an unsolicited `reads`, merged into the PoV's
 * marks (the others stay). The client takes a `reads` as the answer to its own request while that request is
 * unanswered, as it would from a real server: simulate the answer (`simulateReads`) first.
 */
export function simulateReadsMoved (povId: string, marks: readonly SimulatedMark[]): void {
  deliverReads(povId, marks)
}

function deliverReads (povId: string, marks: readonly SimulatedMark[]): void {
  const readAt = new Date().toISOString()
  mockServer.deliver({ type: 'reads', povId, reads: marks.map((mark) => ({ readAt, ...mark })) })
}
