/**
 * The broker seam itself (no sockets): what a Redis broker hands to its plugin's sink when an instance was cut off
 * longer than the history keeps, so that the plugin can tell the PoV's subscribers their feed has a hole.
 */
import { startCutOffBrokers } from '../helpers/redis-broker-parts.js'
import { testOnEachTarget } from '../helpers/redis-targets.js'
import { sleep, waitFor } from '../helpers/server.js'

const json = (id: string) => JSON.stringify({ id })

testOnEachTarget('a gap longer than the history: what is held is delivered, then the sink is told the PoV was interrupted, and where delivery goes on', async (t, redis) => {
  const { proxy, cutOff, feed: sink, publisher } = await startCutOffBrokers(t, redis)
  await cutOff.watch('p1')
  await publisher.publish('p1', json('e0'))
  await waitFor(() => sink.events.length === 1, 5000, 'e0')

  proxy.cut()
  for (let i = 1; i <= 6; i++) await publisher.publish('p1', json(`e${i}`)) // the window keeps e4..e6
  proxy.restore()
  await waitFor(() => sink.events.length >= 5, 15_000, 'the broker to catch up')
  await publisher.publish('p1', json('e7'))
  await waitFor(() => sink.events.length >= 6, 5000, 'e7')
  await sleep(100)
  t.same(sink.events, ['p1:e0', 'p1:e4', 'p1:e5', 'p1:e6', 'p1:interrupted after e6', 'p1:e7'])
})

testOnEachTarget('a gap the history still covers is filled without an interruption', async (t, redis) => {
  const { proxy, cutOff, feed: sink, publisher } = await startCutOffBrokers(t, redis)
  await cutOff.watch('p1')
  await cutOff.watch('p2')
  await publisher.publish('p1', json('a0'))
  await waitFor(() => sink.events.length === 1, 5000, 'a0')

  proxy.cut()
  await publisher.publish('p1', json('a1'))
  await publisher.publish('p2', json('b1'))
  await publisher.publish('p1', json('a2'))
  proxy.restore()
  await waitFor(() => sink.events.length >= 4, 15_000, 'the broker to catch up')
  await sleep(100)
  t.same(sink.events.filter((event) => event.startsWith('p1:')), ['p1:a0', 'p1:a1', 'p1:a2'])
  t.same(sink.events.filter((event) => event.startsWith('p2:')), ['p2:b1'])
})
