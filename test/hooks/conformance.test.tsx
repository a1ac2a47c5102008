/**
 * The test doubles against the real thing: one scripted session of a page (a PoV's feed, a PoV refused by
 * `authorizeSubscription`, a member who joins, reads, types, goes idle and leaves, read marks, the page hidden, a
 * network drop and the reconnect, the unmount) is run twice: against the plugin on loopback (real sockets, a TCP
 * proxy to cut the network) and against `MockWebSocketProvider`, with the `simulate*` calls an app's test would make
 * for the same server behaviour. What the hooks show after each step, and what the client sent, is recorded in both
 * runs; the recordings must be the same, so the doubles cannot drift from the protocol.
 *
 * What the doubles do not do, by design: they never answer by themselves (each server message is scripted, so each
 * step's `doubles` is the protocol's answer to it, spelt in `simulate*` calls); their token never expires, so the
 * token's refresh is not part of the session (`client-core` and `react-hooks` test it on a server); and a simulated
 * drop is always a 1006, never a close code of the server's (4002 token expired, 1011 internal error). Read marks
 * carry the server's clock (`readAt`), which no script can know: recordings leave it out.
 */
import 'global-jsdom/register'
import { StrictMode } from 'react'
import { act, cleanup, render } from '@testing-library/react'
import { isDeepStrictEqual } from 'node:util'
import t from 'tap'
import {
  PovRealtimeProvider, RealtimeClient, useActivityEffect, usePovActivities, usePresence, useReadReceipts, useTyping,
  useWebSocket
} from '../../hooks/index.js'
import {
  MockWebSocketProvider, getSentMessages, resetWebSocketMock, simulateConnectionStatus, simulateJoin, simulateLeave,
  simulatePresence, simulateRead, simulateReads, simulateStatus, simulateSubscribed, simulateTyping,
  simulateWebSocketMessage
} from '../../hooks/testing/index.js'
import type { TestClient } from '../helpers/client.js'
import { clientSetup } from '../helpers/hook-fixtures.js'
import { FakePage } from '../helpers/page-doubles.js'
import { activity, startServer, waitFor, type Teardown, type TestServer } from '../helpers/server.js'
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.js'

// ---- what the page shows --------------------------------------------------------------------

/** What the hooks gave at the last render; their functions are how the session acts as the user. */
interface Probe {
  connectionStatus: string
  /** Every status rendered, without repeats in a row. */
  statuses: string[]
  feed: ReturnType<typeof usePovActivities>
  members: ReturnType<typeof usePresence>
  typing: ReturnType<typeof useTyping>
  receipts: ReturnType<typeof useReadReceipts>
  refused: ReturnType<typeof usePovActivities>
  /** What `useActivityEffect` was called with: `activity <id>` or `resync`. */
  events: string[]
}

/** The page of the session: one PoV with every feature, and a PoV the user may not watch. */
function Page ({ probe }: { probe: Partial<Probe> }) {
  const { connectionStatus } = useWebSocket()
  const feed = usePovActivities('p1')
  const members = usePresence('p1')
  const typing = useTyping('p1')
  const receipts = useReadReceipts('p1')
  const refused = usePovActivities('secret')
  useActivityEffect('p1', (event) => probe.events!.push(event.type === 'activity' ? `activity ${event.activity.id}` : event.type))
  probe.events ??= []
  probe.statuses ??= []
  if (probe.statuses.at(-1) !== connectionStatus) probe.statuses.push(connectionStatus)
  Object.assign(probe, { connectionStatus, feed, members, typing, receipts, refused })
  return null
}

/** What the hooks show, as recorded: cursors named by their activity, `readAt` left out. */
interface Shown {
  status: string
  /** `id title`, and who has read that far. */
  feed: string[]
  feedError: string | null
  /** `userId:status:name` */
  members: string[]
  typing: string[]
  readCursor: string | null
  unread: number | null
  /** `userId@activity` */
  reads: string[]
  /** The error code shown for the refused PoV. */
  refused: string | null
}

/** One step as recorded. */
interface Recorded {
  shown: Shown | 'unmounted'
  /** What `useActivityEffect` heard during the step. */
  events: string[]
  /** What the client sent during the step (pings and token refreshes aside), cursors named by their activity. */
  sent: Array<Record<string, unknown>>
}

