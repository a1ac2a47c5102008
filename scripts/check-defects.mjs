// Proves that the tests can fail: each entry of DEFECTS is a one-line bug put into a scratch copy of the working tree
// (never the tree itself), and every test file named with it must then fail. A defect no test catches is a test
// missing; a named file that does not catch it is a wrong claim in the table.
//
//   node scripts/check-defects.mjs               every defect; first runs each named test file on the unbroken copy
//   node scripts/check-defects.mjs --quick       the few marked `quick` (fast tests, no Redis, no browser): for CI,
//                                                where the suite itself shows the files pass unbroken
//   node scripts/check-defects.mjs --only <text> the defects whose name or file contains <text> (repeatable)
//
// Every search string must occur exactly once in its file, checked for the whole table on every run (the quick one
// too), so that a refactor that moves the code fails here loudly instead of leaving a defect that silently tests
// nothing. Each defect must also parse (esbuild): one caught only because it does not compile proves nothing.
// Prints one line per defect and a summary; exits 1 if any defect is not caught (or the table or a baseline is broken).
import { execFileSync, spawn } from 'node:child_process'
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { transform } from 'esbuild'

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)))
/** A test file that hangs is cut after this long (tap's own per-file timeout is 120 s). */
const FILE_TIMEOUT_MS = 150_000

/**
 * name: what the bug does, as a user would notice it. file, search, replace: the edit (search occurs exactly once).
 * tests: the files that must catch it (each of them). quick: part of `--quick`.
 */
