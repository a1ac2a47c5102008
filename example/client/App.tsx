import { useCallback, useEffect, useState } from 'react'
import { useConnectionStatus, useRealtimeClient, type Activity } from 'fastify-pov-realtime/hooks'
import { fetchMe, fetchPovs, signOut, type Pov } from './api.js'
import { ActivityFeed } from './ActivityFeed.js'
import { ConnectionBadge } from './ConnectionBadge.js'
import { PostActivityForm } from './PostActivityForm.js'
import { SignInForm } from './SignInForm.js'

type Session = { state: 'loading' } | { state: 'signed-out' } | { state: 'signed-in', userId: string }

export function App () {
  const [session, setSession] = useState<Session>({ state: 'loading' })
  useEffect(() => {
    fetchMe().then(
      (userId) => setSession(userId ? { state: 'signed-in', userId } : { state: 'signed-out' }),
      () => setSession({ state: 'signed-out' }))
  }, [])
  const signedOut = useCallback(() => setSession({ state: 'signed-out' }), [])

  return (
    <>
      <header>
        <h1>fastify-pov-realtime example</h1>
      </header>
      {session.state === 'signed-out' && <SignInForm onSignedIn={(userId) => setSession({ state: 'signed-in', userId })} />}
      {/* The hooks live only below this point: nothing connects (or asks for a token) before sign-in. */}
      {session.state === 'signed-in' && <SignedIn userId={session.userId} onSignedOut={signedOut} />}
    </>
  )
}

function SignedIn ({ userId, onSignedOut }: { userId: string, onSignedOut: () => void }) {
  const client = useRealtimeClient()
  const { authError } = useConnectionStatus()
  const [povs, setPovs] = useState<Pov[]>([])
  const [povId, setPovId] = useState<string>()

  useEffect(() => {
    fetchPovs().then((list) => {
      setPovs(list)
      setPovId((current) => current ?? list[0]?.id)
    }, () => {})
  }, [])

  // The token route refused the cookie (expired, or signed out in another tab): the hooks stopped reconnecting.
  useEffect(() => {
    if (!authError) return
    client.close()
    onSignedOut()
  }, [authError, client, onSignedOut])

  async function signOutNow () {
    await signOut()
    // Close the socket now rather than after the hooks' linger, so that the next sign-in starts a fresh session.
    client.close()
    onSignedOut()
  }

  return (
    <>
      <section>
        <header>
          <span>Signed in as <strong data-testid='signed-in-user'>{userId}</strong></span>
          <ConnectionBadge />
          <label>
            PoV{' '}
            <select data-testid='pov-picker' value={povId ?? ''} onChange={(event) => setPovId(event.target.value)}>
              {povs.map((pov) => <option key={pov.id} value={pov.id}>{pov.name}</option>)}
            </select>
          </label>
          <button className='secondary' data-testid='sign-out-button' onClick={signOutNow}>Sign out</button>
        </header>
      </section>
      {povId && <PovView key={povId} povId={povId} userId={userId} />}
    </>
  )
}

/** One PoV: the post form and the feed. Keyed by PoV, so switching starts with a fresh state. */
function PovView ({ povId, userId }: { povId: string, userId: string }) {
  const [confirmed, setConfirmed] = useState<Activity[]>([])
  const posted = useCallback((activity: Activity) => setConfirmed((list) => [...list, activity]), [])
  return (
    <>
      <PostActivityForm povId={povId} userId={userId} onPosted={posted} />
      <ActivityFeed povId={povId} confirmed={confirmed} />
    </>
  )
}
