/**
 * Property-based fuzzing of the message path (PROTOCOL.md, "Messages"): whatever a client sends, the server only ever
 * answers with messages the protocol defines, never throws, never pollutes prototypes, and the socket either stays
 * usable (ping → pong) or is closed with a documented code.
 *
 * Each property runs against its own real server registered with `rateLimit: false`, so that the rate limit (tested
 * elsewhere) does not end the run; one socket is reused across runs and replaced whenever the server has closed it.
 * After each fuzzed frame the client sends a `ping`, which also resets the invalid-message streak, so each frame is
 * judged on its own.
 */
import { TypeCompiler } from '@sinclair/typebox/compiler'
import fc from 'fast-check'
import t, { type Test } from 'tap'
import type { PovRealtimeOptions } from '../../index.js'
import { ServerMessage } from '../../types/schemas.js'
import { CloseCode } from '../../types/wire-constants.js'
import type { Closed, Message, TestClient } from '../helpers/client.js'
import { RawWebSocket } from '../helpers/raw-socket.js'
import { activity, startServer, waitFor, type TestServer } from '../helpers/server.js'

const isServerMessage = TypeCompiler.Compile(ServerMessage)

/** The close codes a fuzzed frame may earn (PROTOCOL.md, "Close codes", plus those the WebSocket layer sends). */
const DOCUMENTED_CLOSE_CODES: ReadonlySet<number> = new Set([
  CloseCode.PROTOCOL_ERROR, CloseCode.INVALID_PAYLOAD, CloseCode.POLICY_VIOLATION, CloseCode.MESSAGE_TOO_BIG, CloseCode.TOO_MANY
])

const NUM_RUNS = 200
/** Bigger than the default `maxPayload` (16 KiB), so that some frames earn 1009. */
const HUGE = 20_000

/** One frame as a fuzzer produces it: text (possibly not UTF-8) or binary. */
interface FuzzFrame { readonly payload: Buffer | string, readonly binary: boolean }

/** JSON text of `value` (`null` for what JSON cannot hold). */
function json (value: unknown): string {
  return JSON.stringify(value) ?? 'null'
}

/**
 * A key-value list written out as a JSON object by hand (each value already JSON text), so that keys like `__proto__`,
 * duplicate keys and nesting deeper than `JSON.stringify` can write all reach the wire.
 */
function objectText (entries: ReadonlyArray<readonly [string, string]>): string {
  return `{${entries.map(([key, value]) => `${JSON.stringify(key)}:${value}`).join(',')}}`
}

/** Keeps one open client for a property, replacing it after the server closes it. */
class FuzzSession {
  readonly #server: TestServer
  readonly #token: Promise<string>
  #client: TestClient | undefined
  #closed: Closed | undefined
  /** Every message any of this property's sockets received. */
  readonly received: Message[] = []

  constructor (server: TestServer) {
    this.#server = server
    this.#token = server.wsToken({ userId: 'fuzzer' })
  }

