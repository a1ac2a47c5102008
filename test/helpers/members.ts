/**
 * Users' sockets on a plugin server, as the presence, typing and read-receipt tests set them up: a client signed in
 * as a user, users subscribed to a PoV in order (a user named twice has two tabs), and the usual cast around one PoV.
 */
import type { TestClient } from './client.js'
import type { TestServer } from './server.js'

/** A client of `server` signed in as `userId`. */
export function connectAs (server: TestServer, userId: string): Promise<TestClient> {
  return server.connect({ claims: { userId } })
}

/** A client for each of `userIds`, connected and subscribed to `povId` one after the other. */
export async function subscribedAs (server: TestServer, povId: string, ...userIds: string[]): Promise<TestClient[]> {
  const clients = []
  for (const userId of userIds) {
    const client = await connectAs(server, userId)
    await client.subscribe(povId)
    clients.push(client)
  }
  return clients
}

/** A user's two tabs and a colleague on one PoV, and a user on another PoV only (who must hear nothing of the first). */
export interface TabsColleagueElsewhere {
  readonly tab1: TestClient
  readonly tab2: TestClient
  readonly colleague: TestClient
  readonly elsewhere: TestClient
}

/** u1 in two tabs and u2 subscribed to `povId`, u3 to `otherPovId` only; all connected before anyone subscribes. */
export async function tabsColleagueElsewhere (server: TestServer, povId = 'p1', otherPovId = 'p2'): Promise<TabsColleagueElsewhere> {
  const tab1 = await connectAs(server, 'u1')
  const tab2 = await connectAs(server, 'u1')
  const colleague = await connectAs(server, 'u2')
  const elsewhere = await connectAs(server, 'u3')
  for (const client of [tab1, tab2, colleague]) await client.subscribe(povId)
  await elsewhere.subscribe(otherPovId)
  return { tab1, tab2, colleague, elsewhere }
}
