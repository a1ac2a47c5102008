import { useConnectionStatus } from 'fastify-pov-realtime/hooks'

/**
 * 'connected' / 'disconnected' / 'reconnected', re-rendered on status changes only (not on every message). After the
 * server revoked the user's access as a whole (a 4003 close) the client does not retry: the badge says so.
 */
export function ConnectionBadge () {
  const { connectionStatus, state } = useConnectionStatus()
  const detail = state === 'waiting' ? ' (retrying…)' : state === 'revoked' ? ' (access revoked)' : ''
  return (
    <span className={`status status-${connectionStatus}`} data-testid='connection-status' data-status={connectionStatus}>
      {connectionStatus}{detail}
    </span>
  )
}