const DEFECTS = [
  // ---- delivery path (server) ----------------------------------------------------------------
  {
    name: 'the fan-out skips one subscriber of the PoV',
    file: 'lib/subscription-index.ts',
    search: 'for (const subscription of subscribers) {',
    replace: 'for (const subscription of [...subscribers].slice(1)) {',
    tests: ['test/broadcast.test.ts'],
    quick: true
  },
  {
    name: 'a live activity overtakes the answer to its subscribe (not held while the resume is read)',
    file: 'lib/subscription-index.ts',
    search: 'if (this.pending) {',
    replace: 'if (false) {',
    tests: ['test/resume.test.ts']
  },
  {
    name: 'what is held during a subscribe is unbounded: the slow-consumer bound never closes the socket',
    file: 'lib/subscription-index.ts',
    search: 'if (pending.length >= MAX_PENDING_DURING_REPLAY) receiver.closeSlowConsumer()',
    replace: 'if (pending.length < 0) receiver.closeSlowConsumer()',
    tests: ['test/resume.test.ts']
  },
  {
    name: 'a feed with a gap tells none of its subscribers (no resync), who never learn they missed activities',
    file: 'lib/subscription-index.ts',
    search: 'for (const subscription of subscribers) subscription.send(payload)',
    replace: 'for (const subscription of subscribers) void subscription',
    tests: ['test/resync.test.ts', 'test/redis/faults.test.ts']
  },
  {
    name: 'the client ignores an in-band resync: the app never reloads after the broker lost activities',
    file: 'hooks/client/realtime-client.ts',
    search: "          this.#feed.emit(message.povId, { type: 'resync', povId: message.povId })\n",
    replace: '\n',
    tests: ['test/resync.test.ts']
  },
  {
    name: 'an unsubscribed socket stays in the index and keeps receiving the PoV',
    file: 'lib/realtime-hub.ts',
    search: 'if (this.#index.remove(subscription)) {',
    replace: 'if (subscription.povId === \'\') {',
    tests: ['test/protocol.test.ts']
  },
  {
    name: 'broadcastActivity keeps publishing after close() began',
    file: 'lib/realtime-hub.ts',
    search: 'if (this.#closing) throw new ClosedError()',
    replace: 'if (this.#closing) void ClosedError',
    tests: ['test/broadcast-lifecycle.test.ts']
  },
  {
    name: 'a resume replays all the missed activities but the first',
    file: 'lib/in-process/history-window.ts',
    search: 'entries: firstAfter === -1 ? [] : pov.entries.slice(firstAfter) }',
    replace: 'entries: firstAfter === -1 ? [] : pov.entries.slice(firstAfter + 1) }',
    tests: ['test/resume.test.ts'],
    quick: true
  },
  {
    name: 'a resume over a gap the window dropped claims recovered: true',
    file: 'lib/in-process/history-window.ts',
    search: 'if (comparePositions(since, pov.dropped) < 0) return NOT_RECOVERED',
    replace: 'if (comparePositions(since, pov.dropped) < -Infinity) return NOT_RECOVERED',
    tests: ['test/resume.test.ts']
  },
  {
    name: 'a cursor with a forged tag is taken as one the server issued',
    file: 'lib/in-process/cursor.ts',
    search: 'if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined',
    replace: 'if (given.length !== expected.length || !timingSafeEqual(given, given)) return undefined',
    tests: ['test/resume.test.ts', 'test/read-receipts.test.ts']
  },
  {
    name: 'the Redis broker sends a turn\'s publishes in reverse order',
    file: 'lib/redis/publish-batch.ts',
    search: 'this.#gathering.push({ keys, json, epochIfNew, resolve, reject, answered, done: false })',
    replace: 'this.#gathering.unshift({ keys, json, epochIfNew, resolve, reject, answered, done: false })',
    tests: ['test/redis/publish-batch.test.ts']
  },
  {
    name: 'a publish pipeline sends every entry by SHA, so a Redis without the script refuses them',
    file: 'lib/redis/publish-batch.ts',
    search: 'if (i === 0) pipeline.eval(publishScript.lua, ...args)',
    replace: 'if (i < 0) pipeline.eval(publishScript.lua, ...args)',
    tests: ['test/redis/publish-batch.test.ts']
  },
  {
    name: 'a member\'s presence change that found no script is sent again after later ones',
    file: 'lib/redis/presence-scripts.ts',
    search: 'return await runInOrder(redis, announceScript, [keys.presence],',
    replace: 'return await run(redis, announceScript, [keys.presence],',
    tests: ['test/redis/presence.test.ts']
  },
  {
    name: 'a Redis call whose answer the busy loop read after its deadline is expired anyway',
    file: 'lib/redis/deadline-sweep.ts',
    search: 'for (const call of late) if (!call.settled) call.expire()',
    replace: 'for (const call of late) call.expire()',
    tests: ['test/redis/publish-batch.test.ts']
  },
  // ---- read receipts, presence, typing (server) ------------------------------------------------
  {
    name: 'markRead moves a read mark backwards',
    file: 'lib/in-process/read-marks.ts',
    search: 'if (current && comparePositions(current, position) >= 0) return null',
    replace: 'if (current && comparePositions(current, position) === 0) return null',
    tests: ['test/read-receipts.test.ts'],
    quick: true
  },
  {
    name: 'once one cursor of a PoV was checked, any string passes as a cursor of it',
    file: 'lib/in-process/read-marks.ts',
    search: '    if (verified?.povId === povId) return verified.position',
    replace: '    if (this.#verified.size > 0) return this.#verified.values().next().value!.position',
    tests: ['test/read-receipts.test.ts']
  },
  {
    name: 'a cursor checked for one PoV passes as a cursor of any other PoV',
    file: 'lib/in-process/read-marks.ts',
    search: '    if (verified?.povId === povId) return verified.position',
    replace: '    if (verified !== undefined) return verified.position',
    tests: ['test/read-receipts.test.ts']
  },
  {
    name: 'a moved read mark is never told to the PoV\'s subscribers (no read event)',
    file: 'lib/read-receipts/read-receipts-feature.ts',
    search: 'this.#send(povId, Buffer.from(JSON.stringify(marksMoved(povId, moved.slice(i, i + MAX_READS_PER_ANSWER)))))',
    replace: 'void moved',
    tests: ['test/read-receipts.test.ts']
  },
  {
    name: 'of the marks that moved in one window, only the first reader\'s is told (no reads batch)',
    file: 'lib/read-receipts/read-receipts-feature.ts',
    search: 'if (marks.length === 1) {',
    replace: 'if (marks.length >= 1) {',
    tests: ['test/read-receipts.test.ts']
  },
  {
    name: 'presence never removes a member whose socket left (disconnect or unsubscribe)',
    file: 'lib/presence/pov-presence.ts',
    search: '    this.#refreshLocal(userId)\n    return true',
    replace: '    return true',
    tests: ['test/presence.test.ts', 'test/hooks/conformance.test.tsx']
  },
  {
    name: 'a typist hears their own typing',
    file: 'lib/presence/pov-presence.ts',
    search: 'if (receiver.userId !== userId) receiver.sendEphemeral(payload)',
    replace: 'receiver.sendEphemeral(payload)',
    tests: ['test/typing.test.ts']
  },
  // ---- the socket's writer and liveness (server) ----------------------------------------------
  {
    name: 'the slow-consumer bound is never checked after a write: a peer that reads nothing is never cut',
    file: 'lib/socket/socket-writer.ts',
    search: 'if (this.#ws.bufferedAmount > this.#settings.maxBufferedBytes) this.#checkBound()',
    replace: 'void this.#settings',
    tests: ['test/slow-consumer.test.ts'],
    quick: true
  },
  {
    name: 'any pong keeps a peer alive, even one that echoes nothing the server sent',
    file: 'lib/socket/socket-session.ts',
    search: 'if (session.#echoesPing(data)) session.#answeredPing = true',
    replace: 'session.#answeredPing = true',
    tests: ['test/liveness.test.ts']
  },
  {
    name: 'sockets that join after a quiet spell wait more than an interval for their first ping (the heartbeat lags)',
    file: 'lib/socket/heartbeat.ts',
    search: 'if (share >= this.#share) return',
    replace: 'if (share >= 0) return',
    tests: ['test/heartbeat-slices.test.ts']
  },
  {
    name: 'a closed socket is never released from its user\'s count: maxSocketsPerUser locks the user out for good',
    file: 'lib/realtime-hub.ts',
    search: 'else if (ofUser instanceof Set && ofUser.delete(session) && ofUser.size === 0) this.#sessionsOf.delete(session.userId)',
    replace: 'else if (ofUser instanceof Set && ofUser.size === 0) this.#sessionsOf.delete(session.userId)',
    tests: ['test/fairness-limits.test.ts']
  },
  {
    name: 'a socket with no view of its upgrade request is let subscribe anywhere despite authorizeSubscription',
    file: 'lib/auth/subscription-check.ts',
    search: "if (!request) return { verdict: 'failed', error: new Error('no view of the upgrade request was kept for this socket') }",
    replace: 'if (!request) return GRANTED',
    tests: ['test/subscription-check.test.ts'],
    quick: true
  },
  {
    name: 'after a failover seen late, the cluster subscriber stays deaf to the new master for good',
    file: 'lib/redis/broker.ts',
    search: '        slotsRefreshInterval: CLUSTER_SUBSCRIBER_SLOTS_REFRESH_MS,\n',
    replace: '\n',
    tests: ['test/redis/cluster.test.ts']
  },
  {
    name: 'every open socket keeps its upgrade request alive: @fastify/websocket\'s error listener is not removed',
    file: 'lib/socket/upgrade-handover.ts',
    search: "if (expected) ws.removeListener('error', listeners[0] as (error: Error) => void)",
    replace: 'void expected',
    tests: ['test/upgrade-handover.test.ts']
  },
  {
    name: 'token expiries fire out of order: a socket outlives its token while another is closed early',
    file: 'lib/auth/expiry-schedule.ts',
    search: 'if (parent.expiresAt <= item.expiresAt) break',
    replace: 'if (parent.expiresAt >= item.expiresAt) break',
    tests: ['test/expiry-schedule.test.ts']
  },
  // ---- auth and protocol (server) ------------------------------------------------------------
  {
    name: 'authorizeSubscription is never asked: every PoV is open to everyone',
    file: 'lib/options.ts',
    search: 'authorizeSubscription: optionalFunction(\'authorizeSubscription\', options.authorizeSubscription),',
    replace: 'authorizeSubscription: undefined,',
    tests: ['test/authorization.test.ts'],
    quick: true
  },
  {
    name: 'an expired WebSocket token still opens a socket',
    file: 'lib/auth/tokens.ts',
    search: 'allowedAud: TOKEN_AUDIENCE, requiredClaims: [\'exp\', \'sub\', \'aud\']',
    replace: 'allowedAud: TOKEN_AUDIENCE, requiredClaims: [\'exp\', \'sub\', \'aud\'], ignoreExpiration: true',
    tests: ['test/upgrade-auth.test.ts'],
    quick: true
  },
  {
    name: 'an expired access cookie is exchanged for a WebSocket token',
    file: 'lib/auth/tokens.ts',
    search: 'const accessJwt = createVerifier({ key: options.secret, algorithms })',
    replace: 'const accessJwt = createVerifier({ key: options.secret, algorithms, ignoreExpiration: true })',
    tests: ['test/token-route.test.ts']
  },
  {
    name: 'a WebSocket token is accepted as the access cookie (a leaked one mints more)',
    file: 'lib/auth/tokens.ts',
    search: 'if (hasAudience(payload, TOKEN_AUDIENCE)) throw new TokenRefusal(\'websocket-token-as-access-token\')',
    replace: 'if (hasAudience(payload, \'\')) throw new TokenRefusal(\'websocket-token-as-access-token\')',
    tests: ['test/token-route.test.ts']
  },
  {
    name: 'a token whose sub is not its userId is accepted',
    file: 'lib/auth/tokens.ts',
    search: '|| payload.sub !== user.userId ||',
    replace: '||',
    tests: ['test/upgrade-auth.test.ts']
  },
  {
    name: 'a ?token= stays in the URL the app routes and logs',
    file: 'lib/auth/handshake-token.ts',
    search: 'raw.url = url.slice(0, queryAt) + ',
    replace: 'void ',
    tests: ['test/token-leak.test.ts', 'test/upgrade-auth.test.ts']
  },
  {
    name: 'a message of an unknown type is ignored instead of answered INVALID_MESSAGE',
    file: 'lib/socket/message-parser.ts',
    search: 'if (!validator) return invalid(\'unknown message type\')',
    replace: 'if (!validator) return { ok: true, message: value as ClientMessage }',
    tests: ['test/protocol.test.ts']
  },
  {
    name: 'a message that fails its schema is handled as if valid',
    file: 'lib/socket/message-parser.ts',
    search: 'if (!validator.Check(value)) {',
    replace: 'if (!validator.Check(value) && type === \'\') {',
    tests: ['test/protocol.test.ts']
  },
  // ---- the client core -----------------------------------------------------------------------
  {
    name: 'after a reconnect the client does not subscribe to its PoVs again',
    file: 'hooks/client/realtime-client.ts',
    search: 'this.#feed.resubscribe()',
    replace: 'void this.#feed',
    tests: ['test/hooks/client-core.test.ts'],
    quick: true
  },
  {
    name: 'a resubscription forgets the last cursor: what was missed is never replayed',
    file: 'hooks/client/watch-registry.ts',
    search: 'messages.push(watch.cursor === undefined ? { type: \'subscribe\', povId } : { type: \'subscribe\', povId, since: watch.cursor })',
    replace: 'messages.push({ type: \'subscribe\', povId })',
    tests: ['test/hooks/client-core.test.ts']
  },
  {
    name: 'the client never refreshes its token in-band: the socket dies at expiry',
    file: 'hooks/client/connection/connection-machine.ts',
    search: '    this.#scheduleRefresh(link)\n    this.#enter(\'open\')',
    replace: '    this.#enter(\'open\')',
    tests: ['test/hooks/client-core.test.ts', 'test/hooks/react-hooks.test.tsx']
  },
  {
    name: 'the client connects with a cached token past its refresh time (no expiry check)',
    file: 'hooks/client/connection/token-source.ts',
    search: 'return cached && this.#options.timers.now() < this.refreshAt(cached) ? cached : undefined',
    replace: 'return cached',
    tests: ['test/hooks/client-parts.test.ts']
  },
  {
    name: 'a 401 from the token route is retried forever instead of stopping with an auth error',
    file: 'hooks/client/connection/connection-machine.ts',
    search: 'if (err instanceof AuthError) this.#failAuth(err)',
    replace: 'if (err === AuthError) this.#failAuth(err as AuthError)',
    tests: ['test/hooks/client-core.test.ts']
  },
  {
    name: 'the status never reads reconnected after a drop',
    file: 'hooks/client/connection/connection-machine.ts',
    search: 'this.#reconnected = this.#hasOpened',
    replace: 'this.#reconnected = false',
    tests: ['test/hooks/client-core.test.ts', 'test/hooks/conformance.test.tsx']
  },
  {
    name: 'what is sent while disconnected is queued without bound',
    file: 'hooks/client/support/bounded-queue.ts',
    search: 'return this.#items.length > this.capacity ? this.#items.shift() : undefined',
    replace: 'return undefined',
    tests: ['test/hooks/client-parts.test.ts'],
    quick: true
  },
  {
    name: 'an activity delivered twice is listed twice',
    file: 'hooks/client/activity-list.ts',
    search: 'if (this.#confirmedIds.has(activity.id)) return false',
    replace: 'if (this.#confirmedIds.has(activity.id + \'?\')) return false',
    tests: ['test/hooks/client-parts.test.ts']
  },
  {
    name: 'a resume answered recovered: false tells no listener to resync',
    file: 'hooks/client/activity-feed.ts',
    search: 'resync: message.recovered === false || missedUnknown',
    replace: 'resync: missedUnknown',
    tests: ['test/hooks/client-core.test.ts', 'test/hooks/react-hooks.test.tsx']
  },
  {
    name: 'a refused subscription (FORBIDDEN) does not show on its PoV',
    file: 'hooks/client/activity-feed.ts',
    search: 'if (pov && !pov.subscribed && message.code !== ErrorCode.NOT_ENABLED) pov.activities.setError(message)',
    replace: 'if (pov && !pov.subscribed && message.code === ErrorCode.NOT_ENABLED) pov.activities.setError(message)',
    tests: ['test/hooks/read-receipts-hooks.test.tsx', 'test/hooks/conformance.test.tsx']
  },
  {
    name: 'a member who leaves stays in the client\'s member list',
    file: 'hooks/client/presence/presence-store.ts',
    search: 'this.#members.delete(userId)',
    replace: 'void userId',
    tests: ['test/hooks/feature-parts.test.ts', 'test/hooks/conformance.test.tsx']
  },
  {
    name: 'the client\'s markRead moves the mark backwards',
    file: 'hooks/client/read-receipts/pov-read-receipts.ts',
    search: 'return order === 1 || order === undefined',
    replace: 'return order !== 0',
    tests: ['test/hooks/feature-parts.test.ts']
  },
  {
    name: 'the client\'s marks moved in a server window (an unsolicited reads) replace the PoV\'s other marks',
    file: 'hooks/client/read-receipts/read-receipts-feature.ts',
    search: '      pov.reads.marksMoved(marks)',
    replace: '      pov.reads.replaceMarks(marks)',
    tests: ['test/hooks/read-receipts-hooks.test.tsx', 'test/hooks/read-receipts-server.test.tsx']
  },
  // ---- the React hooks and the test doubles --------------------------------------------------
  {
    name: 'unmounting usePovActivities never unsubscribes',
    file: 'hooks/use-pov-activities.ts',
    search: 'useEffect(() => (povId ? client.watch(povId) : undefined), [client, povId])',
    replace: 'useEffect(() => { if (povId) client.watch(povId) }, [client, povId])',
    tests: ['test/hooks/react-hooks.test.tsx', 'test/hooks/conformance.test.tsx']
  },
  {
    name: 'the doubles\' simulated reconnect is a fresh session: the status reads connected, not reconnected',
    file: 'hooks/testing/mock-server.ts',
    search: 'for (const client of this.clients) client.reconnect()',
    replace: 'for (const client of this.clients) client.restart()',
    tests: ['test/hooks/conformance.test.tsx', 'test/hooks/testing-doubles.test.tsx']
  }
]

