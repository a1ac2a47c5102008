import { usePresence, type Member } from 'fastify-pov-realtime/hooks'

/** The name a member goes by: the server's `presence.info` gives `name`; the user id otherwise. */
function nameOf (member: Member): string {
  return typeof member.info.name === 'string' ? member.info.name : member.userId
}

/**
 * Who else has this PoV open, and whether they are active or idle (away from the keyboard, or on another tab).
 * Nothing shows when the server has presence off.
 */
export function PresenceList ({ povId, userId }: { povId: string, userId: string }) {
  const members = usePresence(povId)
  if (members.length === 0) return null
  return (
    <p className='presence' data-testid='presence-list'>
      Here:{' '}
      {members.map((member) => (
        <span
          key={member.userId} className={`member member-${member.status}`} data-testid='presence-member'
          data-user-id={member.userId} data-status={member.status} title={member.status}
        >
          {member.userId === userId ? 'you' : nameOf(member)}{member.status === 'idle' ? ' (idle)' : ''}
        </span>
      ))}
    </p>
  )
}