/** Where a run is: its probe, its cursors by activity, what its client sent. */
interface Run {
  readonly probe: Partial<Probe>
  /** The cursor of activity `id` in this run. */
  readonly cursors: Map<string, string>
  /** Everything the client sent so far, in order. */
  sent (): Array<Record<string, unknown>>
}

function nameCursor (run: Run, cursor: unknown): unknown {
  if (typeof cursor !== 'string') return cursor
  for (const [id, known] of run.cursors) if (known === cursor) return `@${id}`
  return `unknown cursor ${cursor}`
}

function show (run: Run): Shown {
  const { probe } = run
  const { feed, members, typing, receipts, refused } = probe as Probe
  return {
    status: probe.connectionStatus!,
    feed: feed.activities.map((a) => {
      const readers = receipts.readersOf(a.id)
      return `${a.id} ${a.title}${readers.length > 0 ? ` seen by ${readers.join(', ')}` : ''}`
    }),
    feedError: feed.error?.code ?? null,
    members: members.map((m) => `${m.userId}:${m.status}:${String(m.info.name ?? '')}`),
    typing: [...typing.typingUserIds],
    readCursor: nameCursor(run, receipts.readCursor) as string | null,
    unread: receipts.unread,
    reads: receipts.reads.map((mark) => `${mark.userId}${nameCursor(run, mark.cursor) as string}`),
    refused: refused.error?.code ?? null
  }
}

function sentSince (run: Run, from: number): Array<Record<string, unknown>> {
  return run.sent().slice(from)
    .filter((message) => message.type !== 'ping' && message.type !== 'auth')
    .map((message) => {
      const named = { ...message }
      if ('since' in named) named.since = nameCursor(run, named.since)
      if ('cursor' in named) named.cursor = nameCursor(run, named.cursor)
      return named
    })
}

// ---- the session ------------------------------------------------------------------------------

const LI = { userId: 'li', info: { name: 'LI' } }
const ANA = { userId: 'ana', info: { name: 'ANA' } }

/** The real server's side of a step: the server, the network, and li (a second user, on a socket of his own). */
interface ServerWorld {
  server: TestServer
  readonly proxy: TcpProxy
  readonly page: FakePage
  readonly run: Run
  li: TestClient | undefined
  publish (id: string, title: string): Promise<void>
  /** Starts a new server (same options) behind the proxy and cuts the network: the old one is gone for the page. */
  restartServer (): Promise<void>
}

/** The doubles' side of a step: the simulate calls for what the server would send. */
interface MockWorld {
  readonly page: FakePage
  readonly run: Run
  /** The activity message the server would send for `id` (cursor `c<n>`). */
  activity (id: string, title: string): { type: 'activity', [field: string]: unknown }
}

interface Step {
  name: string
  /** What happens, with the real server. Then the run waits until the page shows `expected`. */
  server: (world: ServerWorld) => Promise<void> | void
  /** The same, with the doubles: a test's simulate calls (inside one `act`). */
  doubles: (world: MockWorld) => void
  /**
   * What the page then shows, what `useActivityEffect` heard (none unless said) and what the client sent: the script's
   * word, checked against the server's run.
   */
  expected: Omit<Recorded, 'events'> & { events?: string[] }
}

function typeAndSend (run: Run): void {
  for (let keystrokes = 0; keystrokes < 3; keystrokes++) run.probe.typing!.setTyping(true)
  run.probe.typing!.setTyping(false)
}

const forbidden = (povId: string) => ({ type: 'error', code: 'FORBIDDEN', message: 'not allowed to watch this PoV', povId })

/** The page's state between steps that change only part of it. */
const base: Shown = {
  status: 'connected',
  feed: [],
  feedError: null,
  members: ['ana:active:ANA'],
  typing: [],
  readCursor: null,
  unread: 0,
  reads: [],
  refused: 'FORBIDDEN'
}
const afterTwo = { ...base, members: ['ana:active:ANA', 'li:active:LI'], feed: ['a1 First', 'a2 Second'], unread: 2 }
const afterMarks = {
  ...afterTwo,
  feed: ['a1 First seen by ana, li', 'a2 Second seen by ana'],
  readCursor: '@a2',
  unread: 0,
  reads: ['ana@a2', 'li@a1']
}
const bothIdle = { ...afterMarks, members: ['ana:idle:ANA', 'li:idle:LI'] }
const alone = { ...bothIdle, status: 'reconnected', feed: [...afterMarks.feed, 'a3 Third'], unread: 1, members: ['ana:idle:ANA'] }

