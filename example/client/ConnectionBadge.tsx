import { useConnectionStatus } from 'fastify-pov-realtime/hooks'
import { useConnectionPhase } from './connection-phase.js'

/**
 * 'connected' / 'disconnected' / 'reconnected', re-rendered on status changes only (not on every message). After the
 * server revoked the user's access as a whole (a 4003 close) the client does not retry: the badge says so.
 * The badge has one width whatever it says (see `.status` in index.html), so a drop does not move the header about;
 * on a narrow screen the detail ("retrying…") is left out (the post form says it too).
 */
export function ConnectionBadge () {
  const { connectionStatus, state } = useConnectionStatus()
  const phase = useConnectionPhase()
  const detail = state === 'revoked' ? 'access revoked' : phase === 'retrying' ? 'retrying…' : ''
  return (
    <span
      className={`status status-${connectionStatus}`} data-testid='connection-status' data-status={connectionStatus}
      title={detail ? `${connectionStatus} (${detail})` : connectionStatus} role='status'
    >
      {connectionStatus}{detail && <span className='status-detail'> · {detail}</span>}
    </span>
  )
}
