import { Writable } from 'node:stream'
import Fastify from 'fastify'
import t from 'tap'
import povRealtime, { type ActivityInput, type BroadcastResult } from '../index.js'
import { SECRET, activity, startServer } from './helpers/server.js'

/**
 * Calls `broadcastActivity` the way a route handler might, without awaiting, and reports whether it threw
 * synchronously (it must not) along with the promise it returned.
 */
function callWithoutAwait (broadcast: () => Promise<BroadcastResult>): { threw: unknown, promise: Promise<BroadcastResult> | undefined } {
  try {
    return { threw: undefined, promise: broadcast() }
  } catch (err) {
    return { threw: err, promise: undefined }
  }
}

t.test('broadcastActivity resolves the cursor subscribers receive and the number of sockets it reached', async (t) => {
  const server = await startServer(t)
  const tab1 = await server.connect()
  const tab2 = await server.connect()
  const colleague = await server.connect({ claims: { userId: 'u2' } })
  const elsewhere = await server.connect({ claims: { userId: 'u3' } })
  for (const client of [tab1, tab2, colleague]) await client.subscribe('p1')
  await elsewhere.subscribe('p2')

  const result = await server.app.broadcastActivity(activity('p1'))
  t.same(Object.keys(result).sort(), ['cursor', 'delivered'])
  t.equal(result.delivered, 3, 'three sockets watch p1')
  t.type(result.cursor, 'string')
  for (const client of [tab1, tab2, colleague]) t.equal((await client.next('activity')).cursor, result.cursor)

  t.equal((await server.app.broadcastActivity(activity('nobody-watches'))).delivered, 0)
  const stats = server.app.povRealtime.stats()
  t.equal(stats.broadcasts, 2)
  t.equal(stats.deliveries, 3)
})

t.test('cursors grow with each broadcast of a PoV', async (t) => {
  const server = await startServer(t)
  const first = await server.app.broadcastActivity(activity('p1'))
  const second = await server.app.broadcastActivity(activity('p1'))
  t.not(first.cursor, second.cursor)
})

t.test('createdAt is added when absent and kept when given', async (t) => {
  const server = await startServer(t)
  const client = await server.connect()
  await client.subscribe('p1')
  const before = Date.now()
  await server.app.broadcastActivity(activity('p1', { id: 'stamped' }))
  const stamped = (await client.next('activity')).data as { createdAt: string }
  t.match(stamped.createdAt, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/, 'an ISO 8601 time')
  const at = Date.parse(stamped.createdAt)
  t.ok(at >= before - 1000 && at <= Date.now() + 1000, 'the time of the broadcast')

  const createdAt = '2026-11-25T12:00:00.000Z'
  await server.app.broadcastActivity(activity('p1', { id: 'given', createdAt }))
  t.match((await client.next('activity')).data, { id: 'given', createdAt })
})

t.test('subscribers receive exactly the fields given, optional ones included', async (t) => {
  const server = await startServer(t)
  const client = await server.connect()
  await client.subscribe('p1')
  const input = activity('p1', {
    severity: 'warning',
    actionUrl: 'https://app.example.com/povs/p1',
    metadata: { noteId: 9, tags: ['a', 'b'], nested: { ok: true } },
    createdAt: '2026-11-25T12:00:00.000Z'
  })
  await server.app.broadcastActivity(input as ActivityInput)
  t.same((await client.next('activity')).data, input)
})

