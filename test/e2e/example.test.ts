/**
 * The example app in a real browser: Debian's Chromium driven by playwright-core (no downloaded browser).
 * Two users on the same PoV see each other's activities; across a server restart the page shows 'reconnected'
 * and the activity published while it was away; a user who leaves the PoV stops receiving it until she joins again.
 */
import { randomBytes } from 'node:crypto'
import t from 'tap'
import { buildExampleApp, startExampleServer } from '../../example/app.mjs'
import { join } from 'node:path'
import {
  UI_TIMEOUT, activityItems, launchChromium, openPov, openSignedInPage, postFromPage, requireChromium, screenshotDir,
  signInCookie, skipWithoutChromium, waitForStatus, waitUntil
} from '../helpers/browser.js'

const POV = 'billing-migration'
/** The demo's PoVs: the page's PoV list watches each of them, for its live unread badges. */
const LISTED_POVS = 3

t.test('two signed-in pages share a PoV live, and a page recovers what was posted across a server restart', {
  skip: skipWithoutChromium()
}, async (t) => {
  if (!requireChromium(t)) return
  const secret = randomBytes(32).toString('base64url')
  const first = await startExampleServer({ port: 0, secret })
  const { port, store } = first
  let app = first.app
  t.teardown(() => app.close())

  const browser = await launchChromium()
  t.teardown(() => browser.close())
  const pageErrors: string[] = []

  const alice = await openSignedInPage(browser, first.url, 'alice', pageErrors)
  const bob = await openSignedInPage(browser, first.url, 'bob', pageErrors)
  for (const page of [alice, bob]) {
    await openPov(page, POV)
    await waitForStatus(page, 'connected')
  }
  // Both sockets subscribed to every listed PoV before anyone posts, so delivery is live.
  await waitUntil(() => {
    const stats = app.povRealtime.stats()
    return stats.connections === 2 && stats.subscriptions === 2 * LISTED_POVS && stats.povs === LISTED_POVS
  }, 'both pages to be subscribed to the PoVs')

  await t.test('an activity posted in one page shows in the other', async (t) => {
    await postFromPage(alice, 'Hello from alice', 'The migration plan is ready.')
    await activityItems(bob, 'Hello from alice').waitFor({ timeout: UI_TIMEOUT })
    t.equal(await activityItems(bob, 'Hello from alice').getByTestId('activity-author').textContent(), 'alice',
      'bob sees who posted it')
    // The poster's optimistic copy is replaced by the server's (same id): one item, no longer pending.
    await alice.locator('[data-testid="activity-item"][data-pending="false"]').filter({ hasText: 'Hello from alice' })
      .waitFor({ timeout: UI_TIMEOUT })
    t.equal(await activityItems(alice, 'Hello from alice').count(), 1, 'alice sees her post once')
    t.equal(await activityItems(bob, 'Hello from alice').count(), 1, 'bob sees it once')
  })

  await t.test('after a server restart the pages show reconnected and the activity posted meanwhile', async (t) => {
    await app.close()
    for (const page of [alice, bob]) await waitForStatus(page, 'disconnected')

    // The restarted server (same port, same secret, same "database") publishes an activity before its port opens:
    // no page can have reconnected yet, and its fresh history cannot replay to the pages' old cursors, so the
    // pages get it only by reloading the feed when their resume answers `recovered: false`.
    app = await buildExampleApp({ secret, store })
    const carol = await signInCookie(app, 'carol')
    const posted = await app.inject({
      method: 'POST',
      url: `/api/povs/${POV}/activities`,
      headers: { cookie: carol },
      payload: { title: 'Posted during the restart', message: 'Sent before the pages were back.' }
    })
    t.equal(posted.statusCode, 201, 'the activity is stored and broadcast')
    await app.listen({ port, host: '127.0.0.1' })

    for (const page of [alice, bob]) {
      await waitForStatus(page, 'reconnected')
      await activityItems(page, 'Posted during the restart').waitFor({ timeout: UI_TIMEOUT })
    }
    const shot = join(screenshotDir('example'), 'after-restart.png')
    await bob.screenshot({ path: shot, fullPage: true })
    t.comment(`screenshot: ${shot}`)
    for (const [name, page] of [['alice', alice], ['bob', bob]] as const) {
      t.equal(await activityItems(page, 'Hello from alice').count(), 1, `${name} still lists the earlier activity once`)
      t.equal(await activityItems(page, 'Posted during the restart').count(), 1, `${name} lists the missed activity once`)
    }
  })

  await t.test('after the restart the pages are subscribed again and see live posts', async (t) => {
    await waitUntil(() => app.povRealtime.stats().subscriptions === 2 * LISTED_POVS, 'both pages to re-subscribe')
    await postFromPage(bob, 'Back online from bob', 'Re-subscribed after the restart.')
    await activityItems(alice, 'Back online from bob').waitFor({ timeout: UI_TIMEOUT })
    t.equal(await activityItems(alice, 'Back online from bob').count(), 1, 'alice sees it once')
    await waitForStatus(alice, 'reconnected')
  })

  await t.test('leaving the PoV revokes it: the page shows it, gets nothing more of it, and joining again brings it back', async (t) => {
    await alice.getByTestId('leave-pov-button').click()
    await alice.getByTestId('pov-revoked').waitFor({ timeout: UI_TIMEOUT })
    t.match(await alice.getByTestId('pov-revoked').textContent(), /You left this PoV/)
    await waitUntil(() => app.povRealtime.stats().subscriptions === 2 * LISTED_POVS - 1, "alice's subscription to end")
    t.equal(app.povRealtime.stats().revoked, 1, 'counted as revoked')
    await postFromPage(bob, 'While alice is away', 'She left the PoV.')
    await activityItems(bob, 'While alice is away').waitFor({ timeout: UI_TIMEOUT })
    t.equal(await alice.getByTestId('activity-item').count(), 0, 'alice sees no feed while she is off the PoV')

    await alice.getByTestId('join-pov-button').click()
    await alice.getByTestId('leave-pov-button').waitFor({ timeout: UI_TIMEOUT })
    await waitUntil(() => app.povRealtime.stats().subscriptions === 2 * LISTED_POVS, 'alice to subscribe again')
    await activityItems(alice, 'While alice is away').waitFor({ timeout: UI_TIMEOUT }) // reloaded from the app's API
    await postFromPage(bob, 'Welcome back', 'Live again.')
    await activityItems(alice, 'Welcome back').waitFor({ timeout: UI_TIMEOUT })
    t.equal(await activityItems(alice, 'Welcome back').count(), 1, 'alice is live on the PoV again')
  })

  await t.test('signing out shows the sign-in form and closes that page\'s socket', async (t) => {
    await alice.getByTestId('sign-out-button').click()
    await alice.getByTestId('sign-in-form').waitFor({ timeout: UI_TIMEOUT })
    await waitUntil(() => app.povRealtime.stats().connections === 1, 'alice\'s socket to close')
    t.equal(app.povRealtime.stats().subscriptions, LISTED_POVS, 'only bob is still subscribed')
    const me = await alice.evaluate(async () => {
      const response = await fetch('/api/me')
      return { status: response.status, body: await response.json() }
    })
    t.same(me, { status: 200, body: { userId: null } }, 'the access cookie is gone: nobody is signed in')
  })

  t.same(pageErrors, [], 'no uncaught error in either page')
})