const STEPS: Step[] = [
  {
    name: 'the page mounts: p1 is subscribed (read receipts and presence on), the secret PoV refused',
    server: () => {},
    doubles: () => {
      simulateSubscribed('p1', { readCursor: null, unread: 0 })
      simulatePresence('p1', [ANA])
      simulateWebSocketMessage(forbidden('secret'))
    },
    expected: {
      shown: base,
      sent: [{ type: 'subscribe', povId: 'p1' }, { type: 'subscribe', povId: 'secret' }, { type: 'reads', povId: 'p1' }]
    }
  },
  {
    name: 'li subscribes to p1',
    server: async (world) => {
      world.li = await world.server.connect({ claims: { userId: 'li' } })
      await world.li.subscribe('p1')
    },
    doubles: () => simulateJoin('p1', LI),
    expected: { shown: { ...base, members: ['ana:active:ANA', 'li:active:LI'] }, sent: [] }
  },
  {
    name: 'two activities are published',
    server: async (world) => {
      await world.publish('a1', 'First')
      await world.publish('a2', 'Second')
    },
    doubles: (world) => {
      simulateWebSocketMessage(world.activity('a1', 'First'))
      simulateWebSocketMessage(world.activity('a2', 'Second'))
    },
    expected: { shown: afterTwo, events: ['activity a1', 'activity a2'], sent: [] }
  },
  {
    name: 'li reads a1',
    server: (world) => world.li!.send({ type: 'read', povId: 'p1', cursor: world.run.cursors.get('a1') }),
    doubles: (world) => simulateRead('p1', 'li', world.run.cursors.get('a1')!),
    expected: { shown: { ...afterTwo, feed: ['a1 First seen by li', 'a2 Second'], reads: ['li@a1'] }, sent: [] }
  },
  {
    name: 'ana marks everything read (the server echoes her mark)',
    server: (world) => { world.run.probe.receipts!.markRead() },
    doubles: (world) => {
      world.run.probe.receipts!.markRead()
      simulateRead('p1', 'ana', world.run.cursors.get('a2')!)
    },
    expected: { shown: afterMarks, sent: [{ type: 'read', povId: 'p1', cursor: '@a2' }] }
  },
  {
    name: 'li starts typing',
    server: (world) => world.li!.send({ type: 'typing', povId: 'p1', typing: true }),
    doubles: () => simulateTyping('p1', 'li'),
    expected: { shown: { ...afterMarks, typing: ['li'] }, sent: [] }
  },
  {
    name: 'li stops typing',
    server: (world) => world.li!.send({ type: 'typing', povId: 'p1', typing: false }),
    doubles: () => simulateTyping('p1', 'li', false),
    expected: { shown: afterMarks, sent: [] }
  },
  {
    name: 'ana types a note and sends it: the server hears her, and never echoes her typing to her',
    server: (world) => typeAndSend(world.run),
    doubles: (world) => typeAndSend(world.run),
    expected: {
      shown: afterMarks,
      sent: [{ type: 'typing', povId: 'p1', typing: true }, { type: 'typing', povId: 'p1', typing: false }]
    }
  },
  {
    name: 'li goes idle',
    server: (world) => world.li!.send({ type: 'status', status: 'idle' }),
    doubles: () => simulateStatus('p1', 'li', 'idle', LI.info),
    expected: { shown: { ...afterMarks, members: ['ana:active:ANA', 'li:idle:LI'] }, sent: [] }
  },
  {
    name: 'ana\'s page is hidden: she reports idle, and the server shows her so',
    server: (world) => world.page.hide(),
    doubles: (world) => {
      world.page.hide()
      simulateStatus('p1', 'ana', 'idle', ANA.info)
    },
    expected: { shown: bothIdle, sent: [{ type: 'status', status: 'idle' }] }
  },
  {
    name: 'the network drops',
    server: (world) => world.proxy.cut(),
    doubles: () => simulateConnectionStatus('disconnected'),
    expected: { shown: { ...bothIdle, status: 'disconnected' }, sent: [] }
  },
  {
    name: 'a3 is published while ana is away, then the network comes back: ana resumes after a2',
    server: async (world) => {
      await waitFor(() => world.server.app.povRealtime.stats().connections === 1, 5000, 'the server to see ana go')
      await world.publish('a3', 'Third')
      world.proxy.restore()
    },
    doubles: (world) => {
      simulateConnectionStatus('reconnected')
      // The server's answers, in its order: the replay, `subscribed`, the presence snapshot, the refusal, the marks.
      simulateWebSocketMessage(world.activity('a3', 'Third'))
      simulateSubscribed('p1', { recovered: true, readCursor: world.run.cursors.get('a2')!, unread: 1 })
      simulatePresence('p1', [{ ...ANA, status: 'idle' }, { ...LI, status: 'idle' }])
      simulateWebSocketMessage(forbidden('secret'))
      simulateReads('p1', [{ userId: 'ana', cursor: world.run.cursors.get('a2')! }, { userId: 'li', cursor: world.run.cursors.get('a1')! }])
    },
    expected: {
      shown: { ...bothIdle, status: 'reconnected', feed: [...afterMarks.feed, 'a3 Third'], unread: 1 },
      events: ['activity a3'],
      sent: [
        { type: 'status', status: 'idle' },
        { type: 'subscribe', povId: 'p1', since: '@a2' },
        { type: 'subscribe', povId: 'secret' },
        { type: 'reads', povId: 'p1' }
      ]
    }
  },
  {
    name: 'li unsubscribes',
    server: (world) => world.li!.send({ type: 'unsubscribe', povId: 'p1' }),
    doubles: () => simulateLeave('p1', 'li'),
    expected: { shown: alone, sent: [] }
  },
  {
    name: 'the server goes down',
    server: (world) => world.restartServer(),
    doubles: () => simulateConnectionStatus('disconnected'),
    expected: { shown: { ...alone, status: 'disconnected' }, sent: [] }
  },
  {
    name: 'a new server (no history, no marks) takes its place: it cannot resume, so the app is told to resync',
    server: (world) => world.proxy.restore(),
    doubles: () => {
      simulateConnectionStatus('reconnected')
      simulateSubscribed('p1', { recovered: false, readCursor: null, unread: 0 })
      simulatePresence('p1', [{ ...ANA, status: 'idle' }])
      simulateWebSocketMessage(forbidden('secret'))
      simulateReads('p1', [])
    },
    expected: {
      // The feed is kept for the app to refetch; the marks are the new server's (none).
      shown: { ...alone, feed: ['a1 First', 'a2 Second', 'a3 Third'], readCursor: null, unread: 0, reads: [] },
      events: ['resync'],
      sent: [
        { type: 'status', status: 'idle' },
        { type: 'subscribe', povId: 'p1', since: '@a3' },
        { type: 'subscribe', povId: 'secret' },
        { type: 'reads', povId: 'p1' }
      ]
    }
  },
  {
    name: 'the page unmounts: no presence hook is left, so the status is back to the default, and both PoVs are unsubscribed',
    server: () => cleanup(),
    doubles: () => cleanup(),
    expected: {
      shown: 'unmounted',
      // Each PoV once its last hook is gone: p1's last is the activity effect, mounted after the secret PoV's feed.
      sent: [{ type: 'status', status: 'active' }, { type: 'unsubscribe', povId: 'secret' }, { type: 'unsubscribe', povId: 'p1' }]
    }
  }
]

