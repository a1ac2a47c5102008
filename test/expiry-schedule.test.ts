/**
 * Every socket's token expiry on one timer (lib/auth/expiry-schedule.ts): each expires once, in order, not before its
 * time; a cancelled one never does; a rescheduled one moves. Real timers, short delays.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { ExpirySchedule, type Expiring } from '../lib/auth/expiry-schedule.js'

/**
 * Waits, after the fixed sleep that lets every expiry pass, until nothing is left on the schedule (5 s at most): on a
 * busy machine the timer fires late, and the test is about order and once, not about the timer's punctuality.
 */
async function untilDrained (schedule: ExpirySchedule): Promise<void> {
  for (let waited = 0; schedule.size > 0 && waited < 5000; waited += 5) await sleep(5)
}

class Item implements Expiring {
  heapIndex = -1
  expiredAt: number | undefined
  constructor (readonly name: string, public expiresAt: number, private readonly log: string[]) {}
  expire (): void {
    this.expiredAt = Date.now()
    this.log.push(this.name)
  }
}

t.test('items expire in order of their expiry, none early, a cancelled one never', async (t) => {
  const schedule = new ExpirySchedule()
  const log: string[] = []
  const start = Date.now()
  // Shuffled delays: the heap must order them.
  const delays = [90, 30, 150, 60, 120, 10, 75, 45]
  const items = delays.map((delay) => new Item(`d${delay}`, start + delay, log))
  for (const item of items) schedule.schedule(item)
  t.equal(schedule.size, 8)
  schedule.cancel(items[2]!) // d150
  schedule.cancel(items[2]!) // twice is harmless
  const moved = items[0]! // d90 -> 20
  moved.expiresAt = start + 20
  schedule.schedule(moved)
  t.equal(schedule.size, 7)
  await sleep(200)
  await untilDrained(schedule)
  t.same(log, ['d10', 'd90', 'd30', 'd45', 'd60', 'd75', 'd120'], 'in expiry order, the moved one at its new time')
  for (const item of items) {
    if (item.expiredAt !== undefined) t.ok(item.expiredAt >= item.expiresAt, `${item.name} not before its time`)
  }
  t.equal(items[2]!.expiredAt, undefined, 'the cancelled one never expired')
  t.equal(schedule.size, 0)
  t.ok(items.every((item) => item.heapIndex === -1), 'nothing left on the schedule')
})

t.test('an expiry already past fires on the next turn; clear() forgets everything', async (t) => {
  const schedule = new ExpirySchedule()
  const log: string[] = []
  schedule.schedule(new Item('past', Date.now() - 1000, log))
  await sleep(5)
  t.same(log, ['past'])
  const later = new Item('later', Date.now() + 20, log)
  schedule.schedule(later)
  schedule.clear()
  await sleep(40)
  t.same(log, ['past'], 'a cleared schedule fires nothing')
  t.equal(later.heapIndex, -1)
})

t.test('many items with random expiries, half cancelled: the rest expire in order', async (t) => {
  const schedule = new ExpirySchedule()
  const log: string[] = []
  const start = Date.now()
  const items = Array.from({ length: 300 }, (_, i) => new Item(String(i), start + 5 + Math.floor(Math.random() * 60), log))
  for (const item of items) schedule.schedule(item)
  for (const item of items.filter((_, i) => i % 2 === 1)) schedule.cancel(item)
  await sleep(120)
  await untilDrained(schedule)
  const expected = items.filter((_, i) => i % 2 === 0)
  t.equal(log.length, expected.length, 'every item left expired, once')
  const times = log.map((name) => items[Number(name)]!.expiresAt)
  t.ok(times.every((at, i) => i === 0 || at >= times[i - 1]!), 'in order of expiry')
})
