/**
 * `scripts/audit-production.mjs`, the CI's supply chain check, judged on saved `npm audit --omit=dev --json` answers
 * (test/fixtures/npm-audit): the 405 and the unreachable endpoint are the real answers npm gave on this machine; the
 * reports with advisories are written in npm's audit report format (version 2), since no registry here answers audits.
 */
import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import t from 'tap'

const root = fileURLToPath(new URL('../..', import.meta.url))

function judge (fixture: string): Promise<{ code: number, output: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['scripts/audit-production.mjs', '--from', `test/fixtures/npm-audit/${fixture}.json`], { cwd: root },
      (err, stdout, stderr) => resolve({ code: typeof err?.code === 'number' ? err.code : 0, output: stdout + stderr }))
  })
}

t.test('a high or critical advisory fails the check and names the package and the advisory', async (t) => {
  const { code, output } = await judge('high-advisory')
  t.equal(code, 1)
  t.match(output, /2 high/)
  t.match(output, /ws \(high, 8\.0\.0 - 8\.17\.0\): .*GHSA-3h5v-q93c-6h6q/)
  t.match(output, /@fastify\/websocket \(high, \*\): through ws/)
})

t.test('no advisory, or only moderate ones, passes', async (t) => {
  t.match(await judge('clean'), { code: 0, output: /no high or critical advisory \(0 critical, 0 high, 0 moderate/ })
  t.match(await judge('moderate-only'), { code: 0, output: /no high or critical advisory \(.*1 moderate/ })
})

t.test('an audit endpoint that refuses (405) or cannot be reached is reported as not checked, without failing', async (t) => {
  t.match(await judge('endpoint-405'), {
    code: 0,
    output: /NOT CHECKED, the audit endpoint is unavailable \(405 Method Not Allowed - POST https:\/\/registry\.npmjs\.org\/-\/npm\/v1\/security\/advisories\/bulk\)/
  })
  t.match(await judge('unreachable'), { code: 0, output: /NOT CHECKED, .*ECONNREFUSED/ })
})

t.test('any other failure of npm audit (no lockfile) fails the check', async (t) => {
  t.match(await judge('no-lockfile'), { code: 1, output: /could not run:[\s\S]*ENOLOCK/ })
})
