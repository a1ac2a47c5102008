/**
 * Browser tabs of a real server, several in one jsdom: each tab is its own client (as each tab of a browser has its
 * own), signed in as a user through its own access cookie, with its own stand-in page (so that a test hides one tab
 * and not the others) and a log of what went over its sockets. Two tabs of one user are two tabs with the same user id.
 */
import { StrictMode, type ReactNode } from 'react'
import { render, within } from '@testing-library/react'
import { PovRealtimeProvider, RealtimeClient, type RealtimeClientOptions } from '../../hooks/index.js'
import type { Teardown } from './server.js'
import { clientSetup, type FetchLog, type SocketLog } from './hook-fixtures.js'
import { FakePage } from './page-doubles.js'

export interface Tab {
  readonly userId: string
  readonly client: RealtimeClient
  /** The tab's page: `hide()`, `show()`, `input()`. */
  readonly page: FakePage
  readonly sockets: SocketLog
  readonly fetches: FetchLog
  /**
   * Renders `ui` in this tab, under a provider of its client and in StrictMode (as the example app does: every effect
   * runs, is undone and runs again); the returned queries see this tab only.
   */
  show (ui: ReactNode): ReturnType<typeof within>
}

/**
 * Opens a tab of the server at `httpUrl` signed in as `userId` (e-mail `<userId>@example.com`). Quick reconnects and
 * nothing persisted unless `options` say otherwise. The client closes at teardown; unmount what `show` rendered with
 * testing-library's `cleanup()`.
 */
export function openTab (t: Teardown, httpUrl: string, userId: string, options: RealtimeClientOptions = {}): Tab {
  const page = new FakePage()
  const { clientOptions, sockets, fetches } = clientSetup(httpUrl, {
    reconnect: { initialDelay: 100, maxDelay: 1000 },
    document: page,
    persist: false,
    ...options
  }, { userId, email: `${userId}@example.com` })
  const client = new RealtimeClient(clientOptions)
  t.teardown(() => client.close())
  return {
    userId,
    client,
    page,
    sockets,
    fetches,
    show (ui) {
      const view = render(<StrictMode><PovRealtimeProvider client={client}>{ui}</PovRealtimeProvider></StrictMode>)
      return within(view.container)
    }
  }
}

/**
 * A tab for each of `userIds`, opened in that order (a user named twice has two tabs): the cast of the tests where
 * users see each other, such as `openTabs(t, url, 'ana', 'ana', 'li')` for a user's two tabs and a colleague's.
 */
export function openTabs (t: Teardown, httpUrl: string, ...userIds: string[]): Tab[] {
  return userIds.map((userId) => openTab(t, httpUrl, userId))
}
