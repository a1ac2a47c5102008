/**
 * The quick start's restart story, word for word: `npm start`'s server (example/server.mjs, a child process with no
 * `JWT_SECRET`) is stopped with Ctrl-C and started again; two users, each in their own browser context (a normal and
 * a private window), see `disconnected` then `reconnected`, are still signed in, and see the same items as a newcomer,
 * because the dev secret and the posted activities are kept in the data folder. Also: the plain start-up lines, a
 * start with another `JWT_SECRET` that the pages explain, and a busy port that names the variable to set. Screenshots go to .tap/screenshots/example-restart/.
 */
import { randomBytes } from 'node:crypto'
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Page } from 'playwright-core'
import t from 'tap'
import {
  RECONNECT_TIMEOUT, UI_TIMEOUT, activityItems, launchChromium, openSignedInPage, postFromPage, requireChromium, screenshotDir,
  skipWithoutChromium, waitForStatus, watchConsole
} from '../helpers/browser.js'
import { freePort } from '../helpers/free-port.js'
import { runExampleProcessToExit, startExampleProcess, type ExampleProcess } from '../helpers/example-process.js'

async function feedTitles (page: Page): Promise<string[]> {
  return page.getByTestId('activity-title').allTextContents()
}

t.test('a busy port: one line naming PORT, no stack trace, exit code 1', async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'example-busy-'))
  t.teardown(() => rm(dataDir, { recursive: true, force: true }))
  const holder = createServer()
  await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => holder.close(() => resolve())))
  const address = holder.address()
  const port = typeof address === 'object' && address ? address.port : 0

  const run = await runExampleProcessToExit({ PORT: String(port), EXAMPLE_DATA_DIR: dataDir })
  t.equal(run.code, 1, 'exits with 1')
  t.equal(run.stderr.trim(), `Cannot start the example app: port ${port} is already in use (another "npm start"?). ` +
    `Stop that server, or set PORT to a free port: PORT=${port + 1} npm start`, 'says which variable to set')
  t.notMatch(run.stderr, /EADDRINUSE|\n\s+at /, 'no bare EADDRINUSE, no stack trace')
})

t.test('stop and start the example server: both users stay signed in, reconnect, and see the same items', {
  skip: skipWithoutChromium()
}, async (t) => {
  if (!requireChromium(t)) return
  const dataDir = await mkdtemp(join(tmpdir(), 'example-restart-'))
  t.teardown(() => rm(dataDir, { recursive: true, force: true }))
  const env = { PORT: String(await freePort()), EXAMPLE_DATA_DIR: dataDir }
  let server: ExampleProcess | undefined = await startExampleProcess(env)
  t.teardown(() => server?.stop())
  const shots = screenshotDir('example-restart')
  t.comment(`screenshots: ${shots}`)

  const secretFile = join(dataDir, 'dev-secret')
  t.equal(server.stdout(), [
    `Sign-ins use the dev secret just made in ${secretFile} (set JWT_SECRET to use your own): they outlive a restart.`,
    `Posted activities are kept in ${join(dataDir, 'activities.json')}.`,
    '',
    `Open http://127.0.0.1:${env.PORT} in a normal and a private window, and sign in as two users.`,
    '',
    ''
  ].join('\n'), 'plain start-up lines, no JSON log, ending with what to open')
  t.equal((await stat(secretFile)).mode & 0o777, 0o600, 'the dev secret is readable by its owner only')
  const secret = await readFile(secretFile, 'utf8')

  const browser = await launchChromium()
  t.teardown(() => browser.close())
  const pageErrors: string[] = []
  const consoleProblems: string[] = []
  const { url } = server
  const alice = await openSignedInPage(browser, url, 'alice', pageErrors)
  const bob = await openSignedInPage(browser, url, 'bob', pageErrors)
  for (const [name, page] of [['alice', alice], ['bob', bob]] as const) {
    watchConsole(page, name, consoleProblems)
    await waitForStatus(page, 'connected')
  }
  await postFromPage(alice, 'Plan for Monday', 'Posted by alice.', 'success')
  await activityItems(bob, 'Plan for Monday').waitFor({ timeout: UI_TIMEOUT })
  await postFromPage(bob, 'Sounds good', 'Posted by bob.')
  await activityItems(alice, 'Sounds good').waitFor({ timeout: UI_TIMEOUT })
  t.same(consoleProblems, [], 'no failed request or console error before the restart')

  t.equal(await server.stop(), 0, 'Ctrl-C stops the server cleanly')
  server = undefined
  for (const page of [alice, bob]) {
    await waitForStatus(page, 'disconnected')
    t.ok(await page.getByTestId('post-submit').isDisabled(), 'posting waits while the server is down')
  }
  await alice.screenshot({ path: join(shots, '1-server-stopped.png'), fullPage: true })

  server = await startExampleProcess(env)
  t.match(server.stdout(), `Sign-ins use the dev secret kept in ${secretFile}`, 'the second start reuses the kept secret')
  t.equal(await readFile(secretFile, 'utf8'), secret, 'and has not replaced it')
  for (const [name, page] of [['alice', alice], ['bob', bob]] as const) {
    await waitForStatus(page, 'reconnected')
    t.equal(await page.getByTestId('signed-in-user').textContent(), name, `${name} is still signed in`)
    t.equal(await page.getByTestId('sign-in-form').count(), 0, `${name} is not sent to the sign-in form`)
    await activityItems(page, 'Plan for Monday').waitFor({ timeout: UI_TIMEOUT })
  }
  await bob.screenshot({ path: join(shots, '2-reconnected.png'), fullPage: true })

  const carol = await openSignedInPage(browser, server.url, 'carol', pageErrors)
  await activityItems(carol, 'Plan for Monday').waitFor({ timeout: UI_TIMEOUT })
  const newcomerSees = await feedTitles(carol)
  t.same(newcomerSees, ['Sounds good', 'Plan for Monday'], 'a newcomer sees what was posted before the restart')
  t.same(await feedTitles(alice), newcomerSees, 'alice, who stayed, sees the same items')
  t.same(await feedTitles(bob), newcomerSees, 'so does bob')
  t.match(await activityItems(carol, 'Plan for Monday').getAttribute('class'), /severity-success/, 'with their severity')

  await postFromPage(alice, 'After the restart', 'Live again.')
  for (const page of [bob, carol]) await activityItems(page, 'After the restart').waitFor({ timeout: UI_TIMEOUT })
  t.pass('a post after the restart reaches the others live')

  // The one way to lose the sessions: a start with another secret. The pages say so instead of a bare sign-in form.
  t.equal(await server.stop(), 0)
  server = await startExampleProcess({ ...env, JWT_SECRET: randomBytes(32).toString('base64url') })
  t.notMatch(server.stdout(), /dev secret/, 'with JWT_SECRET set, the dev secret is not used')
  for (const page of [alice, bob]) {
    await page.getByTestId('signed-out-notice').waitFor({ timeout: RECONNECT_TIMEOUT })
    t.equal(await page.getByTestId('signed-out-notice').textContent(), 'You were signed out: the server no longer accepts ' +
      'your session (you signed out in another tab, it expired, or the server restarted with another secret). Sign in again.')
  }
  await alice.screenshot({ path: join(shots, '3-secret-changed.png'), fullPage: true })
  t.same(pageErrors, [], 'no uncaught error in any page')
})
