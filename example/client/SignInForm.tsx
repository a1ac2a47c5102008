import { useState, type FormEvent } from 'react'
import { signIn } from './api.js'

/**
 * The demo sign-in: any user name, no password. It sets the HttpOnly `accessToken` cookie. `notice` says why the user
 * is here when the server ended their session.
 */
export function SignInForm ({ notice, onSignedIn }: { notice?: string, onSignedIn: (userId: string) => void }) {
  const [userName, setUserName] = useState('')
  const [error, setError] = useState<string>()

  async function submit (event: FormEvent) {
    event.preventDefault()
    try {
      onSignedIn(await signIn(userName))
    } catch (err) {
      setError((err as Error).message)
    }
  }

  return (
    <section>
      <h2>Sign in</h2>
      {notice && <p className='notice' data-testid='signed-out-notice' role='status'>{notice}</p>}
      <p>A demo: pick any name (letters, digits, <code>_ . -</code>). Sign in as another user in a private window to chat with yourself.</p>
      <form onSubmit={submit} data-testid='sign-in-form'>
        <input
          data-testid='user-name-input' aria-label='User name' placeholder='alice' required maxLength={32}
          pattern='[A-Za-z0-9][A-Za-z0-9_.\-]*' value={userName} onChange={(event) => setUserName(event.target.value)}
        />
        <button data-testid='sign-in-button' type='submit'>Sign in</button>
      </form>
      {error && <p className='notice' data-testid='sign-in-error'>{error}</p>}
    </section>
  )
}
