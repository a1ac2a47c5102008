// Stops `npm start`, `npm test` and the other scripts at once, with one clear message, when the Node running them is
// older than package.json's "engines" allows: on Node 20 (end of life, still many machines' default) the build and the
// tests would otherwise fail later with errors that do not point at the cause. Plain JavaScript that any Node parses.
//
//   node scripts/check-node.mjs          exits 0 on a supported Node, 1 with the message otherwise
import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

/** The lowest version a `>=X[.Y[.Z]]` range admits, as [X, Y, Z]; the only form this package's "engines" uses. */
export function floorOf (range) {
  const match = /^>=\s*v?(\d+)(?:\.(\d+))?(?:\.(\d+))?$/.exec(range.trim())
  if (!match) throw new Error(`engines.node '${range}' is not of the form '>=X.Y.Z' that scripts/check-node.mjs reads`)
  return [Number(match[1]), Number(match[2] ?? 0), Number(match[3] ?? 0)]
}

/** undefined when `version` ('v22.13.0') satisfies `range` ('>=22.13'), else the message that says what to do. */
export function nodeVersionProblem (version, range) {
  const floor = floorOf(range)
  const actual = version.replace(/^v/, '').split('.').map(Number)
  for (let i = 0; i < 3; i++) {
    if (actual[i] > floor[i]) return undefined
    if (actual[i] < floor[i]) {
      return [
        `fastify-pov-realtime needs Node ${range} (package.json "engines"); this is Node ${version}.`,
        'Node 22 and 24 are the supported LTS lines. Switch with your version manager (nvm install 22),',
        'or run the same command under Node 22 from the npm registry, without installing it:',
        '  npx -y -p node@22 -- npm install',
        '  npx -y -p node@22 -- npm test        (or: npm start)'
      ].join('\n')
    }
  }
  return undefined
}

if (process.argv[1] && fileURLToPath(import.meta.url) === resolve(process.argv[1])) {
  const { engines } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'))
  const problem = nodeVersionProblem(process.version, engines.node)
  if (problem) {
    console.error(problem)
    process.exit(1)
  }
}
