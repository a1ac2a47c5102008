// Runs the tap suite, passes its output through, and ends with the plain line CI reads:
// "N passed, N failed, N skipped" (tap's own summary is "# { total, pass, fail }").
import { spawn } from 'node:child_process'

const child = spawn('npx', ['tap', ...process.argv.slice(2)], { stdio: ['ignore', 'pipe', 'inherit'] })
let tail = ''
child.stdout.on('data', (chunk) => {
  process.stdout.write(chunk)
  tail = (tail + chunk.toString()).slice(-4096)
})
child.on('close', (code, signal) => {
  const summary = /# \{ total: (\d+)(?:, pass: (\d+))?(?:, fail: (\d+))?(?:, skip: (\d+))?/.exec(tail)
  const failed = summary ? Number(summary[3] ?? 0) : 0
  const passed = summary ? Number(summary[2] ?? 0) : 0
  const skipped = summary ? Number(summary[4] ?? 0) : 0
  const crashed = !summary || (code !== 0 && failed === 0)
  console.log(`${passed} passed, ${failed + (crashed ? 1 : 0)} failed, ${skipped} skipped`)
  process.exit(code ?? (signal ? 1 : 0))
})
