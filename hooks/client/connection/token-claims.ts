/**
 * Who the WebSocket token belongs to, read from its payload. Decoded, never verified: the server verifies it; the client
 * only needs the user id to keep one user's offline state apart from another's and to recognise its own read marks.
 */

/**
 * The `userId` (else `sub`) claim of a JWT, or `undefined` when the token is not a readable JWT (a custom token
 * provider may hand out opaque tokens).
 */
export function userIdOfToken (token: string): string | undefined {
  const payload = token.split('.')[1]
  if (payload === undefined || payload.length === 0) return undefined
  try {
    const base64 = payload.replace(/-/g, '+').replace(/_/g, '/')
    const bytes = Uint8Array.from(atob(base64), (char) => char.charCodeAt(0))
    const claims = JSON.parse(new TextDecoder().decode(bytes)) as { userId?: unknown, sub?: unknown } | null
    const userId = claims?.userId ?? claims?.sub
    return typeof userId === 'string' && userId !== '' ? userId : undefined
  } catch {
    return undefined
  }
}
