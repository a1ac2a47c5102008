/**
 * The example app's presence and read receipts in a real browser (Debian's Chromium through playwright-core): two
 * users on one PoV see each other as members, active or idle, and see each other typing; a user's read in one tab
 * clears the unread badge in their other tab; a reload shows the kept feed before the socket opens and then what was
 * posted meanwhile, once.
 */
import { randomBytes } from 'node:crypto'
import type { Page } from 'playwright-core'
import t from 'tap'
import { startExampleServer } from '../../example/app.mjs'
import { upgradeGate } from '../helpers/upgrade-gate.js'
import { join } from 'node:path'
import {
  UI_TIMEOUT, activityItems, launchChromium, newWatchedPage, openPov, openSignedInPage, postFromPage, povLink,
  requireChromium, screenshotDir, signInCookie, skipWithoutChromium, waitForStatus, waitUntil
} from '../helpers/browser.js'

const POV = 'launch'
const OTHER_POV = 'support'

function member (page: Page, userId: string, status: 'active' | 'idle') {
  return page.locator(`[data-testid="presence-member"][data-user-id="${userId}"][data-status="${status}"]`)
}

/**
 * Hides or shows the page as a switch to another tab would. Headless Chromium under Playwright reports every page as
 * visible whatever happens to its window (minimizing it through the DevTools protocol changes nothing), so the page's
 * `visibilityState` is overridden and the real `visibilitychange` event dispatched: the client's own listener does
 * the rest, as it would for a real tab switch.
 */
async function setHidden (page: Page, hidden: boolean): Promise<void> {
  await page.evaluate((hidden) => {
    if (hidden) {
      Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => 'hidden' })
      Object.defineProperty(document, 'hidden', { configurable: true, get: () => true })
    } else {
      delete (document as { visibilityState?: unknown }).visibilityState
      delete (document as { hidden?: unknown }).hidden
    }
    document.dispatchEvent(new Event('visibilitychange'))
  }, hidden)
}

interface Frames {
  sent: Array<Record<string, unknown>>
  received: Array<Record<string, unknown>>
}

/** Every WebSocket frame of `page` from now on (across reloads), parsed; read through the DevTools protocol, not the page. */
function recordFrames (page: Page): Frames {
  const frames: Frames = { sent: [], received: [] }
  const parse = (payload: string | Buffer) => JSON.parse(String(payload)) as Record<string, unknown>
  page.on('websocket', (socket) => {
    socket.on('framesent', ({ payload }) => frames.sent.push(parse(payload)))
    socket.on('framereceived', ({ payload }) => frames.received.push(parse(payload)))
  })
  return frames
}