// ---- running ---------------------------------------------------------------------------------

const { values: args } = parseArgs({ options: { quick: { type: 'boolean', default: false }, only: { type: 'string', multiple: true } } })

/** Text of `file` in the working tree. */
const source = (file) => readFileSync(join(ROOT, file), 'utf8')

function occurrences (text, search) {
  let count = 0
  for (let at = text.indexOf(search); at !== -1; at = text.indexOf(search, at + 1)) count++
  return count
}

/**
 * The table is checked whole on every run (the quick one too): a search string that no longer occurs exactly once, a
 * defect that does not parse, or a test file that is gone fails the run.
 */
async function checkTable () {
  const problems = []
  for (const defect of DEFECTS) {
    const text = source(defect.file)
    const count = occurrences(text, defect.search)
    if (count !== 1) problems.push(`${defect.file}: found ${count} times, expected once: ${JSON.stringify(defect.search)}`)
    try {
      const loader = defect.file.endsWith('x') ? 'tsx' : 'ts'
      await transform(text.replace(defect.search, () => defect.replace), { loader, sourcefile: defect.file })
    } catch (err) {
      problems.push(`${defect.file}: "${defect.name}" does not parse, so its tests would fail for that alone: ${err.message}`)
    }
    for (const file of defect.tests) {
      if (!existsSync(join(ROOT, file))) problems.push(`${file}: no such test file (named for "${defect.name}")`)
    }
  }
  return problems
}