  async #current (): Promise<TestClient> {
    if (this.#client && !this.#closed) return this.#client
    const client = await this.#server.connect({ token: await this.#token })
    this.#client = client
    this.#closed = undefined
    client.ws.on('message', (data) => { this.received.push(JSON.parse(data.toString()) as Message) })
    client.closed.then((closed) => { if (this.#client === client) this.#closed = closed })
    return client
  }

  /**
   * Sends the frame, then a ping; resolves with how it ended: `usable` (the pong came) or the close code. Every
   * message received meanwhile must be a protocol message.
   */
  async send (frame: FuzzFrame): Promise<{ readonly usable: true } | { readonly usable: false, readonly code: number }> {
    const client = await this.#current()
    const before = client.messages.length
    const pong = client.next((m) => m.type === 'pong' && client.messages.indexOf(m) >= before, 5000)
    pong.catch(() => {})
    client.ws.send(frame.payload, { binary: frame.binary })
    if (client.ws.readyState === client.ws.OPEN) client.send({ type: 'ping' })
    return await Promise.race([
      pong.then(() => ({ usable: true as const })),
      client.closed.then(({ code }) => ({ usable: false as const, code }))
    ])
  }
}

/** What a property may add to a run. */
interface FuzzExtras {
  /** Close codes this property may earn on top of the documented ones for bad frames. */
  readonly closeCodes?: readonly number[]
  /** Started with the run (the server's own doings alongside the client's); the function it returns stops them. */
  readonly alongside?: (server: TestServer) => () => void
}

/**
 * Runs `property` over `arbitrary` against a fresh server (with `options` on top of `rateLimit: false`), then checks
 * what every property must leave true. Resolves with every message the fuzzed sockets received.
 */
async function fuzz (
  tt: Test, arbitrary: fc.Arbitrary<FuzzFrame>, options: Partial<PovRealtimeOptions> = {}, extras: FuzzExtras = {}
): Promise<readonly Message[]> {
  const server = await startServer(tt, { rateLimit: false, ...options })
  const session = new FuzzSession(server)
  const closeCodesAllowed = new Set([...DOCUMENTED_CLOSE_CODES, ...extras.closeCodes ?? []])
  const stop = extras.alongside?.(server)
  const objectKeys = Object.getOwnPropertyNames(Object.prototype).sort()
  const arrayKeys = Object.getOwnPropertyNames(Array.prototype).sort()
  const closeCodes = new Map<number, number>()
  let usable = 0

  await fc.assert(fc.asyncProperty(arbitrary, async (frame) => {
    const outcome = await session.send(frame)
    if (outcome.usable) usable++
    else {
      closeCodes.set(outcome.code, (closeCodes.get(outcome.code) ?? 0) + 1)
      if (!closeCodesAllowed.has(outcome.code)) throw new Error(`closed with undocumented code ${outcome.code}`)
    }
    const stray = session.received.find((m) => !isServerMessage.Check(m))
    if (stray) throw new Error(`not a protocol message: ${JSON.stringify(stray).slice(0, 300)}`)
  }), { numRuns: NUM_RUNS, endOnFailure: true }).finally(() => stop?.())

  tt.comment(`${usable} runs left the socket usable; closes: ${JSON.stringify(Object.fromEntries(closeCodes))}`)
  tt.ok(session.received.length > 0, 'the server answered')
  tt.same(Object.getOwnPropertyNames(Object.prototype).sort(), objectKeys, 'Object.prototype gained no keys')
  tt.same(Object.getOwnPropertyNames(Array.prototype).sort(), arrayKeys, 'Array.prototype gained no keys')
  tt.equal(({} as Record<string, unknown>).polluted, undefined, 'a fresh object has no polluted property')
  const faults = server.logs.filter((line) => (JSON.parse(line) as { level: number }).level >= 50)
  tt.same(faults, [], 'the server logged no error or fatal line')

  // The process keeps serving: a fresh client subscribes and receives an activity.
  const fresh = await server.connect({ claims: { userId: 'after-fuzz' } })
  tt.match(await fresh.subscribe('after-fuzz'), { type: 'subscribed', povId: 'after-fuzz' })
  await server.app.broadcastActivity(activity('after-fuzz', { id: 'after-fuzz-1' }))
  tt.match(await fresh.next('activity', 5000), { data: { id: 'after-fuzz-1', povId: 'after-fuzz' } },
    'a fresh client still receives activities')
  return session.received
}

const text = (payload: Buffer | string): FuzzFrame => ({ payload, binary: false })

// ---- arbitraries --------------------------------------------------------------------------------

/** Any bytes (mostly not UTF-8), or any UTF-8 text. */
const randomBytes = fc.oneof(
  fc.uint8Array({ maxLength: 512 }).map((bytes) => Buffer.from(bytes)),
  fc.string({ unit: 'binary', maxLength: 512 }).map((chars) => Buffer.from(chars))
)

const hostileKey = fc.constantFrom('__proto__', 'constructor', 'prototype', 'polluted', 'type', 'povId', 'toString', 'hasOwnProperty')

const hostileString = fc.oneof(
  fc.string({ unit: 'grapheme', maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.constantFrom('__proto__', 'constructor', 'prototype', '', ' ', 'p1', 'p1/../p2', 'p1\u0000', '💥', 'ﬀ', 'a'.repeat(129)),
  fc.integer({ min: 1000, max: HUGE }).map((length) => 'x'.repeat(length))
)

/** JSON text of arrays or objects nested up to 10,000 deep: some fit under `maxPayload`, some do not. */
const deepNesting = fc.tuple(fc.integer({ min: 100, max: 10_000 }), fc.boolean()).map(([depth, arrays]) => arrays
  ? '['.repeat(depth) + ']'.repeat(depth)
  : '{"__proto__":'.repeat(depth) + '1' + '}'.repeat(depth))

/** JSON text of a value of any shape, where the protocol expects a string. */
const hostileValue: fc.Arbitrary<string> = fc.oneof(
  hostileString.map(json),
  fc.double().map(json),
  fc.integer().map(json),
  fc.boolean().map(json),
  fc.constant('null'),
  fc.jsonValue({ maxDepth: 3 }).map(json),
  deepNesting,
  fc.array(fc.tuple(hostileKey, fc.jsonValue({ maxDepth: 2 }).map(json)), { maxLength: 3 }).map(objectText)
)

const MESSAGE_TYPES = ['ping', 'subscribe', 'unsubscribe', 'auth', 'status', 'typing', 'read', 'reads'] as const
const FIELDS = ['povId', 'since', 'token', 'status', 'typing', 'cursor', 'userId'] as const

/** A message of a known type whose fields (and extra keys) are hostile. */
const hostileMessage = fc.record({
  type: fc.oneof(fc.constantFrom(...MESSAGE_TYPES).map(json), hostileValue),
  fields: fc.array(fc.tuple(fc.oneof(fc.constantFrom(...FIELDS), hostileKey), hostileValue), { maxLength: 4 })
}).map(({ type, fields }) => text(objectText([['type', type], ...fields])))

t.test('random bytes as text and binary frames get protocol answers or a documented close', async (tt) => {
  await fuzz(tt, fc.tuple(randomBytes, fc.boolean()).map(([payload, binary]) => ({ payload, binary })))
})

t.test('random JSON values get protocol answers or a documented close', async (tt) => {
  await fuzz(tt, fc.jsonValue().map((value) => text(json(value))))
})

t.test('valid-shaped messages with hostile fields get protocol answers or a documented close', async (tt) => {
  await fuzz(tt, hostileMessage)
})

t.test('with readReceipts on, valid-shaped messages with hostile fields get protocol answers or a documented close', async (tt) => {
  await fuzz(tt, hostileMessage, { readReceipts: true })
})

t.test('with presence on, valid-shaped messages with hostile fields get protocol answers or a documented close', async (tt) => {
  await fuzz(tt, hostileMessage, { presence: true })
})

/** Well-formed messages about a few PoVs, so that subscriptions exist for revocations and re-checks to end. */
const FUZZ_POVS = ['p1', 'p2', 'p3'] as const
const povId = fc.constantFrom(...FUZZ_POVS)
const povMessage = fc.oneof(
  fc.record({ type: fc.constant('subscribe'), povId }),
  fc.record({ type: fc.constant('unsubscribe'), povId }),
  fc.record({ type: fc.constant('typing'), povId, typing: fc.boolean() }),
  fc.record({ type: fc.constant('reads'), povId }),
  fc.record({ type: fc.constant('status'), status: fc.constantFrom('active', 'idle') })
).map((message) => text(json(message)))

t.test('while the server revokes and re-checks, every answer is a protocol message (unsubscribed revoked, 4003 included)', async (tt) => {
  const received = await fuzz(tt, fc.oneof(povMessage, povMessage, hostileMessage), {
    presence: true,
    readReceipts: true,
    reauthorizeInterval: 20,
    // Refuses about a third of the fuzzer's checks, subscribes and re-checks alike (a check that hangs or throws is
    // logged at error, which this run counts as a fault: those are tested in test/revocation.test.ts). The fresh
    // client that checks the server still serves afterwards is always allowed.
    authorizeSubscription: (user) => user.userId !== 'fuzzer' || Math.random() > 0.35
  }, {
    closeCodes: [CloseCode.FORBIDDEN],
    alongside: (server) => {
      let stopped = false
      const revoke = () => {
        if (stopped) return
        const everything = Math.random() < 0.02
        const target = everything ? { userId: 'fuzzer' } : { userId: 'fuzzer', povId: FUZZ_POVS[Math.floor(Math.random() * 3)]! }
        server.app.povRealtime.revoke(target).catch(() => {}).finally(() => { setTimeout(revoke, Math.random() * 5) })
      }
      revoke()
      return () => { stopped = true }
    }
  })
  const revoked = received.filter((m) => m.type === 'unsubscribed' && m.reason === 'revoked').length
  tt.comment(`${revoked} revocations reached the fuzzed sockets`)
  tt.ok(revoked > 0, 'the run saw revocations')
})

t.test('frames with any opcode (reserved ones included) and payload get protocol answers or a documented close', async (tt) => {
  // Below the `ws` client: a raw socket sends what no correct client would (continuation frames out of the blue,
  // reserved opcodes, oversized control frames). A fresh socket per run, since most of these end the connection.
  const server = await startServer(tt, { rateLimit: false })
  const token = await server.wsToken({ userId: 'frame-fuzzer' })
  const objectKeys = Object.getOwnPropertyNames(Object.prototype).sort()
  const closeCodes = new Map<number, number>()
  const OPCODE_PONG = 0xa
  const OPCODE_CLOSE = 0x8
  const opcode = fc.integer({ min: 0, max: 15 }).filter((op) => op !== OPCODE_CLOSE) // a client close is a normal close

  await fc.assert(fc.asyncProperty(opcode, fc.uint8Array({ maxLength: 300 }), async (op, payload) => {
    const socket = await RawWebSocket.open(server.port, '/ws', token)
    try {
      socket.sendFrame(op, Buffer.from(payload))
      socket.send({ type: 'ping' })
      const answered = () => socket.messages().some((m) => m.type === 'pong') || socket.closeCodes().length > 0
      await waitFor(answered, 5000, 'a pong or a close frame')
      const stray = socket.frames().find((frame) => frame.opcode !== OPCODE_PONG && frame.opcode !== OPCODE_CLOSE &&
        !(frame.opcode === 0x1 && isServerMessage.Check(JSON.parse(frame.payload.toString()))))
      if (stray) throw new Error(`not a protocol frame: opcode ${stray.opcode}, ${stray.payload.toString().slice(0, 200)}`)
      for (const code of socket.closeCodes()) {
        closeCodes.set(code, (closeCodes.get(code) ?? 0) + 1)
        if (!DOCUMENTED_CLOSE_CODES.has(code)) throw new Error(`closed with undocumented code ${code}`)
      }
    } finally {
      socket.destroy()
    }
  }), { numRuns: 100, endOnFailure: true })

  tt.comment(`closes: ${JSON.stringify(Object.fromEntries(closeCodes))}`)
  tt.ok(closeCodes.size > 0, 'some frames were refused with a close')
  tt.same(Object.getOwnPropertyNames(Object.prototype).sort(), objectKeys, 'Object.prototype gained no keys')
  const faults = server.logs.filter((line) => (JSON.parse(line) as { level: number }).level >= 50)
  tt.same(faults, [], 'the server logged no error or fatal line')
  await waitFor(() => server.app.povRealtime.stats().connections === 0, 5000, 'every fuzzed socket to be gone')
})

t.test('a __proto__ key in a subscribe pollutes nothing and is refused as INVALID_MESSAGE', async (tt) => {
  const server = await startServer(tt, { rateLimit: false })
  const client = await server.connect()
  const answer = await client.request(objectText([['type', '"subscribe"'], ['povId', '"p1"'], ['__proto__', '{"polluted":true}']]), 'error')
  tt.match(answer, { type: 'error', code: 'INVALID_MESSAGE' })
  tt.equal(({} as Record<string, unknown>).polluted, undefined)
  tt.match(await client.request({ type: 'ping' }, 'pong'), { type: 'pong' }, 'the socket is still usable')
})
