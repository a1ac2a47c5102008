/**
 * The two JWTs the plugin deals with: the app's access token (read from the cookie) and the short-lived
 * WebSocket token it issues in exchange. Signed and verified with fast-jwt, the engine of @fastify/jwt, used
 * directly: @fastify/jwt's namespaces write into an app's own `fastify.jwt` when the app registered it first,
 * and the plugin must leave the app's decorations alone.
 */
import { createSigner, createVerifier } from 'fast-jwt'
import type { FastifyRequest } from 'fastify'
import { TOKEN_AUDIENCE } from '../../types/wire-constants.js'
import type { PovRealtimeUser, ResolvedOptions } from '../options.js'

/** Why a token was refused: logged and counted, never the token itself. */
export type RefusalReason =
  | 'missing' | 'malformed' | 'expired' | 'not-yet-valid' | 'bad-signature' | 'wrong-algorithm'
  | 'wrong-claims' | 'websocket-token-as-access-token' | 'rejected-by-app'

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

/** The token service for `options.secret`: signers and verifiers are built once, here. */
export function createTokenService (options: ResolvedOptions): TokenService {
  const algorithms = ['HS256' as const]
  const accessJwt = createVerifier({ key: options.secret, algorithms })
  const socketJwt = createVerifier({
    key: options.secret, algorithms, allowedAud: TOKEN_AUDIENCE, requiredClaims: ['exp', 'sub', 'aud']
  })
  const sign = createSigner({ key: options.secret, algorithm: 'HS256' })

  function defaultVerifyAccessToken (token: string): PovRealtimeUser {
    const payload = verifyWith(accessJwt, token)
    // A WebSocket token is useless as an access cookie: it would let a leaked socket token mint more.
    if (hasAudience(payload, TOKEN_AUDIENCE)) throw new TokenRefusal('websocket-token-as-access-token')
    const userId = optionalString(payload.userId) ?? optionalString(payload.sub)
    if (!userId) throw new TokenRefusal('wrong-claims')
    return { userId, email: optionalString(payload.email), role: optionalString(payload.role) }
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
      const payload = verifyWith(socketJwt, token)
      const user = { userId: payload.userId, email: payload.email, role: payload.role }
      if (!isUser(user) || payload.sub !== user.userId || typeof payload.exp !== 'number') {
        throw new TokenRefusal('wrong-claims')
      }
      return { user, expiresAt: payload.exp * 1000 }
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
      return { userId: user.userId, email: user.email, role: user.role }
    }
  }
}