/** A copy of the working tree (tracked and new files, not ignored ones) with node_modules linked; removed at exit. */
function scratchCopy () {
  const dir = mkdtempSync(join(tmpdir(), 'pov-defects-'))
  const files = execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard', '-z'], { cwd: ROOT, encoding: 'utf8' })
    .split('\0').filter(Boolean)
  for (const file of files) {
    if (file === 'node_modules') continue
    mkdirSync(dirname(join(dir, file)), { recursive: true })
    try {
      cpSync(join(ROOT, file), join(dir, file))
    } catch (err) {
      if (err.code !== 'ENOENT') throw err // listed but deleted in the working tree
    }
  }
  symlinkSync(realpathSync(join(ROOT, 'node_modules')), join(dir, 'node_modules'))
  return dir
}

/** The process group running now (tap and the test it spawned), ended with the script. */
let running

/** Runs `command` in `cwd`; resolves with its exit code and output (cut after `timeout`). */
function run (command, commandArgs, cwd, timeout = FILE_TIMEOUT_MS) {
  return new Promise((resolve) => {
    const child = running = spawn(command, commandArgs, { cwd, stdio: ['ignore', 'pipe', 'pipe'], detached: true })
    let output = ''
    child.stdout.on('data', (chunk) => { output += chunk })
    child.stderr.on('data', (chunk) => { output += chunk })
    const timer = setTimeout(() => {
      output += `\n# cut after ${timeout} ms\n`
      try { process.kill(-child.pid, 'SIGKILL') } catch {}
    }, timeout)
    child.on('close', (code, signal) => {
      running = undefined
      clearTimeout(timer)
      resolve({ code: code ?? (signal ? 1 : 0), output })
    })
  })
}

