// Module hooks for ./typescript-loader.mjs: resolve `./file.js` to `./file.ts` or `./file.tsx` (the NodeNext imports
// the sources write) and compile .ts/.tsx with esbuild, one file at a time, with tsconfig.json's options (ES2022
// class fields, the automatic JSX runtime) and an inline source map, so stack traces and coverage point at the
// TypeScript lines. Synchronous, so that the same functions serve module.registerHooks (in the loading thread) and
// module.register (in a loader worker, where a hook may return a value or a promise).
//
// Each test file runs in a process of its own, and each loads most of lib/ and test/helpers/: compiled output is
// kept on disk (node_modules/.cache/pov-realtime-tests/), named by a hash of everything that shapes it (the source,
// its path for the source map, tsconfig.json, esbuild's version), so a file is compiled once for the whole run and
// again only when it changes, and a process whose files are all cached never loads esbuild at all.
import { createHash } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
const require = createRequire(import.meta.url)
const tsconfigRaw = readFileSync(join(root, 'tsconfig.json'), 'utf8')
const esbuildVersion = require('esbuild/package.json').version
const cacheDir = join(root, 'node_modules', '.cache', 'pov-realtime-tests')
const SOURCE_FOR = { '.js': ['.ts', '.tsx'], '.mjs': ['.mts'] }

export function resolve (specifier, context, nextResolve) {
  const parent = context.parentURL
  const extension = /(\.m?js)$/.exec(specifier)?.[1]
  if (extension && parent?.startsWith('file:') && !parent.includes('/node_modules/') && /^\.{1,2}\//.test(specifier)) {
    const url = new URL(specifier, parent)
    if (!existsSync(url)) {
      for (const source of SOURCE_FOR[extension]) {
        const candidate = new URL(url.href.slice(0, -extension.length) + source)
        if (existsSync(candidate)) return { url: candidate.href, format: 'module', shortCircuit: true }
      }
    }
  }
  return nextResolve(specifier, context)
}

export function load (url, context, nextLoad) {
  const loader = /\.m?(tsx?)$/.exec(url)?.[1]
  if (!loader || !url.startsWith('file:')) return nextLoad(url, context)
  const file = fileURLToPath(url)
  const source = readFileSync(file, 'utf8')
  const key = createHash('sha256').update(`${esbuildVersion}\0${file}\0${tsconfigRaw}\0${source}`).digest('hex')
  const cached = join(cacheDir, `${key}.js`)
  let code
  try {
    code = readFileSync(cached, 'utf8')
  } catch {
    code = compile(source, loader, file, cached)
  }
  return { format: 'module', source: code, shortCircuit: true }
}

function compile (source, loader, file, cached) {
  // Required on a miss only: loading esbuild and starting its service is most of what a compile costs.
  const { code } = require('esbuild').transformSync(source, {
    loader, format: 'esm', target: 'node20', sourcemap: 'inline', sourcefile: file, tsconfigRaw
  })
  // Written under a name of its own, then renamed: processes running side by side never read half a file.
  mkdirSync(cacheDir, { recursive: true })
  const partial = `${cached}.${process.pid}.${Math.random().toString(36).slice(2)}`
  writeFileSync(partial, code)
  try {
    renameSync(partial, cached)
  } catch {}
  return code
}
