import { useConnectionStatus } from 'fastify-pov-realtime/hooks'

/** 'connected' / 'disconnected' / 'reconnected', re-rendered on status changes only (not on every message). */
export function ConnectionBadge () {
  const { connectionStatus, state } = useConnectionStatus()
  const detail = state === 'waiting' ? ' (retrying…)' : ''
  return (
    <span className={`status status-${connectionStatus}`} data-testid='connection-status' data-status={connectionStatus}>
      {connectionStatus}{detail}
    </span>
  )
}
