// Supply chain check for CI: `npm audit --omit=dev` (what an app installs with this package) must report no high or
// critical advisory. Exits 1 when it does, or when npm's answer cannot be read. When the registry's audit endpoint
// cannot be reached or refuses the request (some registries and mirrors answer 405 to its POST), it says so and
// exits 0: that is the exception SECURITY.md documents, not a pass.
//
//   node scripts/audit-production.mjs               runs npm audit --omit=dev --json
//   node scripts/audit-production.mjs --from <file> judges a saved `npm audit --json` answer instead (for its tests)
import { execFile } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { parseArgs } from 'node:util'

const BLOCKING = ['high', 'critical']
const AUDIT_TIMEOUT_MS = 120_000

/** npm's answer: its JSON on stdout (also when it exits 1 for advisories found or for an error). */
function runNpmAudit () {
  return new Promise((resolve) => {
    execFile('npm', ['audit', '--omit=dev', '--json'], { timeout: AUDIT_TIMEOUT_MS, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      resolve(stdout || `${err?.message ?? ''}\n${stderr}`)
    })
  })
}

/** The verdict on one `npm audit --json` answer: `ok` false for a blocking advisory or an answer that cannot be judged. */
function judge (text) {
  let answer
  try {
    answer = JSON.parse(text)
  } catch {
    return { ok: false, message: `npm audit gave no JSON answer:\n${text.trim().slice(0, 2000)}` }
  }
  const counts = answer?.metadata?.vulnerabilities
  if (counts && typeof counts === 'object') {
    const blocking = Object.values(answer.vulnerabilities ?? {}).filter((v) => BLOCKING.includes(v.severity))
    const summary = ['critical', 'high', 'moderate', 'low', 'info'].map((severity) => `${counts[severity] ?? 0} ${severity}`).join(', ')
    if (blocking.length === 0 && BLOCKING.every((severity) => !counts[severity])) {
      return { ok: true, message: `npm audit --omit=dev: no high or critical advisory (${summary})` }
    }
    const lines = blocking.map((v) => {
      const titles = (v.via ?? []).filter((via) => typeof via === 'object').map((via) => `${via.title} ${via.url ?? ''}`.trim())
      return `  ${v.name} (${v.severity}, ${v.range ?? 'any version'}): ${titles.join('; ') || `through ${(v.via ?? []).join(', ')}`}`
    })
    return { ok: false, message: `npm audit --omit=dev: high or critical advisories (${summary}):\n${lines.join('\n')}` }
  }
  // The audit endpoint answered with an HTTP error, or could not be reached: the check could not run. Any other
  // error (no lockfile, a broken install) is this project's to fix, and fails.
  const httpError = typeof answer?.statusCode === 'number'
  const unreachable = /^request to \S+\/-\/npm\/v1\/security\/\S+ failed/.test(answer?.message ?? '')
  if (httpError || unreachable) {
    return {
      ok: true,
      message: `npm audit --omit=dev: NOT CHECKED, the audit endpoint is unavailable (${answer.message}); see SECURITY.md, "Supply chain"`
    }
  }
  return { ok: false, message: `npm audit --omit=dev could not run:\n${text.trim().slice(0, 2000)}` }
}

const { values } = parseArgs({ options: { from: { type: 'string' } } })
const text = values.from ? await readFile(values.from, 'utf8') : await runNpmAudit()
const verdict = judge(text)
console.log(verdict.message)
process.exitCode = verdict.ok ? 0 : 1
