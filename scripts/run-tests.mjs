// Runs the tap suite, or one part of it, passes tap's output through, and ends with the plain line CI reads:
// "N passed, N failed, N skipped, N todo", summed over every tap run it made (tap's own summary is "# { total, … }").
//
//   node scripts/run-tests.mjs [all|unit|package|redis|e2e|load] [tap options…]
//
// Parts, by folder: unit = test/*.test.ts and test/hooks/ (no Redis, no browser), package = test/package/ (the
// package as it ships: the built entry points, the tarball, a strict consumer's type-check, the README's snippets,
// the supported Node range, the dependency audit; slow by nature: npm pack, tsc, child processes), redis =
// test/redis/, e2e = test/e2e/ (Chromium), load = test/load/ (floods, leaks, soak, bench and fuzz smoke runs). The load files always
// run apart, after the rest, one file at a time, each under its own time limit: they measure delivery under load, so
// sharing the two cores with other test files would make them slow and flaky.
// `all` (the default: npm test, CI) runs every file and checks coverage, summed over both runs, against the
// thresholds in package.json's "tap" section; a part runs without coverage, which it could never reach alone.
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir, readdir, rename, rm } from 'node:fs/promises'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
const tapBin = join(root, 'node_modules', 'tap', 'dist', 'esm', 'run.mjs')
const coverageDir = join(root, '.tap', 'coverage')
const keptCoverageDir = join(root, '.tap', 'coverage-kept')

// Seconds each load file may take alone: two to four times what it took on a 2-core machine busy with other work
// (bench-smoke: 139 s, bench-sharding 15–25, floods 15, fuzz 8, leaks 25, reconnect-storm 62, shutdown-load 7, slow-consumer-load 17,
// soak-smoke 14), so that a regression that hangs one fails it soon instead of after tap's general 120 s.
// bench-smoke's is just above the deadline the file sets itself, so that its own failure, with the benchmark's
// output, comes first.
const LOAD_LIMITS = {
  'test/load/bench-smoke.test.ts': 245,
  'test/load/bench-sharding.test.ts': 120,
  'test/load/floods.test.ts': 45,
  'test/load/fuzz.test.ts': 45,
  'test/load/idle-memory.test.ts': 120,
  'test/load/leaks.test.ts': 60,
  'test/load/reconnect-storm.test.ts': 180,
  'test/load/shutdown-load.test.ts': 30,
  'test/load/slow-consumer-load.test.ts': 60,
  'test/load/soak-smoke.test.ts': 60
}
const LOAD_LIMIT_DEFAULT = 60

const PARTS = {
  unit: (file) => !file.includes('/', 'test/'.length) || file.startsWith('test/hooks/'),
  package: (file) => file.startsWith('test/package/'),
  redis: (file) => file.startsWith('test/redis/'),
  e2e: (file) => file.startsWith('test/e2e/'),
  load: (file) => file.startsWith('test/load/')
}

const [part = 'all', ...args] = process.argv.slice(2)
if (part !== 'all' && !(part in PARTS)) {
  console.error(`unknown part '${part}': use all, ${Object.keys(PARTS).join(', ')}`)
  process.exit(2)
}

/** Every test file tap's "include" globs (test/**\/*.test.ts, *.test.tsx) would find, relative to the root. */
async function testFiles () {
  const entries = await readdir(join(root, 'test'), { recursive: true, withFileTypes: true })
  return entries
    // test/react18/ has a node_modules of its own (React 18.3, scripts/test-react18.mjs): no test of ours in there.
    .filter((entry) => entry.isFile() && /\.test\.tsx?$/.test(entry.name) && !(entry.parentPath ?? entry.path).includes('node_modules'))
    .map((entry) => relative(root, join(entry.parentPath ?? entry.path, entry.name)).split('\\').join('/'))
    .sort()
}

let current
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => { current?.kill(signal); process.exit(1) })

/** One tap run; resolves its exit code and the counts of its closing "# { total: …, pass: … }" comment, if any. */
function runTap (args) {
  return new Promise((resolve) => {
    current = spawn(process.execPath, [tapBin, ...args], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] })
    let tail = ''
    current.stdout.on('data', (chunk) => {
      process.stdout.write(chunk)
      tail = (tail + chunk.toString()).slice(-4096)
    })
    current.on('close', (code, signal) => {
      current = undefined
      resolve({ code: code ?? (signal ? 1 : 0), counts: parseCounts(tail) })
    })
  })
}

