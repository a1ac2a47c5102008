/** An unread count as a badge shows it: the server counts what its history window holds (100 by default), so "99+" at the top. */
export function badge (unread: number): string {
  return unread > 99 ? '99+' : String(unread)
}
