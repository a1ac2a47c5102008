/**
 * `useTyping(povId)`: who else is typing on the PoV, and the function that says the user is.
 */
import { useCallback, useEffect, useMemo, useRef } from 'react'
import { NOBODY_TYPING } from './client/presence/presence-store.js'
import { useRealtimeClient, type ConnectionTarget } from './provider.js'
import { usePovSnapshot, type PovSnapshotSource } from './use-pov-snapshot.js'
import { usePresenceSession } from './use-presence.js'

export interface Typing {
  /** The other members typing on the PoV now, sorted (never the user: not even from another tab). */
  readonly typingUserIds: readonly string[]
  /**
   * `setTyping(true)` on every keystroke if you like: the server hears `typing: true` at most once per `typingInterval`
   * (3000 ms by default) and `typing: false` once, after a pause of `typingInterval`, on `setTyping(false)` (say when
   * the note is sent), or when the component unmounts.
   */
  readonly setTyping: (typing: boolean) => void
}

const typingPart: PovSnapshotSource<readonly string[]> = {
  subscribe: (client, povId, listener) => client.subscribeTyping(povId, listener),
  get: (client, povId) => client.getTyping(povId),
  empty: NOBODY_TYPING
}

/**
 * Typing indicators on `povId`. Others' indicators go away when their `typing: false` arrives, when they leave, on a
 * reconnect, or after `typingExpiry` (30000 ms) in case their `false` was lost. Watches the PoV while mounted and
 * reports this page's activity status, like {@link usePresence}. Needs `presence` on at the server: until its snapshot
 * has arrived nothing is sent.
 * @param povId the PoV, or `null`/`undefined` for none
 * @param [target] socket and token URLs, overriding the provider's
 */
export function useTyping (povId: string | null | undefined, target?: ConnectionTarget): Typing {
  const client = useRealtimeClient(target)
  usePresenceSession(client, povId)
  const typingUserIds = usePovSnapshot(client, povId, typingPart)

  // Whether this component said the user is typing, so that unmounting it stops that (and only that).
  const typing = useRef(false)
  const setTyping = useCallback((value: boolean) => {
    if (!povId) return
    typing.current = value
    client.setTyping(povId, value)
  }, [client, povId])
  useEffect(() => () => {
    if (!povId || !typing.current) return
    typing.current = false
    client.setTyping(povId, false)
  }, [client, povId])

  return useMemo(() => ({ typingUserIds, setTyping }), [typingUserIds, setTyping])
}
