/**
 * Server-side rendering: no DOM here (no jsdom), as in a Next.js or Remix server. The hooks must import and render
 * without touching `window`, `document` or a socket, and show the disconnected state.
 */
import { renderToString } from 'react-dom/server'
import t from 'tap'
import { PovRealtimeProvider, useConnectionStatus, usePovActivities, useWebSocket } from '../../hooks/index.js'
import { MockWebSocketProvider } from '../../hooks/testing/index.js'
import { recordingWebSocket } from '../helpers/hook-fixtures.js'

function Page () {
  const { connectionStatus, lastMessage } = useWebSocket()
  const { state } = useConnectionStatus()
  const { activities } = usePovActivities('p1')
  return <p>{connectionStatus}/{state}/{String(lastMessage)}/{activities.length}</p>
}

t.test('the hooks render on the server as disconnected, with no window and no socket', async (t) => {
  t.equal(typeof window, 'undefined', 'no DOM in this test')
  const { WebSocket, log } = recordingWebSocket()
  let fetched = 0
  const html = renderToString(
    <PovRealtimeProvider socketUrl='ws://127.0.0.1:9/ssr' tokenUrl='http://127.0.0.1:9/token' options={{ WebSocket, fetch: async () => { fetched++; return new Response() } }}>
      <Page />
    </PovRealtimeProvider>
  )
  t.equal(html, '<p>disconnected<!-- -->/<!-- -->idle<!-- -->/<!-- -->null<!-- -->/<!-- -->0</p>')
  await new Promise((resolve) => setTimeout(resolve, 50))
  t.equal(log.sockets.length, 0, 'no socket')
  t.equal(fetched, 0, 'no token request')
})

t.test('with no provider and no options (same-origin defaults) it renders too', async (t) => {
  t.match(renderToString(<Page />), /^<p>disconnected/)
})

t.test('the test doubles render on the server as well', async (t) => {
  t.match(renderToString(<MockWebSocketProvider><Page /></MockWebSocketProvider>), /^<p>disconnected/)
})
