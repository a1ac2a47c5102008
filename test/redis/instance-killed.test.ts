/**
 * An instance killed mid-traffic (SIGKILL, a process of its own): its clients reconnect to the other instances and
 * resume with `since`, and end up with every activity exactly once, in order, as if nothing had happened.
 */
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { createInterface } from 'node:readline'
import { TestClient } from '../helpers/client.js'
import { testOnEachTarget } from '../helpers/redis-targets.js'
import { accessToken, activity, sleep, startServer, waitFor, type TestServer } from '../helpers/server.js'
import { nextEvent, opened, PROCESS_START_MS } from '../helpers/socket-waits.js'

interface Instance { readonly httpUrl: string, readonly wsUrl: string }

/** A client that follows p1 across reconnects: when its socket drops it resumes on the next instance with `since`. */
class FollowingClient {
  readonly ids: string[] = []
  readonly recovered: unknown[] = []
  #cursor: string | undefined
  #client: TestClient | undefined
  #stopped = false

  constructor (private readonly fallbacks: Instance[]) {}

  async follow (instance: Instance): Promise<void> {
    const response = await fetch(`${instance.httpUrl}/api/auth/ws-token`, { headers: { cookie: `accessToken=${accessToken()}` } })
    const { token } = await response.json() as { token: string }
    const client = new TestClient(instance.wsUrl, ['pov-realtime.v1', `bearer.${token}`])
    this.#client = client
    client.ws.on('message', (data) => {
      const message = JSON.parse(data.toString()) as { type: string, cursor?: string, data?: { id: string } }
      if (message.type !== 'activity') return
      this.ids.push(message.data!.id)
      this.#cursor = message.cursor
    })
    client.ws.once('close', () => {
      if (this.#stopped) return
      const next = this.fallbacks[this.ids.length % this.fallbacks.length]!
      this.follow(next).catch(() => {})
    })
    await opened(client)
    const answer = await client.subscribe('p1', this.#cursor)
    if (this.#cursor !== undefined) this.recovered.push(answer.recovered)
  }

  stop (): void {
    this.#stopped = true
    this.#client?.terminate()
  }
}

testOnEachTarget('an instance killed mid-traffic: its clients resume on the others with no gap and nothing twice', async (t, redis) => {
  const child = spawn(process.execPath, [...process.execArgv, new URL('./fixtures/instance-process.ts', import.meta.url).pathname], {
    env: { ...process.env, ...redis.processEnv },
    stdio: ['ignore', 'pipe', 'inherit']
  })
  t.teardown(() => { child.kill('SIGKILL') })
  const [line] = await nextEvent<[string]>(createInterface({ input: child.stdout! }), 'line', 'the instance process', { within: PROCESS_START_MS })
  const { port } = JSON.parse(line) as { port: number }
  const doomed: Instance = { httpUrl: `http://127.0.0.1:${port}`, wsUrl: `ws://127.0.0.1:${port}/ws` }

  const survivors: TestServer[] = []
  for (let i = 0; i < 2; i++) {
    survivors.push(await startServer(t, { broker: redis.createBroker() }))
  }
  const reference = await survivors[0]!.connect()
  await reference.subscribe('p1')
  const followers = Array.from({ length: 4 }, () => new FollowingClient(survivors))
  for (const follower of followers) await follower.follow(doomed)
  t.teardown(() => { for (const follower of followers) follower.stop() })

  const total = 200
  const published: string[] = []
  const publishing = (async () => {
    for (let i = 0; i < total; i++) {
      const id = `e${i}`
      await survivors[i % 2]!.app.broadcastActivity(activity('p1', { id }))
      published.push(id)
      await sleep(2)
    }
  })()
  await waitFor(() => published.length >= total / 3, 20_000, 'traffic to be under way')
  child.kill('SIGKILL')
  await once(child, 'exit')
  await publishing

  await waitFor(() => reference.activities('p1').length === total, 20_000, 'the reference subscriber')
  for (const [i, follower] of followers.entries()) {
    await waitFor(() => follower.ids.length >= total, 20_000, `follower ${i}`)
  }
  await sleep(200) // room for a duplicate to show up
  t.same(reference.activities('p1').map((data) => data.id), published, 'the reference got everything in publish order')
  for (const [i, follower] of followers.entries()) {
    t.same(follower.ids, published, `follower ${i}: every activity once, in order, across the kill`)
    t.ok(follower.recovered.length >= 1 && follower.recovered.every((recovered) => recovered === true),
      `follower ${i} resumed with recovered: true`)
  }
})