t.test('an invalid activity rejects with POV_REALTIME_INVALID_ACTIVITY, never throws, and reaches no subscriber', async (t) => {
  const server = await startServer(t)
  const client = await server.connect()
  await client.subscribe('p1')
  const cycle: Record<string, unknown> = {}
  cycle.self = cycle
  const { povId, ...withoutPovId } = activity('p1')
  t.equal(povId, 'p1')
  const invalid: Record<string, unknown> = {
    null: null,
    undefined,
    'a string': 'activity',
    'a number': 42,
    'an array': [activity('p1')],
    'an empty object': {},
    'no id': { ...activity('p1'), id: undefined },
    'no povId': withoutPovId,
    'no title': { ...activity('p1'), title: undefined },
    'no message': { ...activity('p1'), message: undefined },
    'no userId': { ...activity('p1'), userId: undefined },
    'no type': { ...activity('p1'), type: undefined },
    'no action': { ...activity('p1'), action: undefined },
    'an empty title': activity('p1', { title: '' }),
    'a numeric id': activity('p1', { id: 7 }),
    'a malformed povId': activity('p 1'),
    'an unknown top-level field': activity('p1', { passwordHash: '$2b$10$secret' }),
    'a bad severity': activity('p1', { severity: 'critical' }),
    'a javascript: actionUrl': activity('p1', { actionUrl: 'javascript:alert(1)' }),
    'a protocol-relative actionUrl': activity('p1', { actionUrl: '//evil.com' }),
    'a data: actionUrl': activity('p1', { actionUrl: 'data:text/html,<script>alert(1)</script>' }),
    'metadata that is an array': activity('p1', { metadata: [1, 2] }),
    'metadata that is a string': activity('p1', { metadata: 'x' }),
    'metadata that is null': activity('p1', { metadata: null }),
    'metadata with a BigInt': activity('p1', { metadata: { big: 10n } }),
    'metadata with a cycle': activity('p1', { metadata: cycle }),
    'oversize metadata': activity('p1', { metadata: { blob: 'x'.repeat(70 * 1024) } }),
    'an oversize message': activity('p1', { message: 'x'.repeat(10_001) }),
    'a createdAt that is not ISO': activity('p1', { createdAt: 'yesterday' })
  }
  for (const [name, input] of Object.entries(invalid)) {
    const { threw, promise } = callWithoutAwait(() => server.app.broadcastActivity(input as ActivityInput))
    t.equal(threw, undefined, `${name}: does not throw synchronously`)
    await t.rejects(promise!, { code: 'POV_REALTIME_INVALID_ACTIVITY', message: String }, `${name}: rejects`)
  }
  const valid = await server.app.broadcastActivity(activity('p1', { id: 'valid' }))
  const first = await client.next('activity')
  t.equal(first.cursor, valid.cursor, 'the first activity the subscriber sees is the valid one')
  t.same(client.activities().map((data) => data.id), ['valid'])
  const stats = server.app.povRealtime.stats()
  t.equal(stats.broadcasts, 1, 'only the valid activity was published')
  t.equal(stats.deliveries, 1)
})

t.test('an invalid activity rejects with a message that names the problem', async (t) => {
  const server = await startServer(t)
  await t.rejects(server.app.broadcastActivity(activity('p1', { passwordHash: 'x' }) as ActivityInput), { message: /passwordHash/ })
  await t.rejects(server.app.broadcastActivity(activity('p1', { severity: 'critical' }) as ActivityInput), { message: /severity/ })
})

t.test('an invalid activity let through a route is a server error (500, logged at error) that names the field', async (t) => {
  const lines: Array<{ level: number, msg: string, err?: { code?: string, message?: string } }> = []
  const logStream = new Writable({
    write (chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(line))
      done()
    }
  })
  const app = Fastify({ logger: { level: 'info', stream: logStream } })
  t.teardown(() => app.close())
  await app.register(povRealtime, { secret: SECRET })
  app.post('/api/notes', async () => {
    // The app's bug: a field name mistyped, past the compiler by a cast.
    const { cursor } = await app.broadcastActivity(activity('p1', { title: undefined, titel: 'New note' }) as unknown as ActivityInput)
    return { cursor }
  })
  const response = await app.inject({ method: 'POST', url: '/api/notes' })
  t.equal(response.statusCode, 500, 'the client did nothing wrong: not a 4xx')
  const body = response.json()
  t.equal(body.code, 'POV_REALTIME_INVALID_ACTIVITY')
  t.equal(body.message, "Invalid activity: 'titel': Unexpected property", 'the message names the field')
  const logged = lines.filter((line) => line.err?.code === 'POV_REALTIME_INVALID_ACTIVITY')
  t.equal(logged.length, 1, 'logged once')
  t.equal(logged[0]?.level, 50, 'at error level (50), not info')
  t.equal(logged[0]?.err?.message, body.message, 'with the same message')
})