/** tap prints only the non-zero counts, in the order total, pass, fail, todo, skip: read them by name. */
function parseCounts (output) {
  const summaries = [...output.matchAll(/^# \{ (total: \d+[^}]*)\}/gm)]
  if (summaries.length === 0) return undefined
  const counts = { total: 0, pass: 0, fail: 0, todo: 0, skip: 0 }
  for (const [, name, value] of summaries.at(-1)[1].matchAll(/(\w+): (\d+)/g)) counts[name] = Number(value)
  return counts
}

/** Moves the coverage of the run that just ended aside: the next tap run starts by deleting .tap/coverage. */
async function keepCoverage () {
  if (!existsSync(coverageDir)) return
  await mkdir(keptCoverageDir, { recursive: true })
  for (const name of await readdir(coverageDir)) await rename(join(coverageDir, name), join(keptCoverageDir, name))
}

const totals = { pass: 0, fail: 0, skip: 0, todo: 0 }
let failed = false
function add ({ code, counts }, what) {
  if (counts) for (const key of Object.keys(totals)) totals[key] += counts[key]
  // A run that ended without its summary, or in error with no failed test, broke: count it as one failure.
  if (!counts || (code !== 0 && counts.fail === 0)) {
    console.log(`# ${what} ended with code ${code}${counts ? '' : ' and no summary'}`)
    totals.fail += 1
  }
  if (code !== 0) failed = true
}

const coverage = part === 'all'
// The unit files spend most of their time waiting (timers, token expiries, loopback round trips): their test processes
// take about three minutes one after another but under one of CPU, so six at a time still leave the two cores room
// (measured on 2 cores shared with other work: 50–68 s with six, 53–83 s with four). The full run keeps tap's default
// of one per core, so that the Redis, browser and timing-sensitive files never share a core with more than one other.
const UNIT_JOBS = 6
const coverageArgs = coverage ? ['--allow-incomplete-coverage', '--coverage-report=none'] : ['--disable-coverage']
// Test files among the arguments narrow the part to them (npm run test:unit -- test/options.test.ts); the rest go to tap.
const named = args.filter((arg) => /\.test\.tsx?$/.test(arg)).map((arg) => arg.replace(/^\.\//, ''))
const tapArgs = args.filter((arg) => !/\.test\.tsx?$/.test(arg))
if (part === 'unit' && !tapArgs.some((arg) => /^(-j|--jobs)/.test(arg))) tapArgs.unshift(`--jobs=${UNIT_JOBS}`)
const files = (await testFiles())
  .filter(part === 'all' ? () => true : PARTS[part])
  .filter((file) => named.length === 0 || named.includes(file))
if (files.length === 0) {
  console.error(`no test file of part '${part}' matches ${named.join(', ')}`)
  process.exit(2)
}
const loadFiles = files.filter(PARTS.load)
const mainFiles = files.filter((file) => !PARTS.load(file))

if (coverage) await rm(keptCoverageDir, { recursive: true, force: true })
if (mainFiles.length) {
  add(await runTap([...coverageArgs, ...tapArgs, ...mainFiles]), 'the tap run')
  if (coverage) await keepCoverage()
}
for (const file of loadFiles) {
  const limit = LOAD_LIMITS[file] ?? LOAD_LIMIT_DEFAULT
  console.log(`\n# ${file}, alone (limit ${limit} s)`)
  add(await runTap([...coverageArgs, '--jobs=1', `--timeout=${limit}`, ...tapArgs, file]), file)
  if (coverage) await keepCoverage()
}

if (coverage) {
  // Coverage of both runs together, against package.json's thresholds (tap report exits 1 below them).
  await rm(coverageDir, { recursive: true, force: true })
  if (existsSync(keptCoverageDir)) await rename(keptCoverageDir, coverageDir)
  const { code } = await runTap(['report', 'text'])
  if (code !== 0) {
    console.log('# coverage is below the thresholds in package.json\'s "tap" section')
    totals.fail += 1
    failed = true
  }
}

console.log(`${totals.pass} passed, ${totals.fail} failed, ${totals.skip} skipped, ${totals.todo} todo`)
process.exit(failed ? 1 : 0)
