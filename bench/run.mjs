// Entry of `npm run bench` (after `npm run build`): compiles the benchmark's TypeScript with esbuild into
// node_modules/.cache (type-only, no bundling; the plugin itself is imported from dist/), then runs it.
import { mkdir, readdir, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { build } from 'esbuild'

const benchDir = dirname(fileURLToPath(import.meta.url))
const root = dirname(benchDir)
const outdir = join(root, 'node_modules', '.cache', 'fastify-pov-realtime-bench')

const sources = (await readdir(benchDir, { recursive: true })).filter((file) => file.endsWith('.ts')).map((file) => join(benchDir, file))
await build({ entryPoints: sources, outdir, outbase: benchDir, platform: 'node', format: 'esm', target: 'node20', logLevel: 'warning' })
// Outside the package scope: tell Node the compiled files are ES modules.
await mkdir(outdir, { recursive: true })
await writeFile(join(outdir, 'package.json'), '{ "type": "module" }\n')

const { main } = await import(pathToFileURL(join(outdir, 'main.js')).href)
await main(root, process.argv.slice(2))