t.test('the example page with presence and read receipts, in two browsers', { skip: skipWithoutChromium() }, async (t) => {
  if (!requireChromium(t)) return
  const secret = randomBytes(32).toString('base64url')
  const { app, url } = await startExampleServer({ port: 0, secret })
  t.teardown(() => app.close())
  const browser = await launchChromium()
  t.teardown(() => browser.close())
  const pageErrors: string[] = []
  const carol = await signInCookie(app, 'carol')
  const postAsCarol = async (povId: string, title: string) => {
    const response = await app.inject({
      method: 'POST', url: `/api/povs/${povId}/activities`, headers: { cookie: carol }, payload: { title, message: 'From the API.' }
    })
    if (response.statusCode !== 201) throw new Error(`post failed: ${response.statusCode} ${response.body}`)
  }

  // The first PoV of the list is open after sign-in; the page keeps it in its address (`?pov=`).
  const alice = await openSignedInPage(browser, url, 'alice', pageErrors)
  const bob = await openSignedInPage(browser, url, 'bob', pageErrors)
  for (const page of [alice, bob]) {
    await openPov(page, POV)
    await waitForStatus(page, 'connected')
  }

  await t.test('each page lists the other as a member: active, idle while its page is hidden, active again', async (t) => {
    await member(alice, 'bob', 'active').waitFor({ timeout: UI_TIMEOUT })
    await member(bob, 'alice', 'active').waitFor({ timeout: UI_TIMEOUT })
    t.equal(await member(alice, 'bob', 'active').textContent(), 'bob', 'alice sees bob by the name presence.info gives')
    t.equal(await member(alice, 'alice', 'active').textContent(), 'you', 'and herself as "you"')
    t.same(await app.povRealtime.presence(POV).then((members) => members.map((m) => m.info).sort((a, b) => String(a.name).localeCompare(String(b.name)))),
      [{ name: 'alice' }, { name: 'bob' }], 'the public face is the display name, nothing else')

    await setHidden(bob, true)
    await member(alice, 'bob', 'idle').waitFor({ timeout: UI_TIMEOUT })
    t.equal(await member(alice, 'bob', 'idle').textContent(), 'bob (idle)', 'bob shows idle while his page is hidden')
    await setHidden(bob, false)
    await member(alice, 'bob', 'active').waitFor({ timeout: UI_TIMEOUT })
    t.pass('and active once it shows again')
  })

  await t.test('typing in one page shows "… is typing" under the other\'s note box, and it goes away', async (t) => {
    const typingLine = (page: Page) => page.getByTestId('typing-indicator')
    await bob.getByTestId('post-title-input').pressSequentially('Draft', { delay: 40 })
    await typingLine(alice).filter({ hasText: 'bob is typing…' }).waitFor({ timeout: UI_TIMEOUT })
    t.equal(await typingLine(bob).textContent(), '', 'bob does not see himself typing')
    // No more keystrokes: after the client's 3 s pause it says typing: false.
    await typingLine(alice).filter({ hasText: /^$/ }).waitFor({ timeout: UI_TIMEOUT })
    t.pass('gone after bob stopped typing')

    await bob.getByTestId('post-title-input').pressSequentially(' more', { delay: 40 })
    await typingLine(alice).filter({ hasText: 'bob is typing…' }).waitFor({ timeout: UI_TIMEOUT })
    const cleared = Date.now()
    await bob.getByTestId('post-title-input').fill('')
    await typingLine(alice).filter({ hasText: /^$/ }).waitFor({ timeout: UI_TIMEOUT })
    const elapsed = Date.now() - cleared
    t.ok(elapsed < 2500, `gone ${elapsed} ms after bob emptied the box (at once, not after the 3 s pause)`)
  })

  await t.test('read in one tab clears the badge in the other tab of the same user; the other user sees "seen by"', async (t) => {
    const aliceAgain = await newWatchedPage(alice.context(), 'alice (second tab)', pageErrors)
    await aliceAgain.goto(`${url}/?pov=${POV}`)
    await waitForStatus(aliceAgain, 'connected')
    await member(aliceAgain, 'bob', 'active').waitFor({ timeout: UI_TIMEOUT })
    t.equal(await bob.getByTestId('presence-member').count(), 2, 'a second tab of alice\'s is still one member for bob')

    await postAsCarol(POV, 'From carol')
    const badge = (page: Page, unread: number) => page.locator(`[data-testid="unread-count"][data-unread="${unread}"]`)
    for (const page of [alice, aliceAgain, bob]) await badge(page, 1).waitFor({ timeout: UI_TIMEOUT })
    await alice.getByTestId('mark-read-button').click()
    await aliceAgain.getByTestId('unread-count').waitFor({ state: 'detached', timeout: UI_TIMEOUT })
    t.equal(await alice.getByTestId('unread-count').count(), 0, 'gone in the tab that read')
    t.pass('gone in alice\'s other tab')
    await activityItems(bob, 'From carol').getByTestId('seen-by').filter({ hasText: 'Seen by alice' }).waitFor({ timeout: UI_TIMEOUT })
    t.equal(await badge(bob, 1).count(), 1, 'bob still has his own unread badge')
    t.equal(await activityItems(aliceAgain, 'From carol').getByTestId('seen-by').count(), 0, 'alice is not listed as seeing it to herself')

    // The page marks the user's own post read with the cursor its POST answered.
    await postFromPage(alice, 'Note from alice', 'Mine.')
    await badge(bob, 2).waitFor({ timeout: UI_TIMEOUT })
    for (const page of [alice, aliceAgain]) {
      await page.locator('[data-testid="activity-item"][data-pending="false"]').filter({ hasText: 'Note from alice' })
        .waitFor({ timeout: UI_TIMEOUT })
      await page.getByTestId('unread-count').waitFor({ state: 'detached', timeout: UI_TIMEOUT })
    }
    t.pass('her own post is no unread for alice, in either tab, and one more for bob')
    await aliceAgain.close()
  })

  await t.test('a reload shows the kept feed before the socket opens, then what was posted meanwhile, once', async (t) => {
    await postAsCarol(OTHER_POV, 'Elsewhere')
    const frames = recordFrames(bob)
    // The socket cannot get through, and the app's own feed request waits: what shows comes from what the page kept.
    const gate = upgradeGate(app.server)
    gate.close()
    let releaseFeed!: () => void
    const feedHeld = new Promise<void>((resolve) => { releaseFeed = resolve })
    await bob.route('**/api/povs/*/activities', async (route) => {
      if (route.request().method() === 'GET') await feedHeld
      await route.continue()
    })

    await bob.reload()
    await activityItems(bob, 'From carol').waitFor({ timeout: UI_TIMEOUT })
    t.equal(await bob.getByTestId('connection-status').getAttribute('data-status'), 'disconnected', 'shown with no socket open')
    t.same(frames.received, [], 'nothing came over a socket')
    await waitUntil(() => gate.refused > 0, 'the page to try its socket')

    await postAsCarol(POV, 'Posted while bob reloaded')
    gate.open()
    await waitForStatus(bob, 'connected')
    await activityItems(bob, 'Posted while bob reloaded').waitFor({ timeout: UI_TIMEOUT })
    const subscribe = frames.sent.find((frame) => frame.type === 'subscribe' && frame.povId === POV)
    t.match(subscribe, { since: String }, 'the page resumed after its kept cursor')
    const activities = frames.received.filter((frame) => frame.type === 'activity')
    t.same(activities.map((frame) => (frame.data as { title: string }).title), ['Posted while bob reloaded'],
      'only the missed activity came over the socket')
    t.match(frames.received.find((frame) => frame.type === 'subscribed' && frame.povId === POV), { recovered: true },
      'recovered without a gap')

    const feedLoaded = bob.waitForResponse((response) => response.url().endsWith(`/api/povs/${POV}/activities`))
    releaseFeed()
    await feedLoaded
    await bob.unroute('**/api/povs/*/activities')
    for (const title of ['From carol', 'Posted while bob reloaded']) {
      t.equal(await activityItems(bob, title).count(), 1, `"${title}" listed once, with the app's own feed loaded too`)
    }
    await povLink(bob, OTHER_POV).and(bob.locator('[data-unread="1"]')).waitFor({ timeout: UI_TIMEOUT })
    t.equal(await povLink(bob, OTHER_POV).getByTestId('pov-unread').textContent(), '1',
      'the PoV not open shows its unread count in the list')
    const shot = join(screenshotDir('example-presence'), 'after-reload.png')
    await bob.screenshot({ path: shot, fullPage: true })
    t.comment(`screenshot: ${shot}`)
  })

  t.same(pageErrors, [], 'no uncaught error in any page')
})
