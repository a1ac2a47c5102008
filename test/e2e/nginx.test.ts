/**
 * The nginx configuration of docs/deployment.md, proven with a real nginx: it terminates TLS (a certificate made for
 * the run, trusted by the clients through `ca`) in front of two instances with the Redis broker, each a process of its
 * own. A sign-in through it sets a `Secure` cookie (the instance saw `https` through `X-Forwarded-Proto`), requests go
 * round-robin with no stickiness, a `wss` socket opens through it (the upgrade headers), and when the instance holding
 * the socket is killed (SIGKILL) mid-traffic, the client's token request and new socket go through nginx to the other
 * instance and its resume gets every activity once, in order.
 */
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import https from 'node:https'
import t from 'tap'
import {
  broadcastFrom, countOf, startBalancedInstances, waitForStats, type BalancedInstance
} from '../helpers/balanced-instances.js'
import { TestClient } from '../helpers/client.js'
import { freePort } from '../helpers/free-port.js'
import { requireTools, selfSignedCertificate, skipWithoutTools } from '../helpers/load-balancer.js'
import { startNginx } from '../helpers/nginx.js'
import { sharedRedis } from '../helpers/redis-server.js'
import { sleep, waitFor } from '../helpers/server.js'
import { opened } from '../helpers/socket-waits.js'

const POV = 'launch'
const TOOLS = ['nginx', 'openssl'] as const

interface Answer { status: number, headers: Record<string, string | string[] | undefined>, body: string }

/** One https request through the balancer, trusting only the run's own certificate (`ca`). */
function request (url: string, ca: string, { method = 'GET', headers = {}, body }: {
  method?: string, headers?: Record<string, string>, body?: string
} = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const outgoing = https.request(url, { method, headers, ca, agent: false }, (response) => {
      let text = ''
      response.setEncoding('utf8')
      response.on('data', (chunk: string) => { text += chunk })
      response.on('end', () => resolve({ status: response.statusCode!, headers: response.headers, body: text }))
    })
    outgoing.once('error', reject)
    outgoing.end(body)
  })
}

t.test('behind nginx with TLS and no sticky sessions, a socket whose instance is killed resumes on the other: nothing missed, nothing twice', {
  skip: skipWithoutTools(TOOLS)
}, async (t) => {
  if (!requireTools(t, TOOLS)) return
  const redis = await sharedRedis(t)
  const { cert, key } = selfSignedCertificate(t)
  const ca = readFileSync(cert, 'utf8')
  const publicPort = await freePort()
  const origin = `https://localhost:${publicPort}`
  const instances = await startBalancedInstances(t, ['n1', 'n2'], { redis, origin, presenceTtl: 3000 })
  const balancer = await startNginx(t, { port: publicPort, cert, key, backends: instances })

  const signIn = await request(`${balancer.url}/api/sign-in`, ca, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ userName: 'alice' })
  })
  t.equal(signIn.status, 200, 'signed in through nginx')
  const setCookie = String(signIn.headers['set-cookie'])
  t.match(setCookie, /; Secure/, 'the access cookie is Secure: the instance saw https through X-Forwarded-Proto')
  t.match(setCookie, /; HttpOnly/, 'and HttpOnly')
  const cookie = setCookie.split(';')[0]!

  const served: string[] = []
  for (let i = 0; i < 4; i++) {
    served.push((JSON.parse((await request(`${balancer.url}/whoami`, ca, { headers: { cookie } })).body) as { instance: string }).instance)
  }
  t.same(countOf(served), { n1: 2, n2: 2 }, `four signed-in requests in a row: two on each instance (${served.join(', ')})`)
  t.ok(served.every((name, i) => i === 0 || name !== served[i - 1]), 'never the same instance twice in a row')

  const delivered: string[] = []
  let cursor: string | undefined
  /** A socket through nginx with a fresh token from the token route (through nginx too), following the PoV. */
  const connect = async (): Promise<TestClient> => {
    const answer = await request(`${balancer.url}/api/auth/ws-token`, ca, { headers: { cookie } })
    if (answer.status !== 200) throw new Error(`token route answered ${answer.status}: ${answer.body}`)
    const { token } = JSON.parse(answer.body) as { token: string }
    const client = new TestClient(`wss://localhost:${publicPort}/ws`, ['pov-realtime.v1', `bearer.${token}`], { origin }, { ca })
    t.teardown(() => client.terminate())
    client.ws.on('message', (data) => {
      const message = JSON.parse(data.toString()) as { type: string, cursor?: string, data?: { id: string } }
      if (message.type !== 'activity') return
      delivered.push(message.data!.id)
      cursor = message.cursor
    })
    await opened(client)
    return client
  }

  const first = await connect()
  t.match(await first.subscribe(POV), { type: 'subscribed', povId: POV }, 'subscribed over wss through nginx')
  const firstStats = await waitForStats(instances, (stats) => stats.some((s) => s.subscriptions === 1), 'the subscription')
  const doomed = instances[firstStats.findIndex((s) => s.subscriptions === 1)]!
  const publisher = instances.find((instance) => instance !== doomed)!

  const published: string[] = []
  const publish = async (from: BalancedInstance, id: string) => {
    await broadcastFrom(from, POV, id)
    published.push(id)
  }
  for (let i = 0; i < 5; i++) await publish(publisher, `before-${i}`)
  await waitFor(() => delivered.length === 5, 10_000, 'the first activities')

  const killed = (async () => {
    await publish(publisher, 'during-0')
    doomed.process.kill('SIGKILL')
    await once(doomed.process, 'exit')
    for (let i = 1; i < 10; i++) {
      await publish(publisher, `during-${i}`)
      await sleep(20)
    }
  })()
  t.equal((await first.closed).code, 1006, 'the socket dropped with the instance (no close frame)')
  await killed
  const second = await connect()
  const resumed = await second.subscribe(POV, cursor)
  t.match(resumed, { type: 'subscribed', povId: POV, recovered: true }, 'the resume on the other instance recovered the gap')
  for (let i = 0; i < 5; i++) await publish(publisher, `after-${i}`)

  await waitFor(() => delivered.length >= published.length, 10_000, 'every activity')
  await sleep(200) // room for a duplicate to show up
  t.same(delivered, published, `all ${published.length} activities once each, in publish order, across the two sockets`)
  await waitForStats([publisher], (stats) => stats[0]!.subscriptions === 1, 'the resumed subscription on the survivor')
})
