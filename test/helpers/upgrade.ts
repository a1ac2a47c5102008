/**
 * Test helpers for the upgrade's front door: one raw upgrade attempt whose outcome (opened, or refused with a status
 * and body) a test can assert, and JWTs forged byte by byte for the cases a signing library refuses to produce.
 */
import { createHmac } from 'node:crypto'
import type { IncomingHttpHeaders } from 'node:http'
import WebSocket from 'ws'
import { SECRET, type Teardown } from './server.js'
import { SOCKET_WAIT_MS, within } from './socket-waits.js'

export interface UpgradeOptions {
  /** Offered subprotocols (`Sec-WebSocket-Protocol`). */
  protocols?: string[]
  /** Extra request headers, such as `origin`. */
  headers?: Record<string, string>
}

/** What the client saw: the socket opened, or the server answered the upgrade with plain HTTP. */
export type UpgradeOutcome =
  | { readonly opened: true, readonly ws: WebSocket, readonly protocol: string, readonly responseHeaders: IncomingHttpHeaders }
  | { readonly opened: false, readonly status: number, readonly headers: IncomingHttpHeaders, readonly body: string }

/**
 * Attempts one upgrade. Resolves with the open socket (terminated at teardown) or with the refusal's status, headers
 * and body (its connection then destroyed); rejects on a network error, which neither outcome explains.
 */
export function attemptUpgrade (t: Teardown, url: string, { protocols, headers }: UpgradeOptions = {}): Promise<UpgradeOutcome> {
  return within(new Promise((resolve, reject) => {
    const ws = new WebSocket(url, protocols, { headers })
    let responseHeaders: IncomingHttpHeaders = {}
    ws.once('upgrade', (response) => { responseHeaders = response.headers })
    ws.once('open', () => {
      t.teardown(() => ws.terminate())
      resolve({ opened: true, ws, protocol: ws.protocol, responseHeaders })
    })
    ws.once('unexpected-response', (request, response) => {
      const chunks: Buffer[] = []
      response.on('data', (chunk: Buffer) => chunks.push(chunk))
      response.once('end', () => {
        request.destroy()
        resolve({ opened: false, status: response.statusCode ?? 0, headers: response.headers, body: Buffer.concat(chunks).toString() })
      })
      response.once('error', reject)
    })
    ws.once('error', reject)
  }), SOCKET_WAIT_MS, `the upgrade to ${url.split('?')[0]} to be answered`)
}

/** The three dot-separated segments of a JWT. */
export function jwtSegments (jwt: string): { header: string, payload: string, signature: string } {
  const [header = '', payload = '', signature = ''] = jwt.split('.')
  return { header, payload, signature }
}

function decodeSegment (segment: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(segment, 'base64url').toString()) as Record<string, unknown>
}

/**
 * `jwt` with its header and claims changed as given (an `undefined` value removes a claim), HMAC-SHA256 signed again
 * with `key` (default the test secret): for the tokens a signing library refuses to make, such as `exp` as a string.
 */
export function resignJwt (jwt: string, changes: { header?: Record<string, unknown>, claims?: Record<string, unknown> }, key: string | Buffer = SECRET): string {
  const segments = jwtSegments(jwt)
  const encode = (value: Record<string, unknown>) => Buffer.from(JSON.stringify(value)).toString('base64url')
  const signed = `${encode({ ...decodeSegment(segments.header), ...changes.header })}.${encode({ ...decodeSegment(segments.payload), ...changes.claims })}`
  return `${signed}.${createHmac('sha256', key).update(signed).digest('base64url')}`
}
