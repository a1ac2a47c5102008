// Runs the TypeScript test files under tap (package.json "tap" → "node-arg"): registers ./typescript-loader-hooks.mjs,
// which compiles each .ts/.tsx file with esbuild, in place of tap's ts-node loader, which the "test-env"
// TAP_TYPE_STRIP_ONLY=1 beside it turns off. ts-node loads the TypeScript compiler into every test process and
// compiles through it: about 2.5 s of CPU per test file here, most of what a test run costs. Type checking is
// `npm run typecheck`'s job, not the test runner's.
import { register } from 'node:module'

register('./typescript-loader-hooks.mjs', import.meta.url)
