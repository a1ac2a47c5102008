/**
 * The supported Node versions, stated once in package.json's "engines" and kept true: every package of the locked
 * dependency tree (production and development) accepts the lowest version it admits and the newest LTS line, and the
 * floor is no higher than the tree needs. On an older Node (20, the default of many machines) `npm start` and
 * `npm test` stop at once with a message that says what to do (scripts/check-node.mjs), not with a build error.
 */
import { execFile } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import t from 'tap'
// @ts-expect-error: a plain .mjs script, run by npm before the scripts that need a supported Node
import { floorOf, nodeVersionProblem } from '../../scripts/check-node.mjs'

const root = fileURLToPath(new URL('../..', import.meta.url))
// semver comes with the development tree (eslint, tap, typescript-eslint); resolved from the package root.
const semver = createRequire(`${root}package.json`)('semver') as { satisfies: (version: string, range: string) => boolean }
const problemOf = nodeVersionProblem as (version: string, range: string) => string | undefined

interface LockedPackage { version?: string, engines?: { node?: string } | string[] }

async function packageJson (): Promise<{ engines: { node: string }, scripts: Record<string, string> }> {
  return JSON.parse(await readFile(`${root}package.json`, 'utf8'))
}

/** Every locked package that states engines.node, by name@version. */
async function lockedEngines (): Promise<Array<{ name: string, node: string }>> {
  const lock = JSON.parse(await readFile(`${root}package-lock.json`, 'utf8')) as { packages: Record<string, LockedPackage> }
  const found: Array<{ name: string, node: string }> = []
  for (const [path, entry] of Object.entries(lock.packages)) {
    if (path === '' || !entry.engines || Array.isArray(entry.engines) || !entry.engines.node) continue
    found.push({ name: `${path.replace(/^.*node_modules\//, '')}@${entry.version}`, node: entry.engines.node })
  }
  return found
}

t.test('every locked package accepts the lowest Node that "engines" admits, and Node 24', async (t) => {
  const { engines } = await packageJson()
  const floor = (floorOf(engines.node) as number[]).join('.')
  const packages = await lockedEngines()
  t.ok(packages.length > 50, `the lockfile states engines for ${packages.length} packages`)
  const refusing = (version: string): string[] =>
    packages.filter(({ node }) => !semver.satisfies(version, node)).map(({ name, node }) => `${name} (${node})`)
  t.same(refusing(floor), [], `every package accepts Node ${floor}`)
  t.same(refusing('24.0.0'), [], 'every package accepts Node 24.0.0')
  // The floor is tight: one patch line lower, some package of the tree refuses (so "engines" is not stricter than needed).
  const [major, minor] = floorOf(engines.node) as number[]
  t.not(refusing(`${major}.${minor - 1}.99`).length, 0, `some package refuses Node ${major}.${minor - 1}`)
  t.match(refusing('20.19.0').join(', '), /cookie@2/, 'Node 20 is out: cookie@2, under @fastify/cookie 11, needs Node 22')
})

t.test('the lockfile states the same "engines" as package.json, so an install leaves it as it is', async (t) => {
  const { engines } = await packageJson()
  const lock = JSON.parse(await readFile(`${root}package-lock.json`, 'utf8')) as { packages: Record<string, LockedPackage> }
  t.same(lock.packages['']?.engines, engines, 'package-lock.json\'s root entry (npm install rewrites it when it differs)')
})

t.test('on an unsupported Node, the check says which Node is needed and how to run under it', async (t) => {
  const problem = problemOf('v20.20.2', '>=22.13')
  t.match(problem, /needs Node >=22\.13 .*this is Node v20\.20\.2/)
  t.match(problem, /npx -y -p node@22 -- npm test/)
  t.match(problemOf('v22.12.0', '>=22.13'), /this is Node v22\.12\.0/)
  t.equal(problemOf('v22.13.0', '>=22.13'), undefined)
  t.equal(problemOf('v22.23.5', '>=22.13'), undefined)
  t.equal(problemOf('v24.0.0', '>=22.13'), undefined)
  t.throws(() => problemOf('v24.0.0', '^22 || >=24'), /not of the form '>=X\.Y\.Z'/, 'a range it cannot read fails loudly')
})

t.test('the scripts a user runs check the Node version before building or testing', async (t) => {
  const { scripts, engines } = await packageJson()
  t.match(scripts.build, /^node scripts\/check-node\.mjs && /, 'build, and so start, test, bench and soak')
  for (const name of ['start', 'test', 'bench', 'soak']) t.match(scripts[name], /^npm run build && /, `${name} builds first`)
  for (const name of ['test:unit', 'test:package', 'test:redis', 'test:e2e', 'test:react18', 'test:load', 'check:defects']) {
    t.match(scripts[name], /^node scripts\/check-node\.mjs && /, name)
  }
  // The script itself, as npm runs it, under this Node: its verdict matches this Node's version.
  const expected = problemOf(process.version, engines.node)
  const { code, stderr } = await new Promise<{ code: number, stderr: string }>((resolve) => {
    execFile(process.execPath, ['scripts/check-node.mjs'], { cwd: root }, (err, _stdout, stderr) =>
      resolve({ code: typeof err?.code === 'number' ? err.code : 0, stderr }))
  })
  t.equal(code, expected ? 1 : 0, `exit code on Node ${process.version}`)
  t.equal(stderr.trim(), expected ?? '')
})
