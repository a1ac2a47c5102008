/**
 * `checkSubscription` on its own: what it answers without `authorizeSubscription`, and that it fails closed (never
 * calling the app) when a socket has no view of its upgrade request, which the route keeps only when that option is set.
 */
import t from 'tap'
import { checkSubscription } from '../lib/auth/subscription-check.js'

const user = { userId: 'u1', email: 'u1@example.com', role: 'member' }
const view = Object.freeze({ id: 'req-1', ip: '127.0.0.1', url: '/ws', headers: Object.freeze({ host: 'example.com' }) })

t.test('without authorizeSubscription any authenticated user may watch, with or without a view', async (t) => {
  t.same(await checkSubscription({ authorizeSubscription: undefined, authorizeTimeout: 1000 }, user, 'p1', undefined), { verdict: 'granted' })
  t.same(await checkSubscription({ authorizeSubscription: undefined, authorizeTimeout: 1000 }, user, 'p1', view), { verdict: 'granted' })
})

t.test('with authorizeSubscription the app gets the view; without one the check fails closed and the app is not asked', async (t) => {
  const asked: unknown[] = []
  const authorizeSubscription = (_user: unknown, povId: string, request: unknown) => {
    asked.push([povId, request])
    return true
  }
  t.same(await checkSubscription({ authorizeSubscription, authorizeTimeout: 1000 }, user, 'p1', view), { verdict: 'granted' })
  t.same(asked, [['p1', view]], 'the app saw the PoV and the view')
  const answer = await checkSubscription({ authorizeSubscription, authorizeTimeout: 1000 }, user, 'p2', undefined)
  t.equal(answer.verdict, 'failed')
  t.match(answer.error, { message: /no view of the upgrade request/ })
  t.equal(asked.length, 1, 'the app was not asked without a view')
})
