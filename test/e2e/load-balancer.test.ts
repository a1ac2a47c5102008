/**
 * Sticky sessions are not needed, shown with a real load balancer: HAProxy terminates TLS (a certificate made for the
 * run) in front of three instances, each a process of its own with the Redis broker, balancing round-robin with no
 * stickiness. A user's page in Chromium is served over https through it, signs in (a `Secure` cookie), and watches a
 * PoV over `wss`. The instance its socket is on is killed (SIGKILL) while activities are broadcast from another: the
 * page resumes through the balancer on a surviving instance and lists every activity once, in order, with no reload;
 * another user's page shows the user once throughout, and the balancer keeps spreading requests over the survivors.
 */
import { once } from 'node:events'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Page } from 'playwright-core'
import t from 'tap'
import {
  UI_TIMEOUT, bundlePage, launchChromium, newWatchedPage, requireChromium, skipWithoutChromium, waitForStatus, waitUntil
} from '../helpers/browser.js'
import { startHaproxy } from '../helpers/haproxy.js'
import { freePort } from '../helpers/free-port.js'
import { requireTools, selfSignedCertificate, skipWithoutTools } from '../helpers/load-balancer.js'
import {
  broadcastFrom, countOf, startBalancedInstances, statsOf, waitForStats, type BalancedInstance
} from '../helpers/balanced-instances.js'
import { sharedRedis } from '../helpers/redis-server.js'
import { sleep, type Teardown } from '../helpers/server.js'

const POV = 'launch'
/** Short, so that the killed instance's members are reaped within the test (bound: presenceTtl × 4/3). */
const PRESENCE_TTL = 5000
const INSTANCE_NAMES = ['i1', 'i2', 'i3'] as const

/** Bundles the test page (React and the package's hooks, from the sources) into a temporary directory. */
async function buildPage (t: Teardown): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'pov-realtime-page-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const outfile = join(dir, 'page.js')
  await bundlePage(fileURLToPath(new URL('./fixtures/balanced-page.tsx', import.meta.url)), outfile)
  return outfile
}

interface Frames {
  /** The URL of every WebSocket the page opened. */
  readonly sockets: string[]
  /** Every frame received, on any of them, with the index of its socket in `sockets` and when it came. */
  readonly received: Array<Record<string, unknown> & { socket: number, at: number }>
}

/** Every WebSocket the page opens and every frame it receives, read through the DevTools protocol. */
function recordFrames (page: Page): Frames {
  const frames: Frames = { sockets: [], received: [] }
  page.on('websocket', (socket) => {
    const index = frames.sockets.push(socket.url()) - 1
    socket.on('framereceived', ({ payload }) => {
      frames.received.push({ ...JSON.parse(String(payload)) as Record<string, unknown>, socket: index, at: Date.now() })
    })
  })
  return frames
}

async function signIn (page: Page, url: string, userName: string): Promise<void> {
  await page.goto(`${url}/?pov=${POV}`)
  await page.getByTestId('user-name-input').fill(userName)
  await page.getByTestId('sign-in-button').click()
  await page.getByTestId('signed-in-user').filter({ hasText: userName }).waitFor({ timeout: UI_TIMEOUT })
}

/** The instances that answered `count` requests of the page in a row, read from the header HAProxy adds. */
async function servedBy (page: Page, count: number): Promise<string[]> {
  return await page.evaluate(async (count) => {
    const names: string[] = []
    for (let i = 0; i < count; i++) {
      const response = await fetch('/whoami')
      const { instance } = await response.json() as { instance: string }
      names.push(response.headers.get('x-served-by') === instance ? instance : `mismatch:${instance}`)
    }
    return names
  }, count)
}

function feedIds (page: Page): Promise<string[]> {
  return page.getByTestId('activity-item').evaluateAll((items) => items.map((item) => (item as HTMLElement).dataset.id!))
}

function memberIds (page: Page): Promise<string[]> {
  return page.getByTestId('presence-member').evaluateAll((items) => items.map((item) => (item as HTMLElement).dataset.userId!))
}

