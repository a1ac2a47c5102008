/**
 * The page: asks the server whether someone is signed in, then shows the sign-in form or the signed-in view. The hooks
 * live only in the signed-in view: nothing connects, or asks for a token, before sign-in.
 */
import { useCallback, useEffect, useState } from 'react'
import { fetchMe } from './api.js'
import { SignedIn } from './SignedIn.js'
import { SignInForm } from './SignInForm.js'

type Session =
  | { state: 'loading' }
  /** `notice`: why the user is on the sign-in form when they did not sign out themselves. */
  | { state: 'signed-out', notice?: string }
  | { state: 'signed-in', userId: string }

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
      {/* The hooks live only below this point. */}
      {session.state === 'signed-in' && <SignedIn userId={session.userId} onSignedOut={signedOut} />}
    </>
  )
}
