/**
 * Reading presence the way a client does: the members a socket believes are on a PoV after the snapshots and diffs
 * it received, and the presence messages themselves.
 */
import { PRESENCE_DIFF_WINDOW_MS } from '../../lib/constants.js'
import type { Member } from '../../types/messages.js'
import type { Message, TestClient } from './client.js'
import { sleep } from './server.js'

/** The `presence` and `presence_diff` messages `client` received for `povId`, in order. */
export function presenceMessages (client: TestClient, povId: string): Message[] {
  return client.messages.filter((m) => (m.type === 'presence' || m.type === 'presence_diff') && m.povId === povId)
}

/** The `presence_diff` messages `client` received for `povId`. */
export function diffs (client: TestClient, povId: string): Message[] {
  return presenceMessages(client, povId).filter((m) => m.type === 'presence_diff')
}

/** The members `client` sees on `povId`: its last snapshot with every later diff applied, sorted by user. */
export function membersSeen (client: TestClient, povId: string): Member[] {
  const members = new Map<string, Member>()
  for (const message of presenceMessages(client, povId)) {
    if (message.type === 'presence') {
      members.clear()
      for (const member of message.members as Member[]) members.set(member.userId, member)
    } else {
      for (const userId of message.leaves as string[]) members.delete(userId)
      for (const member of message.joins as Member[]) members.set(member.userId, member)
    }
  }
  return sortMembers([...members.values()])
}

export function sortMembers (members: Member[]): Member[] {
  return [...members].sort((a, b) => a.userId.localeCompare(b.userId))
}

/** A member as the server shows it. */
export function member (userId: string, status: 'active' | 'idle' = 'active', info: Record<string, unknown> = {}): Member {
  return { userId, status, info }
}

/**
 * Waits until a diff window has surely passed for everything already sent, then round-trips a ping on each client,
 * so that whatever the server was going to send them has arrived.
 */
export async function settle (...clients: TestClient[]): Promise<void> {
  await sleep(PRESENCE_DIFF_WINDOW_MS * 4)
  await Promise.all(clients.map((client) => client.request({ type: 'ping' }, 'pong')))
}