t.test('behind HAProxy with TLS and no sticky sessions, a page whose instance is killed resumes on another: nothing missed, nothing twice', {
  skip: skipWithoutChromium() || skipWithoutTools(['haproxy', 'openssl'])
}, async (t) => {
  if (!requireChromium(t) || !requireTools(t, ['haproxy', 'openssl'])) return
  const redis = await sharedRedis(t)
  const pageBundle = await buildPage(t)
  const { pem } = selfSignedCertificate(t)
  const publicPort = await freePort()
  const origin = `https://localhost:${publicPort}`
  const starting = Date.now()
  const instances = await startBalancedInstances(t, INSTANCE_NAMES, { redis, origin, presenceTtl: PRESENCE_TTL, pageBundle })
  t.comment(`three instances started in ${Date.now() - starting} ms`)
  const balancer = await startHaproxy(t, { port: publicPort, pem, backends: instances })

  // The certificate is the run's own, so Chromium is told to accept it; localhost is pinned to the address HAProxy
  // listens on (not ::1).
  const browser = await launchChromium(['--ignore-certificate-errors', '--host-resolver-rules=MAP localhost 127.0.0.1'])
  t.teardown(() => browser.close())
  const pageErrors: string[] = []
  const aliceContext = await browser.newContext()
  const alice = await newWatchedPage(aliceContext, 'alice', pageErrors)
  const aliceFrames = recordFrames(alice)
  await signIn(alice, balancer.url, 'alice')
  await waitForStatus(alice, 'connected')

  const [accessCookie] = (await aliceContext.cookies()).filter((cookie) => cookie.name === 'accessToken')
  t.match(accessCookie, { secure: true, httpOnly: true }, 'the access cookie is Secure (the app saw https through X-Forwarded-Proto) and HttpOnly')
  t.same(aliceFrames.sockets, [`wss://localhost:${publicPort}/ws`], 'the page\'s socket is wss, through the balancer')

  const firstStats = await waitForStats(instances, (stats) => stats.filter((s) => s.subscriptions === 1).length === 1,
    'alice to be subscribed on one instance')
  const doomed = instances[firstStats.findIndex((s) => s.subscriptions === 1)]!
  const survivors = instances.filter((instance) => instance !== doomed)
  const publisher = survivors[0]!

  await t.test('the balancer spreads one signed-in browser\'s requests over all three instances, round-robin', async (t) => {
    const served = await servedBy(alice, 6)
    t.same(countOf(served), { i1: 2, i2: 2, i3: 2 }, `each instance answered two of six requests in a row: ${served.join(', ')}`)
    t.ok(served.every((name, i) => i === 0 || name !== served[i - 1]), 'no two requests in a row went to the same instance')
  })

  const bob = await newWatchedPage(await browser.newContext(), 'bob', pageErrors)
  const bobFrames = recordFrames(bob)
  await signIn(bob, balancer.url, 'bob')
  await waitForStatus(bob, 'connected')
  await waitForStats(instances, (stats) => stats.reduce((sum, s) => sum + s.subscriptions, 0) === 2, 'both pages to be subscribed')
  for (const page of [alice, bob]) {
    await page.locator('[data-testid="presence-member"][data-user-id="alice"]').waitFor({ timeout: UI_TIMEOUT })
    await page.locator('[data-testid="presence-member"][data-user-id="bob"]').waitFor({ timeout: UI_TIMEOUT })
  }

  const published: string[] = []
  const publish = async (from: BalancedInstance, id: string) => {
    await broadcastFrom(from, POV, id)
    published.push(id)
  }
  for (let i = 0; i < 5; i++) await publish(publisher, `before-${i}`)
  await waitUntil(() => aliceFrames.received.filter((frame) => frame.type === 'activity').length === 5, 'alice\'s first activities')

  await t.test('the instance holding the page\'s socket is killed mid-traffic: the page resumes elsewhere with every activity once, in order', async (t) => {
    // Broadcasts go on from a surviving instance before, during and after the kill and the page's reconnect.
    let killedAt = 0
    for (let i = 0; i < 30; i++) {
      await publish(publisher, `during-${i}`)
      if (i === 9) {
        killedAt = Date.now()
        doomed.process.kill('SIGKILL')
        await once(doomed.process, 'exit')
      }
      await sleep(40)
    }
    await waitForStatus(alice, 'reconnected')
    for (let i = 0; i < 5; i++) await publish(publisher, `after-${i}`)

    const total = published.length
    await alice.locator(`[data-testid="activity-item"][data-id="${published.at(-1)!}"]`).waitFor({ timeout: UI_TIMEOUT })
    await sleep(300) // room for a duplicate to show up
    t.same(await feedIds(alice), published, `the page lists all ${total} activities once each, in publish order`)
    const delivered = aliceFrames.received.filter((frame) => frame.type === 'activity').map((frame) => (frame.data as { id: string }).id)
    t.same(delivered, published, 'and each came over the wire exactly once, across both sockets (nothing for the hook to drop)')
    const subscribed = aliceFrames.received.filter((frame) => frame.type === 'subscribed')
    t.equal(subscribed.length, 2, 'subscribed once, then resubscribed once after the kill')
    t.equal(subscribed[1]?.recovered, true, 'the resume on the other instance answered recovered: true')
    const onNewSocket = aliceFrames.received.filter((frame) => frame.socket === 1)
    const replayed = onNewSocket.slice(0, onNewSocket.findIndex((frame) => frame.type === 'subscribed'))
      .filter((frame) => frame.type === 'activity')
    t.ok(replayed.length > 0, `the resume replayed what was broadcast while the page was away (${replayed.length} activities)`)
    t.comment(`from SIGKILL to the page resubscribed on another instance: ${subscribed[1]!.at - killedAt} ms`)
    t.equal(await alice.getByTestId('resync-count').textContent(), '0', 'the page never had to reload its feed')
    t.equal(aliceFrames.sockets.length, 2, 'one new socket')
    t.ok(aliceFrames.sockets.every((url) => url === `wss://localhost:${publicPort}/ws`), 'both through the balancer, over wss')

    const after = await Promise.all(survivors.map(statsOf))
    t.equal(after.reduce((sum, s) => sum + s.subscriptions, 0), 2, 'both pages are subscribed on the surviving instances')
  })

  await t.test('presence shows the user once, on her page and on the other user\'s, and nobody seemed to leave', async (t) => {
    // Past the bound within which the killed instance's members are reaped (presenceTtl × 4/3), plus the diff window.
    await sleep(PRESENCE_TTL * 4 / 3 + 500)
    t.same(await memberIds(alice), ['alice', 'bob'], 'alice\'s page: alice and bob, once each')
    t.same(await memberIds(bob), ['alice', 'bob'], 'bob\'s page: alice and bob, once each')
    const leaves = bobFrames.received.filter((frame) => frame.type === 'presence_diff')
      .flatMap((frame) => frame.leaves as string[])
    t.same(leaves, [], 'bob\'s page never heard alice leave: her new instance announced her before the dead one was reaped')
  })

  await t.test('the balancer took the dead instance out: the next requests go round-robin over the two survivors', async (t) => {
    const served = await servedBy(alice, 4)
    const names = Object.fromEntries(survivors.map((instance) => [instance.name, 2]))
    t.same(countOf(served), names, `the two survivors answered two each: ${served.join(', ')}`)
  })

  t.same(pageErrors, [], 'no uncaught error in either page')
})
