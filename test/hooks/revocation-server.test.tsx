/**
 * The React hooks in jsdom against a real server when the server revokes the user's access
 * (`fastify.povRealtime.revoke`): a revoked PoV shows as such and is not subscribed again by itself, even after a
 * reconnect; a 4003 close stops the client instead of reconnecting in a loop.
 */
import 'global-jsdom/register'
import { useState } from 'react'
import { act, cleanup, render, screen } from '@testing-library/react'
import tap from 'tap'
import {
  PovRealtimeProvider,
  REVOKED_MESSAGE,
  useActivityEffect,
  useConnectionStatus,
  usePovActivities,
  type RealtimeClientOptions
} from '../../hooks/index.js'
import { accessToken, activity, sleep, startServer, waitFor, type Teardown } from '../helpers/server.js'
import { clientSetup, sentOfType, until } from '../helpers/hook-fixtures.js'

function renderWithServer (t: Teardown, httpUrl: string, ui: React.ReactNode, options: RealtimeClientOptions = {}) {
  const setup = clientSetup(httpUrl, { reconnect: { initialDelay: 100, maxDelay: 400 }, ...options })
  const { socketUrl, tokenUrl, ...rest } = setup.clientOptions
  const view = render(<PovRealtimeProvider socketUrl={socketUrl} tokenUrl={tokenUrl} options={rest}>{ui}</PovRealtimeProvider>)
  t.teardown(() => cleanup())
  return { ...setup, view }
}

/** Every event `useActivityEffect` called back with, as `<type>:<povId>`. */
const events: string[] = []

function Feed ({ povId }: { povId: string }) {
  const { activities, error } = usePovActivities(povId)
  useActivityEffect(povId, (event) => { events.push(`${event.type}:${event.povId}`) })
  return (
    <section>
      <ul data-testid={`feed-${povId}`}>{activities.map((a) => <li key={a.id}>{a.id}</li>)}</ul>
      <p data-testid={`error-${povId}`}>{error ? `${error.code}: ${error.message}` : ''}</p>
    </section>
  )
}

let reconnect: () => void = () => {}
let remount: (povId: string) => void = () => {}

function Screen ({ povIds }: { povIds: string[] }) {
  const status = useConnectionStatus()
  reconnect = status.reconnect
  const [generation, setGeneration] = useState<Record<string, number>>({})
  remount = (povId) => setGeneration((current) => ({ ...current, [povId]: (current[povId] ?? 0) + 1 }))
  return (
    <>
      <p data-testid='state'>{status.state}</p>
      {povIds.map((povId) => <Feed key={`${povId}-${generation[povId] ?? 0}`} povId={povId} />)}
    </>
  )
}

const text = (testId: string) => screen.getByTestId(testId).textContent
const items = (testId: string) => [...screen.getByTestId(testId).querySelectorAll('li')].map((li) => li.textContent)

tap.beforeEach(() => { events.length = 0 })

