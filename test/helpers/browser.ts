/**
 * What the browser end-to-end tests share: Debian's Chromium driven by playwright-core (no downloaded browser), a
 * signed-in page of the example app, and the example page's test ids.
 */
import { existsSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'
import type { FastifyInstance } from 'fastify'
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core'
import { DEFAULT_BACKOFF } from '../../hooks/client/connection/backoff.js'

/** Debian's Chromium; `CHROMIUM_PATH` points elsewhere. */
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
  '--disable-quic', '--no-first-run', '--disable-sync'
]
/** Generous: the machine running this may be a loaded 2-core box. */
export const UI_TIMEOUT = 20_000
/**
 * For what a page does after its server came back: the client's next try may be a whole backoff delay away (up to
 * `maxDelay`, 30 s, once the server was down long enough, as on a loaded CI box), then the page needs its UI time.
 */
export const RECONNECT_TIMEOUT = DEFAULT_BACKOFF.maxDelay + UI_TIMEOUT

const chromiumMissing = !existsSync(CHROMIUM)
const inCI = process.env.CI === 'true' || process.env.CI === '1'

/**
 * The `skip` option of a browser test: skipped (with a loud note) when Chromium is missing outside CI; under CI the
 * test runs and {@link requireChromium} fails it.
 */
export function skipWithoutChromium (): string | false {
  if (!chromiumMissing || inCI) return false
  console.error(`\n*** SKIPPING the browser end-to-end test: ${CHROMIUM} is missing. Install it with ` +
    '`apt-get install -y chromium` (CI installs it, and under CI=true this test fails instead). ***\n')
  return `${CHROMIUM} is missing (apt-get install -y chromium)`
}

/** Fails `t` (and returns false) when Chromium is missing but the test was not skipped: CI must install it. */
export function requireChromium (t: { fail (message: string): void }): boolean {
  if (!chromiumMissing) return true
  t.fail(`${CHROMIUM} is missing but CI=true: CI must install Chromium (apt-get install -y chromium)`)
  return false
}

/** Bundles a test page's `entry` (TypeScript and React) into `outfile` as the example app bundles its own, unminified. */
export async function bundlePage (entry: string, outfile: string): Promise<void> {
  await build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    format: 'esm',
    target: 'es2022',
    jsx: 'automatic',
    define: { 'process.env.NODE_ENV': '"production"' },
    logLevel: 'warning'
  })
}

/** @param extraArgs more command-line switches, e.g. `--ignore-certificate-errors` for a test's own certificate */
export function launchChromium (extraArgs: readonly string[] = []): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, args: [...CHROMIUM_ARGS, ...extraArgs] })
}

export type ConnectionStatus = 'connected' | 'disconnected' | 'reconnected'

export async function waitForStatus (page: Page, status: ConnectionStatus): Promise<void> {
  const timeout = status === 'reconnected' ? RECONNECT_TIMEOUT : UI_TIMEOUT
  await page.locator(`[data-testid="connection-status"][data-status="${status}"]`).waitFor({ timeout })
}

/** A page of `context` that reports its uncaught errors to `pageErrors` (prefixed with `name`). */
export async function newWatchedPage (context: BrowserContext, name: string, pageErrors: string[]): Promise<Page> {
  const page = await context.newPage()
  page.on('pageerror', (err) => pageErrors.push(`${name}: ${err.message}`))
  return page
}

/**
 * A fresh browser context (its own cookie jar, as a second browser would have), signed in as `userName` through the
 * page's form. Uncaught errors of the page are pushed to `pageErrors`.
 */
export async function openSignedInPage (
  browser: Browser, url: string, userName: string, pageErrors: string[], viewport = { width: 900, height: 760 }
): Promise<Page> {
  const context = await browser.newContext({ viewport })
  const page = await newWatchedPage(context, userName, pageErrors)
  await page.goto(url)
  await page.getByTestId('user-name-input').fill(userName)
  await page.getByTestId('sign-in-button').click()
  await page.getByTestId('signed-in-user').filter({ hasText: userName }).waitFor({ timeout: UI_TIMEOUT })
  return page
}

/** Opens `povId` from the page's PoV list, and waits until the address names it. */
export async function openPov (page: Page, povId: string): Promise<void> {
  await page.locator(`[data-testid="pov-link"][data-pov-id="${povId}"]`).click()
  await page.locator(`[data-testid="pov-link"][data-pov-id="${povId}"][aria-current="page"]`).waitFor({ timeout: UI_TIMEOUT })
  await page.waitForURL((address) => address.searchParams.get('pov') === povId, { timeout: UI_TIMEOUT })
}

/** The PoV list's entry for `povId`. */
export function povLink (page: Page, povId: string) {
  return page.locator(`[data-testid="pov-link"][data-pov-id="${povId}"]`)
}

/**
 * What a user would see as red in the page's DevTools console: `console.error` lines (Chromium logs a failed request
 * there too, a 401 included), and every answer of 400 or more, with its URL. Pushed to `problems`, prefixed with `name`.
 */
export function watchConsole (page: Page, name: string, problems: string[]): void {
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(`${name}: console error: ${message.text()}`)
  })
  page.on('response', (response) => {
    if (response.status() >= 400) problems.push(`${name}: ${response.status()} from ${response.url()}`)
  })
}

const root = fileURLToPath(new URL('../..', import.meta.url))

/**
 * The folder the browser tests' screenshots go to: `.tap/screenshots/<test>/` (git-ignored), made if missing.
 * @param test a name for the test file, e.g. 'example-page'
 */
export function screenshotDir (test: string): string {
  const dir = join(root, '.tap', 'screenshots', test)
  mkdirSync(dir, { recursive: true })
  return dir
}

/** Whether the page is wider than its window (something forces a horizontal scroll bar). */
export async function overflowsHorizontally (page: Page): Promise<boolean> {
  return page.evaluate(() => document.documentElement.scrollWidth > document.documentElement.clientWidth)
}

export function activityItems (page: Page, title: string) {
  return page.getByTestId('activity-item').filter({ hasText: title })
}

export async function postFromPage (page: Page, title: string, message: string, severity?: string): Promise<void> {
  await page.getByTestId('post-title-input').fill(title)
  await page.getByTestId('post-message-input').fill(message)
  if (severity) await page.getByTestId('post-severity').selectOption(severity)
  await page.getByTestId('post-submit').click()
}

export async function waitUntil (check: () => boolean, what: string, timeout = UI_TIMEOUT): Promise<void> {
  const deadline = Date.now() + timeout
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

/** Signs in through the app's own route (in-process, no browser) and returns the cookie header. */
export async function signInCookie (app: FastifyInstance, userName: string): Promise<string> {
  const response = await app.inject({ method: 'POST', url: '/api/demo/sign-in', payload: { userName } })
  const cookie = response.cookies.find((c) => c.name === 'accessToken')
  if (response.statusCode !== 200 || !cookie) throw new Error(`sign-in failed: ${response.statusCode} ${response.body}`)
  return `accessToken=${cookie.value}`
}
