// Runs the TypeScript test files under tap (package.json "tap" → "node-arg"): installs ./typescript-loader-hooks.mjs,
// which compiles each .ts/.tsx file with esbuild, in place of tap's ts-node loader, which the "test-env"
// TAP_TYPE_STRIP_ONLY=1 beside it turns off. ts-node loads the TypeScript compiler into every test process and
// compiles through it: about 2.5 s of CPU per test file here. Type checking is `npm run typecheck`'s job.
//
// Every test file is a process of its own that loads ~1,200 modules, so start-up is most of what a short test file
// costs. Two things cut it, measured per file on Node 24 (min of 6, CPU seconds): hooks run in the loading thread
// (module.registerHooks) instead of a loader worker that every import crosses (2.2 → 1.7), and V8's compile cache
// for node_modules (−0.1). registerHooks is used where tap's own @tapjs/processinfo trusts it (Node ≥ 24.13), and
// the compile cache only when no coverage is being taken, so that coverage never depends on cached code.
import module from 'node:module'
import { fileURLToPath } from 'node:url'
import * as hooks from './typescript-loader-hooks.mjs'

const [major, minor] = process.versions.node.split('.').map(Number)
const syncHooksAreSound = typeof module.registerHooks === 'function' && (major > 25 || (major === 25 && minor >= 1) || (major === 24 && minor >= 13))

if (!process.env.NODE_V8_COVERAGE) {
  module.enableCompileCache?.(fileURLToPath(new URL('../node_modules/.cache/node-compile', import.meta.url)))
}
if (syncHooksAreSound) module.registerHooks(hooks)
else module.register('./typescript-loader-hooks.mjs', import.meta.url)