const STATUSES = ['disconnected', 'connected', 'disconnected', 'reconnected', 'disconnected', 'reconnected']

interface Recording {
  steps: Array<{ step: string } & Recorded>
  statuses: string[]
}

/** Where the previous step's recording ended: what the client had sent, and heard, by then. */
interface Mark { sent: number, events: number }

function record (run: Run, unmounted: boolean, from: Mark): Recorded {
  return { shown: unmounted ? 'unmounted' : show(run), events: run.probe.events!.slice(from.events), sent: sentSince(run, from.sent) }
}

const markOf = (run: Run): Mark => ({ sent: run.sent().length, events: run.probe.events!.length })

// ---- the two runs ------------------------------------------------------------------------------

const SERVER_OPTIONS = {
  presence: { info: (user: { userId: string }) => ({ name: user.userId.toUpperCase() }) },
  readReceipts: true,
  authorizeSubscription: (_user: unknown, povId: string) => povId !== 'secret'
}

/** The step's expectation in full (no activity events unless it says so). */
const expectedOf = (step: Step): Recorded => ({ events: [], ...step.expected })

async function runOnServer (t: Teardown): Promise<Recording> {
  const server = await startServer(t, SERVER_OPTIONS)
  const proxy = await startTcpProxy(t, server.port)
  const page = new FakePage()
  // The socket goes through the proxy (which the session cuts); the token route does not.
  const { clientOptions, sockets } = clientSetup(server.httpUrl, {
    socketUrl: proxy.wsUrl(), reconnect: { initialDelay: 100, maxDelay: 500 }, document: page, persist: false
  }, { userId: 'ana' })
  const client = new RealtimeClient(clientOptions)
  t.teardown(() => client.close())
  const run: Run = { probe: {}, cursors: new Map(), sent: () => sockets.sent }
  const world: ServerWorld = {
    server,
    proxy,
    page,
    run,
    li: undefined,
    async publish (id, title) {
      const { cursor } = await world.server.app.broadcastActivity(activity('p1', { id, title, userId: 'bo' }))
      run.cursors.set(id, cursor)
    },
    async restartServer () {
      world.server = await startServer(t, SERVER_OPTIONS)
      proxy.retarget(world.server.port)
      proxy.cut()
    }
  }
  render(<StrictMode><PovRealtimeProvider client={client}><Page probe={run.probe} /></PovRealtimeProvider></StrictMode>)
  const steps: Recording['steps'] = []
  let unmounted = false
  let from: Mark = { sent: 0, events: 0 }
  for (const step of STEPS) {
    await step.server(world)
    unmounted ||= step.expected.shown === 'unmounted'
    const now = () => record(run, unmounted, from)
    // The server answers in its own time: wait for the script's word, then record what is there, whatever it is. A
    // step that never gets there ends the session: the steps after it would start from a state the script does not
    // describe (and each would wait out its own timeout).
    const settled = await waitFor(() => isDeepStrictEqual(now(), expectedOf(step)), 10_000, step.name).then(() => true, () => false)
    steps.push({ step: step.name, ...now() })
    if (!settled) break
    from = markOf(run)
  }
  return { steps, statuses: [...run.probe.statuses!] }
}

