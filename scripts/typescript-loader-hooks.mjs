// Module hooks for ./typescript-loader.mjs: resolve `./file.js` to `./file.ts` or `./file.tsx` (the NodeNext imports
// the sources write) and compile .ts/.tsx with esbuild, one file at a time, with tsconfig.json's options (ES2022
// class fields, the automatic JSX runtime) and an inline source map, so stack traces and coverage point at the
// TypeScript lines.
import { existsSync, readFileSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { transform } from 'esbuild'

const tsconfigRaw = readFileSync(new URL('../tsconfig.json', import.meta.url), 'utf8')
const SOURCE_FOR = { '.js': ['.ts', '.tsx'], '.mjs': ['.mts'] }

export async function resolve (specifier, context, nextResolve) {
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

export async function load (url, context, nextLoad) {
  const loader = /\.m?(tsx?)$/.exec(url)?.[1]
  if (!loader || !url.startsWith('file:')) return nextLoad(url, context)
  const file = fileURLToPath(url)
  const { code } = await transform(await readFile(file, 'utf8'), {
    loader, format: 'esm', target: 'node20', sourcemap: 'inline', sourcefile: file, tsconfigRaw
  })
  return { format: 'module', source: code, shortCircuit: true }
}
