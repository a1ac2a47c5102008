/**
 * Which React the hook suites run on. Normally the package's own (React 19); under `npm run test:react18`
 * (scripts/test-react18.mjs, which sets POV_REALTIME_REACT) the React 18.3 of test/react18/. This file makes sure the
 * React 18 run really ran React 18, everywhere at once: the tests' React, react-dom, the hooks' React and
 * @testing-library/react's must be one and the same, or a hook would fail with "Invalid hook call".
 */
import 'global-jsdom/register'
import { readFile } from 'node:fs/promises'
import { render, screen } from '@testing-library/react'
import { version } from 'react'
import { version as domVersion } from 'react-dom'
import t from 'tap'
import { MockWebSocketProvider, simulateConnectionStatus } from '../../hooks/testing/index.js'
import { useWebSocket } from '../../hooks/index.js'
import { act } from 'react'

const packageReact = JSON.parse(await readFile(new URL('../../node_modules/react/package.json', import.meta.url), 'utf8')) as { version: string }
const expected = process.env.POV_REALTIME_REACT ?? packageReact.version

function Status () {
  return <p>{useWebSocket().connectionStatus}</p>
}

t.test(`the hooks run on React ${expected}, with react-dom and @testing-library/react of the same React`, async (t) => {
  t.equal(version, expected, 'react')
  t.equal(domVersion, expected, 'react-dom')
  const view = render(<MockWebSocketProvider><Status /></MockWebSocketProvider>)
  t.teardown(() => view.unmount())
  t.equal(screen.getByRole('paragraph').textContent, 'connected', 'a hook renders through @testing-library/react')
  act(() => simulateConnectionStatus('disconnected'))
  t.equal(screen.getByRole('paragraph').textContent, 'disconnected', 'and re-renders on a change')
})
