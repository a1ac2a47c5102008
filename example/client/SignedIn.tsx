/**
 * The signed-in view: the session bar (who, the connection badge, Sign out), the PoV list, and the open PoV, whose id
 * is kept in the address. When the token route refuses the session, it hands back to the sign-in form with a notice.
 */
import { useEffect, useState } from 'react'
import { clearPersistedRealtimeState, useConnectionStatus, useReadReceipts, useRealtimeClient } from 'fastify-pov-realtime/hooks'
import { fetchPovs, signOut, type Pov } from './api.js'
import { ConnectionBadge } from './ConnectionBadge.js'
import { PovList } from './PovList.js'
import { PovView } from './PovView.js'

/** Said on the sign-in form when the server stopped accepting the session, so nobody lands there without a word. */
export const SESSION_ENDED_NOTICE = 'You were signed out: the server no longer accepts your session (you signed out in ' +
  'another tab, it expired, or the server restarted with another secret). Sign in again.'

export function SignedIn ({ userId, onSignedOut }: { userId: string, onSignedOut: (notice?: string) => void }) {
  const client = useRealtimeClient()
  const { authError } = useConnectionStatus()
  const [povs, setPovs] = useState<Pov[]>([])
  const [povId, setPovId] = useState<string>()
  // Bumped when the user joins a PoV again: its view mounts anew, which is what subscribes a revoked PoV again.
  const [joins, setJoins] = useState(0)
  // The open PoV's read receipts: its "N new", "Mark all read" and "Seen by" (the PoV list counts every PoV's unread).
  const receipts = useReadReceipts(povId)

  useEffect(() => {
    fetchPovs().then((list) => {
      setPovs(list)
      // The PoV named in the address, so that a reload (or a shared link) opens the same one, with its kept feed.
      const fromAddress = new URLSearchParams(window.location.search).get('pov')
      setPovId((current) => current ?? list.find((pov) => pov.id === fromAddress)?.id ?? list[0]?.id)
    }, () => {})
  }, [])

  // The open PoV is in the address from the first load on (`?pov=launch`), not only after a switch: a reload, or the
  // link copied to another window, opens the same one.
  useEffect(() => {
    if (!povId) return
    const address = new URL(window.location.href)
    if (address.searchParams.get('pov') === povId) return
    address.searchParams.set('pov', povId)
    window.history.replaceState(null, '', address)
  }, [povId])

  // The token route refused the cookie (expired, or signed out in another tab): the hooks stopped reconnecting.
  useEffect(() => {
    if (!authError) return
    client.close()
    clearPersistedRealtimeState()
    onSignedOut(SESSION_ENDED_NOTICE)
  }, [authError, client, onSignedOut])

  async function signOutNow () {
    await signOut()
    // Close the socket now rather than after the hooks' linger, so that the next sign-in starts a fresh session, and
    // forget the feed kept for reloads: the next user of this browser must not see it.
    client.close()
    clearPersistedRealtimeState()
    onSignedOut()
  }

  return (
    <>
      {/* One line at every width and every connection state: the name gives way (ellipsis), the badge keeps its width. */}
      <section className='session-bar' data-testid='session-bar'>
        <span className='who'>
          <span className='who-label'>Signed in as </span><strong data-testid='signed-in-user'>{userId}</strong>
        </span>
        <ConnectionBadge />
        <button className='secondary' data-testid='sign-out-button' onClick={signOutNow}>Sign out</button>
      </section>
      <PovList povs={povs} openPovId={povId} onOpen={setPovId} />
      {povId && (
        <PovView key={`${povId}:${joins}`} povId={povId} userId={userId} receipts={receipts} onJoined={() => setJoins((n) => n + 1)} />
      )}
    </>
  )
}
