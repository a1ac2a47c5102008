/**
 * The example app's parts that need no browser: the dev secret and the activity store kept on disk (what makes the
 * quick start's restart keep everyone signed in and every item), the "am I signed in?" probe, and the page's pure
 * wording: where "Seen by" goes, relative times, a failed post in words.
 */
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import type { Activity } from 'fastify-pov-realtime'
import { ActivityStore } from '../example/activity-store.mjs'
import { buildExampleApp } from '../example/app.mjs'
import { loadOrCreateDevSecret } from '../example/dev-secret.mjs'
import { HttpError } from '../example/client/http-error.js'
import { describePostFailure } from '../example/client/post-failure.js'
import { formatRelative } from '../example/client/format-relative.js'
import { seenByPerActivity } from '../example/client/seen-by.js'
import { signInCookie } from './helpers/browser.js'

async function tempDir (t: { teardown (fn: () => unknown): void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'example-parts-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return dir
}

function note (id: string, userId: string, povId = 'launch'): Activity {
  return { id, type: 'note', action: 'created', povId, userId, title: id, message: '', createdAt: '2026-01-01T00:00:00.000Z' }
}

t.test('the dev secret: made once, readable by its owner only, then read back; a hand-shortened one is refused', async (t) => {
  const file = join(await tempDir(t), 'nested', 'dev-secret')
  const first = await loadOrCreateDevSecret(file)
  t.equal(first.created, true, 'made at the first start')
  t.ok(first.secret.length >= 32, 'long enough')
  t.equal((await stat(file)).mode & 0o777, 0o600, 'owner-only')
  t.same(await loadOrCreateDevSecret(file), { secret: first.secret, created: false }, 'the same one at the next start')

  await writeFile(file, 'short\n')
  await t.rejects(loadOrCreateDevSecret(file), { message: `${file} holds a secret shorter than 32 characters: delete the file to make a new one` })
})

t.test('the activity store on disk: empty at first, every post written, read back by the next start', async (t) => {
  const file = join(await tempDir(t), 'activities.json')
  const store = await ActivityStore.open(file, { maxPerPov: 2 })
  t.same(store.list('launch'), [], 'no file yet: an empty store')
  for (const id of ['a', 'b', 'c']) store.add(note(id, 'alice'))
  store.add(note('s', 'bob', 'support'))
  t.same(store.list('launch').map((activity) => activity.id), ['b', 'c'], 'the oldest goes past maxPerPov')

  const reopened = await ActivityStore.open(file, { maxPerPov: 2 })
  t.same(reopened.list('launch'), store.list('launch'), 'the next start sees the same items')
  t.same(reopened.list('support').map((activity) => activity.id), ['s'])
  t.ok(reopened.has('launch', 'c'))
  t.notOk(reopened.has('launch', 'a'))
  t.same(await ActivityStore.open(file, { maxPerPov: 1 }).then((smaller) => smaller.list('launch').map((a) => a.id)), ['c'],
    'a smaller maxPerPov keeps the newest')

  await writeFile(file, '{ not json')
  await t.rejects(ActivityStore.open(file), { message: new RegExp(`^${file} is not the JSON this store writes .*: delete it to start afresh$`) })
  t.same(new ActivityStore().list('launch'), [], 'without a file: memory only')
})

t.test('GET /api/me: 200 { userId: null } without a cookie, the user with a valid one, 401 and cleared with a bad one', async (t) => {
  const app = await buildExampleApp({ secret: randomBytes(32).toString('base64url') })
  t.teardown(() => app.close())
  const nobody = await app.inject({ url: '/api/me' })
  t.equal(nobody.statusCode, 200, 'a first visit is no error')
  t.same(nobody.json(), { userId: null })

  const alice = await app.inject({ url: '/api/me', headers: { cookie: await signInCookie(app, 'alice') } })
  t.same([alice.statusCode, alice.json()], [200, { userId: 'alice' }])

  const otherApp = await buildExampleApp({ secret: randomBytes(32).toString('base64url') })
  t.teardown(() => otherApp.close())
  const stale = await app.inject({ url: '/api/me', headers: { cookie: await signInCookie(otherApp, 'alice') } })
  t.equal(stale.statusCode, 401, 'a cookie signed with another secret is refused')
  const cleared = stale.cookies.find((cookie) => cookie.name === 'accessToken')
  t.equal(cleared?.value, '', 'and cleared, so the next load is a plain "signed out"')
})

t.test('"Seen by": each other reader once, on the newest activity they read; never the viewer, never the author there', async (t) => {
  const newestFirst = [note('n3', 'bob'), note('n2', 'carol'), note('n1', 'carol')]
  // readersOf gives everyone whose mark is at or after the activity, as the hook does.
  const marks: Record<string, string> = { alice: 'n3', bob: 'n3', dan: 'n2', erin: 'n1' }
  const order = ['n1', 'n2', 'n3']
  const readersOf = (id: string) => Object.keys(marks).filter((user) => order.indexOf(marks[user]!) >= order.indexOf(id)).sort()

  t.same(Object.fromEntries(seenByPerActivity(newestFirst, readersOf, 'alice')), {
    n2: ['dan'],
    n1: ['erin']
  }, 'alice sees dan and erin where they stopped; bob, the author of n3, is not named under it nor further down')
  t.same(Object.fromEntries(seenByPerActivity(newestFirst, readersOf, 'carol')), {
    n3: ['alice'],
    n2: ['dan'],
    n1: ['erin']
  }, 'carol sees alice under n3 (bob wrote it), and never herself')
  t.same(seenByPerActivity([], readersOf, 'alice').size, 0)
})

t.test('relative times', async (t) => {
  const now = Date.parse('2026-03-01T12:00:00.000Z')
  const ago = (ms: number) => new Date(now - ms).toISOString()
  t.equal(formatRelative(ago(0), now), 'just now')
  t.equal(formatRelative(ago(59_999), now), 'just now')
  t.equal(formatRelative(ago(60_000), now), '1 min ago')
  t.equal(formatRelative(ago(2 * 60_000 + 59_000), now), '2 min ago')
  t.equal(formatRelative(ago(60 * 60_000), now), '1 h ago')
  t.equal(formatRelative(ago(23 * 60 * 60_000 + 59 * 60_000), now), '23 h ago')
  t.notMatch(formatRelative(ago(24 * 60 * 60_000), now), /ago/, 'a day or more: the date and time')
  t.match(formatRelative(ago(24 * 60 * 60_000), now), /2026/)
})

t.test('a failed post in words, never the browser\'s "Failed to fetch"', async (t) => {
  t.equal(describePostFailure(new TypeError('Failed to fetch')),
    'Not posted: the server could not be reached. Your text is kept: post it again once reconnected.')
  t.equal(describePostFailure(new HttpError(401, 'Unauthorized')), 'Not posted: you are signed out. Sign in again to post.')
  t.equal(describePostFailure(new HttpError(403, 'You left "launch"; join it again to see it')),
    'Not posted: You left "launch"; join it again to see it.')
  t.equal(describePostFailure(new HttpError(503, 'Service Unavailable')),
    'Not posted: the server failed (503). Your text is kept: try again.')
  t.equal(describePostFailure(new HttpError(400, 'body/title must NOT have more than 120 characters')),
    'Not posted: the server refused it (body/title must NOT have more than 120 characters).')
})
