/**
 * The key that signs and verifies WebSocket tokens: derived from `secret` with HKDF-SHA256 under a fixed label,
 * never `secret` itself. The app verifies its own access cookies with `secret`; a WebSocket token signed with another
 * key can never pass as one of its sessions, whatever the app's verifier checks (the usual @fastify/jwt set-up checks
 * only the signature and `exp`). Test helpers that forge WebSocket tokens import this, so there is one derivation.
 */
import { hkdfSync } from 'node:crypto'

/** HKDF's `info`: binds the derived key to this one use. A new label (v2) would end every token signed under v1. */
export const SOCKET_TOKEN_KEY_LABEL = 'fastify-pov-realtime websocket token v1'

/** The HMAC key for HS256 WebSocket tokens: 32 bytes, as SHA-256's output. */
export function deriveSocketTokenKey (secret: string): Buffer {
  // No salt: `secret` is the app's key, not a password, and the label alone must make the derivation reproducible on
  // every instance that shares `secret` (RFC 5869 allows an empty salt; the extract step then uses zeros).
  return Buffer.from(hkdfSync('sha256', secret, Buffer.alloc(0), SOCKET_TOKEN_KEY_LABEL, 32))
}
