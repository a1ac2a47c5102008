import t from 'tap'
import type { ActivityInput, BroadcastResult } from '../index.js'
import { activity, startServer } from './helpers/server.js'

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
