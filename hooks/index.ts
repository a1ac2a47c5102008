/**
 * `fastify-pov-realtime/hooks`: the React client of the plugin, and the framework-free client core under it.
 *
 * ```tsx
 * import { PovRealtimeProvider, useWebSocket, usePovActivities, useActivityEffect } from 'fastify-pov-realtime/hooks'
 *
 * function Feed ({ povId }: { povId: string }) {
 *   const { connectionStatus } = useWebSocket()               // 'connected' | 'disconnected' | 'reconnected'
 *   const { activities, addOptimistic } = usePovActivities(povId)   // subscribed while mounted
 *   useActivityEffect(povId, () => queryClient.invalidateQueries({ queryKey: ['pov', povId] }))
 *   return <ul>{activities.map((a) => <li key={a.id}>{a.title}</li>)}</ul>
 * }
 * ```
 *
 * With `presence` and `readReceipts` on at the server: `usePresence(povId)`, `useTyping(povId)` and
 * `useReadReceipts(povId)`; the client keeps each PoV's feed for the next reload (`persist`, `'session'` by default).
 *
 * Same-origin by default (token from `/api/auth/ws-token` with the page's cookies, socket at `ws(s)://<host>/ws`);
 * `<PovRealtimeProvider tokenUrl socketUrl options>` or a hook's own URLs override it. Every component using the same
 * socket URL shares one connection, which closes `linger` ms (default 1000) after the last of them unmounts.
 * Imports react and browser APIs only, and touches no browser global before a component mounts, so it renders on the
 * server as `'disconnected'`.
 */

// React
export { PovRealtimeProvider, useRealtimeClient } from './provider.js'
export type { PovRealtimeProviderProps, ConnectionTarget } from './provider.js'
export { useWebSocket, useConnectionStatus } from './use-web-socket.js'
export type { UseWebSocketResult, UseConnectionStatusResult } from './use-web-socket.js'
export { usePovActivities } from './use-pov-activities.js'
export type { UsePovActivitiesOptions, PovActivities } from './use-pov-activities.js'
export { useActivityEffect } from './use-activity-effect.js'
export { usePresence } from './use-presence.js'
export { useTyping } from './use-typing.js'
export type { Typing } from './use-typing.js'
export { useReadReceipts } from './use-read-receipts.js'
export type { ReadReceipts } from './use-read-receipts.js'

// The framework-free core (also `fastify-pov-realtime/client`), with the wire protocol's types
export * from './client/index.js'
