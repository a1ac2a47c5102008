/**
 * The Redis broker's order of stream ids (`compareStreamIds` in `lib/redis/cursor.ts`), on which every feed decides
 * what is a duplicate, what continues the stream and what a resume already holds: by milliseconds, then sequence,
 * each as a decimal number of any length.
 */
import t from 'tap'
import { compareStreamIds } from '../../lib/redis/cursor.js'

const sign = (n: number) => Math.sign(n)

t.test('stream ids order by milliseconds, then by sequence, as numbers of any length; "" comes first', async (t) => {
  const ordered = [
    '', '0-0', '0-1', '9-0', '10-0', '1732540800000-0', '1732540800000-9', '1732540800000-10', '1732540800000-18446744073709551615',
    '1732540800000-18446744073709551616', '1732540800001-0', '99999999999999999999-0'
  ]
  for (const [i, a] of ordered.entries()) {
    for (const [j, b] of ordered.entries()) {
      t.equal(sign(compareStreamIds(a, b)), sign(i - j), `${JSON.stringify(a)} vs ${JSON.stringify(b)}`)
    }
  }
})
