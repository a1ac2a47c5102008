/**
 * The benchmark's entry, `bench/run.mjs`, run from the package root as `npm run bench` and `npm run soak` run it: the
 * shared set-up of the bench and soak smoke tests. Both need `dist/` (npm test builds it first) and write a JSON
 * report into a directory of their own.
 */
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

/** The package root, where `bench/run.mjs` resolves the built plugin from. */
export const packageRoot = fileURLToPath(new URL('../../', import.meta.url))

/** Whether `npm run build` has written dist/, which the benchmark imports. */
export function distIsBuilt (): boolean {
  return existsSync(join(packageRoot, 'dist', 'index.js'))
}

/** A fresh temporary directory for a run's report, named after the test (`bench-smoke-…`). */
export function reportDirectory (prefix: string): Promise<string> {
  return mkdtemp(join(tmpdir(), `${prefix}-`))
}

/**
 * Runs `node bench/run.mjs <args>` (a `soak` first argument runs the soak) and resolves its exit code and the last
 * 20 kB of its output; killed after `deadlineMs`, so that a stuck run fails its test with that output.
 */
export function runBench (args: string[], deadlineMs: number): Promise<{ code: number | null, output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['bench/run.mjs', ...args], { cwd: packageRoot, stdio: ['ignore', 'pipe', 'pipe'] })
    let output = ''
    const keep = (chunk: Buffer) => { output = (output + chunk.toString()).slice(-20_000) }
    child.stdout.on('data', keep)
    child.stderr.on('data', keep)
    const timer = setTimeout(() => child.kill('SIGKILL'), deadlineMs)
    child.on('error', reject)
    child.on('close', (code) => {
      clearTimeout(timer)
      resolve({ code, output })
    })
  })
}