/** docs/limits.md: a serialized activity is at most 64 KiB, counted in UTF-8 bytes of its JSON. */
const ACTIVITY_LIMIT_BYTES = 64 * 1024

/**
 * An activity whose JSON (as subscribers receive it in `data`) is exactly `bytes` long: `metadata.pad` is made of
 * `wide` characters (several UTF-8 bytes each, and fewer UTF-16 units than bytes) then ASCII filler. `createdAt` is
 * given, so the serializer adds nothing of its own.
 */
function activityOfBytes (bytes: number, id: string, wide = ''): ActivityInput {
  const base = activity('p1', { id, createdAt: '2024-01-01T00:00:00.000Z', metadata: { pad: '' } })
  const room = bytes - Buffer.byteLength(JSON.stringify(base))
  const wideBytes = Buffer.byteLength(wide)
  const count = wide === '' ? 0 : Math.floor((room - 1) / wideBytes)
  const pad = wide.repeat(count) + 'x'.repeat(room - count * wideBytes)
  const input = { ...base, metadata: { pad } } as ActivityInput
  if (Buffer.byteLength(JSON.stringify(input)) !== bytes) throw new Error(`built ${Buffer.byteLength(JSON.stringify(input))} bytes, not ${bytes}`)
  return input
}

for (const [variant, wide] of [['ASCII', ''], ['multi-byte (3-byte €)', '€']] as const) {
  t.test(`${variant}: an activity of exactly the limit is delivered; one byte more is refused and reaches no one`, async (t) => {
    const server = await startServer(t)
    const client = await server.connect()
    await client.subscribe('p1')

    const largest = activityOfBytes(ACTIVITY_LIMIT_BYTES, 'at-limit', wide)
    const accepted = await server.app.broadcastActivity(largest)
    t.equal(accepted.delivered, 1, 'the largest activity is accepted and reaches the subscriber')
    const received = await client.next('activity', 5000)
    t.equal(received.cursor, accepted.cursor)
    t.same(received.data, largest, 'delivered as given')
    t.equal(Buffer.byteLength(JSON.stringify(received.data)), ACTIVITY_LIMIT_BYTES)

    const over = activityOfBytes(ACTIVITY_LIMIT_BYTES + 1, 'over-limit', wide)
    await t.rejects(server.app.broadcastActivity(over), { code: 'POV_REALTIME_INVALID_ACTIVITY', message: /64|65536|bytes/ },
      'one byte more is refused')
    if (wide !== '') {
      // One 'x' of the accepted pad becomes a 2-byte 'é': the same number of characters, one byte more. Only a limit
      // that counts bytes refuses it.
      const pad = (largest.metadata as { pad: string }).pad
      const tipped = { ...largest, metadata: { pad: pad.slice(0, -1) + 'é' } }
      t.equal(JSON.stringify(tipped).length, JSON.stringify(largest).length, 'as many characters as the accepted one')
      t.ok(JSON.stringify(tipped).length < ACTIVITY_LIMIT_BYTES, 'and fewer characters than the limit')
      t.equal(Buffer.byteLength(JSON.stringify(tipped)), ACTIVITY_LIMIT_BYTES + 1)
      await t.rejects(server.app.broadcastActivity(tipped), { code: 'POV_REALTIME_INVALID_ACTIVITY' },
        'a 2-byte character that tips it over is refused')
    }

    // A marker after the refusals: the subscriber sees it right after the largest one, so nothing refused reached it.
    const marker = await server.app.broadcastActivity(activity('p1', { id: 'marker' }))
    t.equal((await client.next('activity', 5000)).cursor, marker.cursor)
    t.same(client.activities().map((data) => data.id), ['at-limit', 'marker'], 'nothing refused reached the subscriber')
    t.equal(server.app.povRealtime.stats().broadcasts, 2, 'only the accepted activities were published')
  })
}
