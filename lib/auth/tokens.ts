/**
 * The two JWTs the plugin deals with: the app's access token (read from the cookie, verified with `secret`) and the
 * short-lived WebSocket token it issues in exchange (signed with a key derived from `secret`, so neither passes for the
 * other). Signed and verified with fast-jwt, the engine of @fastify/jwt, used directly: @fastify/jwt's namespaces
 * write into an app's own `fastify.jwt` when the app registered it first, and the plugin must leave the app's
 * decorations alone.
 */
import { createSigner, createVerifier } from 'fast-jwt'
import type { FastifyRequest } from 'fastify'
import { TOKEN_AUDIENCE } from '../../types/wire-constants.js'
import type { PovRealtimeUser, ResolvedOptions } from '../options.js'
import { deriveSocketTokenKey } from './socket-token-key.js'

/** Why a token was refused: logged and counted, never the token itself. */
export type RefusalReason =
  | 'missing' | 'malformed' | 'expired' | 'not-yet-valid' | 'bad-signature' | 'wrong-algorithm'
  | 'wrong-claims' | 'no-expiry' | 'unsafe-identity' | 'websocket-token-as-access-token'
  | 'access-token-as-websocket-token' | 'rejected-by-app'

export class TokenRefusal extends Error {
  constructor (readonly reason: RefusalReason) {
    super(`token refused: ${reason}`)
  }
}

/** A verified WebSocket token: who, and until when (ms since epoch). */
export interface SocketIdentity {
  readonly user: PovRealtimeUser
  readonly expiresAt: number
}

export interface TokenService {
  /** Signs a WebSocket token for `user`, valid for the configured lifetime. */
  issue (user: PovRealtimeUser): { token: string, expiresAt: number }
  /** Verifies a WebSocket token; throws {@link TokenRefusal}. */
  verifySocketToken (token: string): SocketIdentity
  /** Verifies the access cookie with the app's `verifyAccessToken` or the default; rejects with {@link TokenRefusal}. */
  verifyAccessToken (token: string, request: FastifyRequest): Promise<PovRealtimeUser>
}

const reasonByFastJwtCode: Readonly<Record<string, RefusalReason>> = {
  FAST_JWT_EXPIRED: 'expired',
  FAST_JWT_INACTIVE: 'not-yet-valid',
  FAST_JWT_INVALID_SIGNATURE: 'bad-signature',
  FAST_JWT_MISSING_SIGNATURE: 'bad-signature',
  FAST_JWT_INVALID_ALGORITHM: 'wrong-algorithm',
  FAST_JWT_INVALID_CLAIM_VALUE: 'wrong-claims',
  FAST_JWT_INVALID_CLAIM_TYPE: 'wrong-claims',
  FAST_JWT_MISSING_REQUIRED_CLAIM: 'wrong-claims'
}

function refusalOf (err: unknown): TokenRefusal {
  if (err instanceof TokenRefusal) return err
  const code = (err as { code?: unknown } | null)?.code
  return new TokenRefusal((typeof code === 'string' && reasonByFastJwtCode[code]) || 'malformed')
}

function verifyWith (verify: (token: string) => unknown, token: string): Record<string, unknown> {
  let payload: unknown
  try {
    payload = verify(token)
  } catch (err) {
    throw refusalOf(err)
  }
  if (payload === null || typeof payload !== 'object') throw new TokenRefusal('malformed')
  return payload as Record<string, unknown>
}

/** Tells whether `token` verifies with `verify`: only to name a refusal more precisely, never to accept. */
function verifies (verify: (token: string) => unknown, token: string): boolean {
  try {
    verify(token)
    return true
  } catch {
    return false
  }
}

/**
 * Verifies `token` with `verify`; when its signature is wrong but `other` (the other of the plugin's two keys) verifies
 * it, the refusal says which token crossed over (`crossover`), so that the log tells a misuse from a forgery.
 */
function verifyNamingCrossover (verify: (token: string) => unknown, other: (token: string) => unknown,
  crossover: RefusalReason, token: string): Record<string, unknown> {
  try {
    return verifyWith(verify, token)
  } catch (err) {
    if ((err as TokenRefusal).reason === 'bad-signature' && verifies(other, token)) throw new TokenRefusal(crossover)
    throw err
  }
}

/** The longest `userId` a token carries (JavaScript string length): the same bound as an activity's `userId`. */
export const MAX_USER_ID_LENGTH = 256

// C0 controls and DEL, C1 controls, and the invisible marks that reorder text around them: the Arabic letter mark,
// LRM and RLM, the bidirectional embeddings and overrides (U+202A-U+202E) and isolates (U+2066-U+2069).
// eslint-disable-next-line no-control-regex
const UNSAFE_USER_ID_CHARACTER = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/

