import { useReadReceipts } from 'fastify-pov-realtime/hooks'
import type { Pov } from './api.js'
import { badge } from './unread-badge.js'

/**
 * The PoVs the user may open, each with its unread count. Each entry watches its PoV (`useReadReceipts`), so the
 * counts are live: an activity posted on a PoV that is not open raises its badge at once. That is one subscription
 * per listed PoV on the one socket, right for a handful; an app listing hundreds would watch the visible ones and ask
 * `fastify.povRealtime.unreadCounts` (the example's `GET /api/unread`) for the rest.
 * Entries are links (`?pov=…`): they open in a new tab too, and say which PoV the address names.
 */
export function PovList ({ povs, openPovId, onOpen }: {
  povs: readonly Pov[]
  openPovId: string | undefined
  onOpen: (povId: string) => void
}) {
  return (
    <nav aria-label='PoVs'>
      <ul className='pov-list' data-testid='pov-list'>
        {povs.map((pov) => <PovLink key={pov.id} pov={pov} open={pov.id === openPovId} onOpen={onOpen} />)}
      </ul>
    </nav>
  )
}

function PovLink ({ pov, open, onOpen }: { pov: Pov, open: boolean, onOpen: (povId: string) => void }) {
  const { unread } = useReadReceipts(pov.id)
  return (
    <li>
      <a
        href={`?pov=${encodeURIComponent(pov.id)}`} aria-current={open ? 'page' : undefined}
        data-testid='pov-link' data-pov-id={pov.id} data-unread={unread ?? ''}
        onClick={(event) => {
          if (event.metaKey || event.ctrlKey || event.shiftKey || event.button !== 0) return
          event.preventDefault()
          onOpen(pov.id)
        }}
      >
        {pov.name}
        {unread !== null && unread > 0 && <span className='badge' data-testid='pov-unread' aria-label={`${unread} new`}>{badge(unread)}</span>}
      </a>
    </li>
  )
}
