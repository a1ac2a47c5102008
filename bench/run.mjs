// Entry of `npm run bench` and `npm run soak` (after `npm run build`): compiles the benchmark's TypeScript with esbuild
// into node_modules/.cache (type-only, no bundling; the plugin itself is imported from dist/), then runs the benchmark,
// or the soak when the first argument is `soak`. Each run compiles into a directory of its own, removed at the end, so
// that runs at the same time (the bench and soak smoke tests, or worktrees sharing node_modules) never read each
// other's half-written files.
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { build } from 'esbuild'

const benchDir = dirname(fileURLToPath(import.meta.url))
const root = dirname(benchDir)
const outdir = join(root, 'node_modules', '.cache', 'fastify-pov-realtime-bench', String(process.pid))

const sources = (await readdir(benchDir, { recursive: true })).filter((file) => file.endsWith('.ts')).map((file) => join(benchDir, file))
await build({ entryPoints: sources, outdir, outbase: benchDir, platform: 'node', format: 'esm', target: 'node20', logLevel: 'warning' })
// Outside the package scope: tell Node the compiled files are ES modules.
await mkdir(outdir, { recursive: true })
await writeFile(join(outdir, 'package.json'), '{ "type": "module" }\n')

const [entry, args] = process.argv[2] === 'soak' ? ['soak/main.js', process.argv.slice(3)] : ['main.js', process.argv.slice(2)]
try {
  const { main } = await import(pathToFileURL(join(outdir, entry)).href)
  await main(root, args)
} finally {
  await rm(outdir, { recursive: true, force: true })
}
