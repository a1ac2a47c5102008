/**
 * The README's React snippet runs as pasted, in a real browser: bundled as it stands, served with a one-line page by
 * the README's own server snippet (the test adds only the two routes that serve them), it shows each note posted to
 * `launch` as it happens once the user has signed in through the server snippet's route.
 */
import { writeFile } from 'node:fs/promises'
import path from 'node:path'
import t from 'tap'
import { UI_TIMEOUT, bundlePage, launchChromium, newWatchedPage, requireChromium, skipWithoutChromium, watchConsole } from '../helpers/browser.js'
import { snippetProject, startSnippetServer } from '../helpers/readme-snippets.js'

const PAGE = '<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,"><title>README client</title><div id="root"></div><script type="module" src="/client.js"></script>'

t.test('the README\'s React snippet, served by its server snippet, shows a note as it is posted', { skip: skipWithoutChromium() }, async (t) => {
  if (!requireChromium(t)) return
  const { server, dir } = await snippetProject(t)
  await bundlePage(path.join(dir, 'client.tsx'), path.join(dir, 'client.js'))
  // The server snippet unchanged, with the page and the bundle served next to its routes: the hooks work same-origin.
  const served = `import { readFileSync } from 'node:fs'\n${server.replace(/^await app\.listen\(/m, [
    `app.get('/', (request, reply) => reply.type('text/html').send(${JSON.stringify(PAGE)}))`,
    "app.get('/client.js', (request, reply) => reply.type('text/javascript').send(readFileSync('client.js')))",
    'await app.listen('
  ].join('\n'))}`
  t.not(served, `import { readFileSync } from 'node:fs'\n${server}`, 'the page routes went in before app.listen')
  await writeFile(path.join(dir, 'served.ts'), served)
  const url = await startSnippetServer(t, dir, 'served.ts')

  const browser = await launchChromium()
  t.teardown(() => browser.close())
  const context = await browser.newContext()
  const pageErrors: string[] = []
  const problems: string[] = []
  const page = await newWatchedPage(context, 'ada', pageErrors)
  watchConsole(page, 'ada', problems)
  // Signed in through the snippet's own route: the browser context keeps the accessToken cookie it sets.
  const signIn = await page.request.post(`${url}/api/sign-in`, { data: { userId: 'ada' } })
  t.equal(signIn.status(), 200, 'signed in')
  await page.goto(url)
  await page.locator('p', { hasText: /^connected$/ }).waitFor({ timeout: UI_TIMEOUT })
  t.pass('the snippet\'s connection status says connected')

  const posted = await page.request.post(`${url}/api/povs/launch/notes`, { data: { text: 'Kick-off at 10' } })
  t.equal(posted.status(), 200, 'a note posted through the snippet\'s route')
  await page.locator('li', { hasText: 'New note: Kick-off at 10' }).waitFor({ timeout: UI_TIMEOUT })
  t.same(await page.locator('li').allTextContents(), ['New note: Kick-off at 10'], 'the page lists the note, once')
  const other = await page.request.post(`${url}/api/povs/support/notes`, { data: { text: 'Elsewhere' } })
  t.equal(other.status(), 200)
  const second = await page.request.post(`${url}/api/povs/launch/notes`, { data: { text: 'Agenda sent' } })
  t.equal(second.status(), 200)
  await page.locator('li', { hasText: 'New note: Agenda sent' }).waitFor({ timeout: UI_TIMEOUT })
  t.same(await page.locator('li').allTextContents(), ['New note: Kick-off at 10', 'New note: Agenda sent'],
    'oldest first, and nothing of another PoV')
  t.same(pageErrors, [], 'no uncaught error in the page')
  t.same(problems, [], 'no red line in the console')
})