/** Tests that import the package by name (or its dist/) run against the build: they need `npm run build` first. */
const needsBuild = (dir, testFile) => /from ['"]fastify-pov-realtime|['"][./]*dist\//.test(readFileSync(join(dir, testFile), 'utf8'))

async function build (dir) {
  const { code, output } = await run(join(dir, 'node_modules/.bin/tsc'), ['-p', 'tsconfig.build.json'], dir)
  if (code !== 0) throw new Error(`the build failed:\n${output.slice(0, 4000)}`)
}

/** Runs one tap file; `failure` is the first failed assertion (or what cut the run short), undefined when it passed. */
async function tapFile (dir, testFile) {
  const { code, output } = await run(join(dir, 'node_modules/.bin/tap'),
    ['--disable-coverage', '--bail', '--reporter=tap', '--jobs=1', testFile], dir)
  if (code === 0) return { failure: undefined }
  const notOk = /^\s*not ok \d+ - (.+)$/m.exec(output)?.[1]
  const failure = notOk ?? output.trim().split('\n').slice(-3).join(' / ')
  return { failure: failure.length > 100 ? `${failure.slice(0, 99)}…` : failure }
}

const seconds = (since) => `${((Date.now() - since) / 1000).toFixed(1)} s`

async function main () {
  const started = Date.now()
  const problems = await checkTable()
  if (problems.length > 0) {
    console.error(`The defect table no longer matches the code (fix the table, not the code):\n  ${problems.join('\n  ')}`)
    process.exit(1)
  }
  let selected = args.quick ? DEFECTS.filter((defect) => defect.quick) : DEFECTS
  if (args.only) selected = selected.filter((defect) => args.only.some((text) => defect.name.includes(text) || defect.file.includes(text)))
  if (selected.length === 0) {
    console.error('no defect selected')
    process.exit(1)
  }

  const dir = scratchCopy()
  process.on('exit', () => {
    if (running) try { process.kill(-running.pid, 'SIGKILL') } catch {}
    rmSync(dir, { recursive: true, force: true })
  })
  for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => process.exit(130))
  console.log(`${selected.length} deliberate defects, each in a scratch copy (${dir})`)

  // The full form first shows that every named test passes on the unbroken copy: a test failing already proves nothing.
  if (!args.quick) {
    const files = [...new Set(selected.flatMap((defect) => defect.tests))]
    if (files.some((file) => needsBuild(dir, file))) await build(dir)
    const broken = []
    for (const file of files) {
      const fileStarted = Date.now()
      const { failure } = await tapFile(dir, file)
      console.log(`${failure ? 'FAILS UNBROKEN' : 'passes unbroken'}  ${file} (${seconds(fileStarted)})${failure ? `: ${failure}` : ''}`)
      if (failure) broken.push(file)
    }
    if (broken.length > 0) {
      console.error(`\nThese tests fail without any defect, so they cannot show one: ${broken.join(', ')}`)
      process.exit(1)
    }
  }

  const missed = []
  for (const defect of selected) {
    const defectStarted = Date.now()
    const path = join(dir, defect.file)
    const original = readFileSync(path, 'utf8')
    writeFileSync(path, original.replace(defect.search, () => defect.replace))
    // Every file named must catch it: a name in the table is a claim, and an unchecked claim would rot.
    const caught = []
    const passed = []
    try {
      if (defect.tests.some((file) => needsBuild(dir, file))) await build(dir)
      for (const file of defect.tests) {
        const { failure } = await tapFile(dir, file)
        if (failure) caught.push(`${file}: ${failure}`)
        else passed.push(file)
      }
    } finally {
      writeFileSync(path, original)
    }
    if (passed.length === 0) {
      console.log(`caught      ${defect.file}: ${defect.name} <- ${caught.join(' | ')} (${seconds(defectStarted)})`)
    } else {
      missed.push(defect)
      console.log(`NOT CAUGHT  ${defect.file}: ${defect.name} <- passed: ${passed.join(', ')}${caught.length > 0 ? ` (caught only by ${caught.join(' | ')})` : ''} (${seconds(defectStarted)})`)
    }
  }

  console.log(`\n${selected.length} defects: ${selected.length - missed.length} caught, ${missed.length} not caught (${seconds(started)})`)
  process.exit(missed.length === 0 ? 0 : 1)
}

await main()
