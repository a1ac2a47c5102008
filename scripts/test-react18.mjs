// `npm run test:react18`: the hook suites (test/hooks/) on React 18.3, the lowest React the peer range (react >=18)
// promises; `npm test` runs them on the package's own React 19. React 18.3.1, its react-dom and the matching
// @testing-library/react live in test/react18/ (its own package.json and lockfile, installed here on first use or
// when they changed); test/react18/loader.mjs makes every import of them in the tests, the hooks and dist/ resolve
// there. Ends with scripts/run-tests.mjs's "N passed, N failed, N skipped, N todo" line.
//
//   node scripts/test-react18.mjs [test files…]
import { spawnSync } from 'node:child_process'
import { existsSync, readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
const side = join(root, 'test', 'react18')
const wanted = JSON.parse(readFileSync(join(side, 'package.json'), 'utf8')).dependencies

/** Whether test/react18/node_modules holds exactly the versions its package.json names. */
function installed () {
  return Object.entries(wanted).every(([name, version]) => {
    const manifest = join(side, 'node_modules', name, 'package.json')
    return existsSync(manifest) && JSON.parse(readFileSync(manifest, 'utf8')).version === version
  })
}

if (!installed()) {
  console.log('# installing React 18.3 into test/react18/ (npm ci)')
  const { status } = spawnSync('npm', ['ci', '--no-audit', '--no-fund', '--prefix', side], { stdio: 'inherit' })
  if (status !== 0 || !installed()) {
    console.log(`# could not install test/react18/'s packages (npm ci exited with ${status})`)
    console.log('0 passed, 1 failed, 0 skipped, 0 todo')
    process.exit(1)
  }
}

const named = process.argv.slice(2)
const files = named.length > 0
  ? named
  : readdirSync(join(root, 'test', 'hooks')).filter((name) => /\.test\.tsx?$/.test(name)).sort().map((name) => `test/hooks/${name}`)
// tap replaces its configured node-arg list with the command line's, so package.json's entries are named again.
const { status } = spawnSync(process.execPath, [
  join(root, 'scripts', 'run-tests.mjs'), 'unit',
  '--node-arg=--require=./scripts/processinfo-exclude.cjs', '--node-arg=--import=./scripts/typescript-loader.mjs',
  '--node-arg=--import=./test/react18/loader.mjs',
  ...files
], { cwd: root, stdio: 'inherit', env: { ...process.env, POV_REALTIME_REACT: wanted.react } })
process.exit(status ?? 1)
