import { useCallback, useState } from 'react'
import { REVOKED_MESSAGE, usePovActivities, type Activity, type ReadReceipts } from 'fastify-pov-realtime/hooks'
import { joinPov, leavePov } from './api.js'
import { ActivityFeed } from './ActivityFeed.js'
import { PostActivityForm } from './PostActivityForm.js'
import { PresenceList } from './PresenceList.js'

/**
 * One PoV: who is here, the post form and the feed. Keyed by PoV, so switching starts with a fresh state. "Leave PoV"
 * asks the app's route, which calls `fastify.povRealtime.revoke`: the revocation comes back over the socket (on every
 * page of the user), and the view shows it until the user joins again.
 */
export function PovView ({ povId, userId, receipts, onJoined }: {
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