tap.test('a revoked PoV shows the revocation, is not resubscribed after a reconnect, and comes back when watched anew', async (t) => {
  const allowed = new Set(['p1', 'p2'])
  const server = await startServer(t, { authorizeSubscription: (_user, povId) => allowed.has(povId) })
  const { sockets } = renderWithServer(t, server.httpUrl, <Screen povIds={['p1', 'p2']} />)
  await waitFor(() => server.app.povRealtime.stats().subscriptions === 2, 5000, 'both PoVs subscribed')
  await server.app.broadcastActivity(activity('p1', { id: 'a1' }))
  await until(t, () => items('feed-p1'), ['a1'], 'p1 live')

  allowed.delete('p1')
  await server.app.povRealtime.revoke({ userId: 'u1', povId: 'p1' })
  await until(t, () => text('error-p1'), `FORBIDDEN: ${REVOKED_MESSAGE}`, 'p1 shows the revocation')
  t.same(events, ['activity:p1', 'revoked:p1'], 'the activity effect hears it')
  t.equal(text('error-p2'), '', 'p2 shows nothing of it')
  t.same(items('feed-p1'), ['a1'], 'what was shown stays for the app to show or hide')
  await server.app.broadcastActivity(activity('p2', { id: 'b1' }))
  await until(t, () => items('feed-p2'), ['b1'], 'p2 stays live')

  act(() => reconnect())
  await waitFor(() => sockets.sockets.length === 2 && server.app.povRealtime.stats().subscriptions === 1, 5000, 'reconnected')
  await sleep(200)
  t.equal(sentOfType(sockets, 'subscribe', 'p1').length, 1, 'the revoked PoV was not subscribed again')
  t.equal(sentOfType(sockets, 'subscribe', 'p2').length, 2, 'the other one was')
  t.equal(text('error-p1'), `FORBIDDEN: ${REVOKED_MESSAGE}`, 'still shown as revoked')

  allowed.add('p1') // the app grants access again, and the component asks anew
  act(() => remount('p1'))
  await waitFor(() => server.app.povRealtime.stats().subscriptions === 2, 5000, 'p1 subscribed again')
  t.equal(sentOfType(sockets, 'subscribe', 'p1').length, 2, 'one new subscribe')
  await until(t, () => text('error-p1'), '', 'the error goes once subscribed')
  await server.app.broadcastActivity(activity('p1', { id: 'a2' }))
  await until(t, () => items('feed-p1').includes('a2'), true, 'and p1 is live again')
})

tap.test('a 4003 close stops the client in the revoked state, every PoV shows it, and reconnect() is the way back', async (t) => {
  const server = await startServer(t)
  const { sockets, fetches } = renderWithServer(t, server.httpUrl, <Screen povIds={['p1', 'p2']} />)
  await waitFor(() => server.app.povRealtime.stats().subscriptions === 2, 5000, 'both PoVs subscribed')
  await until(t, () => text('state'), 'open')

  await server.app.povRealtime.revoke({ userId: 'u1' })
  await until(t, () => text('state'), 'revoked', 'the connection shows the revocation')
  t.same([text('error-p1'), text('error-p2')], [`FORBIDDEN: ${REVOKED_MESSAGE}`, `FORBIDDEN: ${REVOKED_MESSAGE}`], 'so does each PoV')
  t.same(events.sort(), ['revoked:p1', 'revoked:p2'])
  await sleep(1500) // many times the backoff: a client that retried would have by now
  t.equal(sockets.sockets.length, 1, 'no reconnection attempt')
  t.equal(fetches.calls.length, 1, 'no token fetched for one')
  t.equal(server.app.povRealtime.stats().connections, 0)

  act(() => reconnect())
  await until(t, () => text('state'), 'open', 'reconnect() connects again')
  await waitFor(() => server.app.povRealtime.stats().subscriptions === 2, 5000, 'both PoVs subscribed again')
  await until(t, () => [text('error-p1'), text('error-p2')], ['', ''], 'the errors go once subscribed')
})

tap.test('a 4003 refusing an in-band token of another user is not a revocation: the client reconnects as that user', async (t) => {
  const server = await startServer(t, { tokenExpiresIn: '3s' })
  const { sockets, fetches } = renderWithServer(t, server.httpUrl, <Screen povIds={['p1']} />)
  await waitFor(() => server.app.povRealtime.stats().subscriptions === 1, 5000, 'subscribed')
  // Signed out and in as someone else (in another tab, say): the next refresh brings u2's token.
  fetches.cookie = `accessToken=${accessToken({ userId: 'u2' })}`
  await waitFor(() => (server.app.povRealtime.stats().closed[4003] ?? 0) === 1, 10_000, 'the server to refuse the identity change')
  await waitFor(() => sockets.sockets.length === 2 && text('state') === 'open', 10_000, 'a new connection')
  t.equal(text('error-p1'), '', 'nothing shown as revoked')
  const userOf = (protocols: string | string[] | undefined) =>
    JSON.parse(Buffer.from(String((protocols as string[])[1]).split('.')[2]!, 'base64url').toString()).userId
  t.equal(userOf(sockets.protocols[1]), 'u2', 'the new connection is the new user\'s')
})
