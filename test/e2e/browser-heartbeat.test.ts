/**
 * A real browser's socket against the heartbeat: a pong keeps a peer alive only when it echoes the ping's random
 * payload, and browsers answer pings by themselves with that payload (RFC 6455 §5.5.3). Debian's Chromium, driven by
 * playwright-core, holds a socket open across many short heartbeat intervals and is still served at the end.
 */
import t from 'tap'
import { launchChromium, requireChromium, skipWithoutChromium } from '../helpers/browser.js'
import { sleep, startServer, waitFor } from '../helpers/server.js'

t.test('a browser\'s socket outlives many heartbeats: it echoes each ping\'s payload by itself', {
  skip: skipWithoutChromium()
}, async (t) => {
  if (!requireChromium(t)) return
  const heartbeatInterval = 300
  const server = await startServer(t, { heartbeatInterval })
  const token = await server.wsToken()
  const browser = await launchChromium()
  t.teardown(() => browser.close())
  const page = await browser.newPage()

  await page.evaluate(async ({ url, token }) => {
    const ws = new WebSocket(url, ['pov-realtime.v1', `bearer.${token}`])
    const state = { closeCode: 0, messages: [] as string[] }
    Object.assign(globalThis, { povSocket: ws, povState: state })
    ws.onclose = (event) => { state.closeCode = event.code }
    ws.onmessage = (event) => { state.messages.push(String(event.data)) }
    await new Promise((resolve, reject) => {
      ws.onopen = resolve
      ws.onerror = reject
    })
  }, { url: server.wsUrl, token })
  await waitFor(() => server.app.povRealtime.stats().connections === 1, 5000, 'the browser to connect')

  await sleep(heartbeatInterval * 10)
  const closeCode = await page.evaluate(() => (globalThis as unknown as { povState: { closeCode: number } }).povState.closeCode)
  t.equal(closeCode, 0, 'the socket is still open after ten intervals')
  t.equal(server.app.povRealtime.stats().connections, 1, 'and the server still holds it')
  await page.evaluate(() => { (globalThis as unknown as { povSocket: WebSocket }).povSocket.send('{"type":"ping"}') })
  const deadline = Date.now() + 5000
  let messages: string[] = []
  while (!messages.includes('{"type":"pong"}') && Date.now() < deadline) {
    await sleep(20)
    messages = await page.evaluate(() => (globalThis as unknown as { povState: { messages: string[] } }).povState.messages)
  }
  t.ok(messages.includes('{"type":"pong"}'), 'and is still served')
})
