import { useCallback, useEffect, useState } from 'react'
import {
  REVOKED_MESSAGE, clearPersistedRealtimeState, useConnectionStatus, usePovActivities, useReadReceipts, useRealtimeClient,
  type Activity, type ReadReceipts
} from 'fastify-pov-realtime/hooks'
import { fetchMe, fetchPovs, joinPov, leavePov, signOut, type Pov } from './api.js'
import { ActivityFeed } from './ActivityFeed.js'
import { ConnectionBadge } from './ConnectionBadge.js'
import { PostActivityForm } from './PostActivityForm.js'
import { PovList } from './PovList.js'
import { PresenceList } from './PresenceList.js'
import { SignInForm } from './SignInForm.js'

type Session =
  | { state: 'loading' }
  /** `notice`: why the user is on the sign-in form when they did not sign out themselves. */
  | { state: 'signed-out', notice?: string }
  | { state: 'signed-in', userId: string }

/** Said on the sign-in form when the server stopped accepting the session, so nobody lands there without a word. */
export const SESSION_ENDED_NOTICE = 'You were signed out: the server no longer accepts your session (you signed out in ' +
  'another tab, it expired, or the server restarted with another secret). Sign in again.'

export function App () {
  const [session, setSession] = useState<Session>({ state: 'loading' })
  useEffect(() => {
    fetchMe().then(
      (userId) => setSession(userId ? { state: 'signed-in', userId } : { state: 'signed-out' }),
      () => setSession({ state: 'signed-out' }))
  }, [])
  const signedOut = useCallback((notice?: string) => setSession({ state: 'signed-out', notice }), [])

  return (
    <>
      <header>
        <h1>fastify-pov-realtime example</h1>
      </header>
      {session.state === 'signed-out' && (
        <SignInForm notice={session.notice} onSignedIn={(userId) => setSession({ state: 'signed-in', userId })} />
      )}
      {/* The hooks live only below this point: nothing connects (or asks for a token) before sign-in. */}
      {session.state === 'signed-in' && <SignedIn userId={session.userId} onSignedOut={signedOut} />}
    </>
  )
}

function SignedIn ({ userId, onSignedOut }: { userId: string, onSignedOut: (notice?: string) => void }) {
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

/**
 * One PoV: who is here, the post form and the feed. Keyed by PoV, so switching starts with a fresh state. "Leave PoV"
 * asks the app's route, which calls `fastify.povRealtime.revoke`: the revocation comes back over the socket (on every
 * page of the user), and the view shows it until the user joins again.
 */
function PovView ({ povId, userId, receipts, onJoined }: {
  povId: string
  userId: string
  receipts: ReadReceipts
  onJoined: () => void
}) {
  const [confirmed, setConfirmed] = useState<Activity[]>([])
  const [failure, setFailure] = useState<string>()
  // FORBIDDEN: revoked while watched ('access revoked'), or refused at subscribe (left before this page loaded).
  const { error } = usePovActivities(povId)
  const { markRead } = receipts
  const posted = useCallback((activity: Activity, cursor: string) => {
    setConfirmed((list) => [...list, activity])
    // The user has seen their own note: it does not count as new for them.
    markRead(cursor)
  }, [markRead])

  async function leave () {
    await leavePov(povId).catch((err: Error) => setFailure(err.message))
  }

  async function join () {
    try {
      await joinPov(povId)
      onJoined()
    } catch (err) {
      setFailure((err as Error).message)
    }
  }

  if (error?.code === 'FORBIDDEN') {
    return (
      <section data-testid='pov-revoked'>
        <p className='notice'>
          {error.message === REVOKED_MESSAGE ? 'You left this PoV: its live feed stopped.' : 'You are not on this PoV.'}
        </p>
        <button data-testid='join-pov-button' onClick={join}>Join again</button>
        {failure && <p className='notice'>{failure}</p>}
      </section>
    )
  }
  return (
    <>
      <p>
        <button className='secondary small' data-testid='leave-pov-button' onClick={leave}>Leave PoV</button>
        {failure && <span className='notice'> {failure}</span>}
      </p>
      <PresenceList povId={povId} userId={userId} />
      <PostActivityForm povId={povId} userId={userId} onPosted={posted} />
      <ActivityFeed povId={povId} userId={userId} confirmed={confirmed} receipts={receipts} />
    </>
  )
}