async function runOnDoubles (): Promise<Recording> {
  resetWebSocketMock()
  const page = new FakePage()
  let sequence = 0
  const run: Run = { probe: {}, cursors: new Map(), sent: () => getSentMessages() as Array<Record<string, unknown>> }
  const world: MockWorld = {
    page,
    run,
    activity (id, title) {
      const cursor = `c${++sequence}`
      run.cursors.set(id, cursor)
      const data = { ...activity('p1', { id, title, userId: 'bo' }), createdAt: new Date().toISOString() }
      return { type: 'activity' as const, cursor, data }
    }
  }
  render(<StrictMode><MockWebSocketProvider options={{ userId: 'ana', document: page }}><Page probe={run.probe} /></MockWebSocketProvider></StrictMode>)
  const steps: Recording['steps'] = []
  let unmounted = false
  let from: Mark = { sent: 0, events: 0 }
  for (const step of STEPS) {
    act(() => step.doubles(world))
    // An unmount's unsubscribe goes out on the next microtask (so that a remount in the same commit changes nothing).
    await Promise.resolve()
    unmounted ||= step.expected.shown === 'unmounted'
    steps.push({ step: step.name, ...record(run, unmounted, from) })
    from = markOf(run)
  }
  return { steps, statuses: [...run.probe.statuses!] }
}

t.test('one session, against the server and against the doubles: the hooks show the same at every step', async (t) => {
  const onServer = await runOnServer(t)
  cleanup()
  // The unsubscribes of the unmount go out on the next microtask: let them, before the doubles' run starts.
  await Promise.resolve()
  const onDoubles = await runOnDoubles()
  t.teardown(() => resetWebSocketMock())

  for (const [i, step] of STEPS.entries()) {
    if (i === onServer.steps.length) break
    t.same(onServer.steps[i], { step: step.name, ...expectedOf(step) }, `server: ${step.name}`)
    t.same(onDoubles.steps[i], onServer.steps[i], `doubles as the server: ${step.name}`)
  }
  t.equal(onServer.steps.length, STEPS.length, 'the session on the server went through every step')
  t.same(onServer.statuses, STATUSES, 'server: the statuses rendered, in order')
  t.same(onDoubles.statuses, onServer.statuses, 'doubles as the server: the statuses rendered, in order')
})