/**
 * Whether the plugin may put `userId` in a WebSocket token. Other users see it (presence, typing, "seen by") and logs
 * record it: a direction override or an invisible mark makes one name pass for another, a control character can
 * break a log line or a terminal, and a huge one costs every frame that carries it.
 */
export function isCarriableUserId (userId: string): boolean {
  return userId.length <= MAX_USER_ID_LENGTH && !UNSAFE_USER_ID_CHARACTER.test(userId)
}

function optionalString (value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined
}

function hasAudience (payload: Record<string, unknown>, audience: string): boolean {
  const aud = payload.aud
  return aud === audience || (Array.isArray(aud) && aud.includes(audience))
}

function isServerFault (err: unknown): boolean {
  const statusCode = (err as { statusCode?: unknown } | null)?.statusCode
  return typeof statusCode === 'number' && statusCode >= 500
}

function isUser (value: unknown): value is PovRealtimeUser {
  const user = value as PovRealtimeUser | null
  return user !== null && typeof user === 'object' && typeof user.userId === 'string' && user.userId.length > 0 &&
    (user.email === undefined || typeof user.email === 'string') &&
    (user.role === undefined || typeof user.role === 'string')
}

/** The identity the plugin will carry, or {@link TokenRefusal} `unsafe-identity`. */
function carriable (user: PovRealtimeUser): PovRealtimeUser {
  if (!isCarriableUserId(user.userId)) throw new TokenRefusal('unsafe-identity')
  return user
}

/**
 * The token service for `options.secret`: signers and verifiers are built once, here. Access tokens are verified with
 * `secret` (the app's own key); WebSocket tokens are signed and verified with the key derived from it.
 */
export function createTokenService (options: ResolvedOptions): TokenService {
  const algorithms = ['HS256' as const]
  const socketKey = deriveSocketTokenKey(options.secret)
  const accessJwt = createVerifier({ key: options.secret, algorithms })
  const socketJwt = createVerifier({
    key: socketKey, algorithms, allowedAud: TOKEN_AUDIENCE, requiredClaims: ['exp', 'sub', 'aud']
  })
  const sign = createSigner({ key: socketKey, algorithm: 'HS256' })

  function defaultVerifyAccessToken (token: string): PovRealtimeUser {
    const payload = verifyNamingCrossover(accessJwt, socketJwt, 'websocket-token-as-access-token', token)
    // A WebSocket token is useless as an access cookie: it would let a leaked socket token mint more. The derived key
    // already keeps ours out; this also refuses one signed with `secret` itself (by an older version, or by the app).
    if (hasAudience(payload, TOKEN_AUDIENCE)) throw new TokenRefusal('websocket-token-as-access-token')
    // A session without an end would mint WebSocket tokens for ever once leaked.
    if (typeof payload.exp !== 'number') throw new TokenRefusal('no-expiry')
    const userId = optionalString(payload.userId) ?? optionalString(payload.sub)
    if (!userId) throw new TokenRefusal('wrong-claims')
    return carriable({ userId, email: optionalString(payload.email), role: optionalString(payload.role) })
  }

  return {
    issue (user) {
      const iat = Math.floor(Date.now() / 1000)
      const exp = iat + Math.floor(options.tokenLifetimeMs / 1000)
      const token = sign({
        userId: user.userId,
        email: user.email,
        role: user.role,
        sub: user.userId,
        aud: TOKEN_AUDIENCE,
        iat,
        exp
      })
      return { token, expiresAt: exp * 1000 }
    },

    verifySocketToken (token) {
      const payload = verifyNamingCrossover(socketJwt, accessJwt, 'access-token-as-websocket-token', token)
      const user = { userId: payload.userId, email: payload.email, role: payload.role }
      if (!isUser(user) || payload.sub !== user.userId || typeof payload.exp !== 'number') {
        throw new TokenRefusal('wrong-claims')
      }
      // Only a holder of the derived key could sign such a token: refused all the same, as the token route would.
      return { user: carriable(user), expiresAt: payload.exp * 1000 }
    },

    async verifyAccessToken (token, request) {
      if (!options.verifyAccessToken) return defaultVerifyAccessToken(token)
      let user: unknown
      try {
        user = await options.verifyAccessToken(token, request)
      } catch (err) {
        // A server fault (its own 5xx) is not the user's fault: let it be a 5xx, so clients retry instead of signing out.
        if (isServerFault(err)) throw err
        throw err instanceof TokenRefusal ? err : new TokenRefusal('rejected-by-app')
      }
      if (!isUser(user)) throw new TokenRefusal('rejected-by-app')
      // The app's verifier decides who the user is, not what the plugin will carry: the same rule as the default's.
      return carriable({ userId: user.userId, email: user.email, role: user.role })
    }
  }
}
