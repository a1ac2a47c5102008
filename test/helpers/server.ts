/**
 * Test harness: a real Fastify server with the plugin on a loopback port, real tokens, real WebSocket clients.
 */
import { Writable } from 'node:stream'
import Fastify, { type FastifyInstance } from 'fastify'
import { createSigner } from 'fast-jwt'
import povRealtime, { type PovRealtimeOptions } from '../../index.js'
import { deriveSocketTokenKey } from '../../lib/auth/socket-token-key.js'
import { TestClient } from './client.js'
import { opened } from './socket-waits.js'

export const SECRET = 'test-secret-that-is-long-enough-for-hs256!'
/** The key the plugin signs WebSocket tokens with when given {@link SECRET}. */
export const SOCKET_TOKEN_KEY = deriveSocketTokenKey(SECRET)

/** The bits of a `tap` Test the harness needs (so it works with any test object that has teardown). */
export interface Teardown { teardown (fn: () => unknown): void }

export interface TestServer {
  readonly app: FastifyInstance
  readonly port: number
  readonly httpUrl: string
  readonly wsUrl: string
  /** Every log line the server wrote, raw. */
  readonly logs: string[]
  /** A WebSocket token for this user, fetched through the token route with an access cookie. */
  wsToken (claims?: AccessClaims): Promise<string>
  /** A connected client, authenticated through the subprotocol (or the query string). */
  connect (options?: ConnectOptions): Promise<TestClient>
}

export interface AccessClaims { userId?: string, email?: string, role?: string, [claim: string]: unknown }

export interface ConnectOptions {
  claims?: AccessClaims
  token?: string
  via?: 'protocol' | 'query'
  headers?: Record<string, string>
}

/** An access-token JWT as the app would set in its cookie: signed with {@link SECRET}, valid for 8 hours. */
export function accessToken (claims: AccessClaims = {}, signOptions: Record<string, unknown> = {}): string {
  const now = Math.floor(Date.now() / 1000)
  return createSigner({ key: SECRET, ...signOptions })({ userId: 'u1', email: 'u1@example.com', role: 'member', exp: now + 8 * 3600, ...claims })
}

/**
 * A WebSocket-token-shaped JWT signed directly with the plugin's key (to forge expired, wrongly signed or otherwise bad
 * tokens; `signOptions.key` signs with another).
 */
export function socketToken (claims: Record<string, unknown> = {}, signOptions: Record<string, unknown> = {}): string {
  const now = Math.floor(Date.now() / 1000)
  return createSigner({ key: SOCKET_TOKEN_KEY, ...signOptions })({
    userId: 'u1', email: 'u1@example.com', role: 'member', sub: 'u1', aud: 'pov-realtime', iat: now, exp: now + 3600, ...claims
  })
}

export async function startServer (
  t: Teardown,
  options: Partial<PovRealtimeOptions> = {},
  configure?: (app: FastifyInstance) => void | Promise<void>,
  afterRegister?: (app: FastifyInstance) => void | Promise<void>
): Promise<TestServer> {
  const logs: string[] = []
  const stream = new Writable({
    write (chunk, _encoding, done) {
      logs.push(chunk.toString())
      done()
    }
  })
  const app = Fastify({ logger: { level: 'trace', stream } })
  if (configure) await configure(app)
  await app.register(povRealtime, { secret: SECRET, ...options })
  if (afterRegister) await afterRegister(app)
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => app.close())
  const address = app.server.address()
  const port = typeof address === 'object' && address ? address.port : 0
  const httpUrl = `http://127.0.0.1:${port}`
  const wsUrl = `ws://127.0.0.1:${port}${options.wsRoute ?? '/ws'}`
  const tokenRoute = options.tokenRoute ?? '/api/auth/ws-token'
  const cookieName = options.cookieName ?? 'accessToken'

  async function wsToken (claims: AccessClaims = {}): Promise<string> {
    const response = await fetch(httpUrl + tokenRoute, { headers: { cookie: `${cookieName}=${accessToken(claims)}` } })
    if (response.status !== 200) throw new Error(`token route answered ${response.status}: ${await response.text()}`)
    const body = await response.json() as { token: string }
    return body.token
  }

  async function connect ({ claims, token, via = 'protocol', headers }: ConnectOptions = {}): Promise<TestClient> {
    const jwt = token ?? await wsToken(claims)
    const client = via === 'protocol'
      ? new TestClient(wsUrl, ['pov-realtime.v1', `bearer.${jwt}`], headers)
      : new TestClient(`${wsUrl}?token=${encodeURIComponent(jwt)}`, undefined, headers)
    t.teardown(() => client.terminate())
    await opened(client)
    return client
  }

  return { app, port, httpUrl, wsUrl, logs, wsToken, connect }
}

/** Resolves after `ms` milliseconds. */
export function sleep (ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

/** Polls `check` until it returns true, or fails after `timeout` ms. */
export async function waitFor (check: () => boolean, timeout = 2000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeout
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(5)
  }
}

/** A valid activity for `povId`, with overrides. */
export function activity (povId = 'p1', overrides: Record<string, unknown> = {}) {
  return {
    id: `a-${Math.random().toString(36).slice(2)}`,
    type: 'note',
    action: 'created',
    povId,
    userId: 'u1',
    title: 'New note',
    message: 'Hello',
    ...overrides
  }
}
