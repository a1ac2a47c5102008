/**
 * What `fastify-pov-realtime/hooks`, `/client` and `/testing` ship may import react and each other only: never
 * fastify, ws, Node built-ins or the server's `lib/` (so they bundle for a browser); the client core
 * (`hooks/client/`) does not import react either. Checked on the built files (`npm run build`).
 */
import { readFile, readdir } from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'
import t from 'tap'

const root = fileURLToPath(new URL('../../', import.meta.url))
const distHooks = path.join(root, 'dist/hooks')
const distCore = path.join(distHooks, 'client')
const wireConstants = path.join(root, 'dist/types/wire-constants.js')
const ALLOWED_PACKAGES = new Set(['react', 'react/jsx-runtime'])

/** The module specifiers a built ES module imports or re-exports (comments removed first). */
function importsOf (source: string): string[] {
  const code = source.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '')
  const patterns = [
    /\bfrom\s*['"]([^'"]+)['"]/g,
    /\bimport\s*['"]([^'"]+)['"]/g,
    /\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g,
    /\brequire\s*\(\s*['"]([^'"]+)['"]\s*\)/g
  ]
  return patterns.flatMap((pattern) => [...code.matchAll(pattern)].map((match) => match[1]!))
}

async function builtFiles (): Promise<string[]> {
  const entries = await readdir(distHooks, { recursive: true, withFileTypes: true })
  return entries.filter((e) => e.isFile() && e.name.endsWith('.js')).map((e) => path.join(e.parentPath, e.name))
}

t.test('the built hooks and test doubles import only react, each other and the wire constants', async (t) => {
  const files = await builtFiles().catch(() => [])
  t.ok(files.length >= 20, `dist/hooks is built (${files.length} files; run npm run build)`)
  t.ok(files.some((f) => f.endsWith(path.join('testing', 'index.js'))), 'the test doubles are built')
  const offending: string[] = []
  for (const file of files) {
    for (const specifier of importsOf(await readFile(file, 'utf8'))) {
      if (ALLOWED_PACKAGES.has(specifier)) continue
      const target = specifier.startsWith('.') ? path.resolve(path.dirname(file), specifier) : undefined
      if (target && (target.startsWith(distHooks + path.sep) || target === wireConstants)) continue
      offending.push(`${path.relative(root, file)} imports ${specifier}`)
    }
  }
  t.same(offending, [], 'nothing else')
  t.same(importsOf(await readFile(wireConstants, 'utf8')), [], 'the wire constants import nothing themselves')
})

t.test('the built client core imports nothing but itself and the wire constants: no react', async (t) => {
  const files = (await builtFiles().catch(() => [])).filter((file) => file.startsWith(distCore + path.sep))
  t.ok(files.length >= 20, `dist/hooks/client is built (${files.length} files)`)
  const offending: string[] = []
  for (const file of files) {
    for (const specifier of importsOf(await readFile(file, 'utf8'))) {
      const target = specifier.startsWith('.') ? path.resolve(path.dirname(file), specifier) : undefined
      if (target && (target.startsWith(distCore + path.sep) || target === wireConstants)) continue
      offending.push(`${path.relative(root, file)} imports ${specifier}`)
    }
  }
  t.same(offending, [], 'nothing else')
})

t.test('the scan would catch a forbidden import', async (t) => {
  t.same(importsOf("import { WebSocket } from 'ws'\nexport * from \"../../lib/options.js\"\nconst fs = await import('node:fs')"),
    ['ws', '../../lib/options.js', 'node:fs'])
  t.same(importsOf("/** import x from 'fastify' */\n// import 'node:net'\nimport { useState } from 'react'"), ['react'])
})

t.test('the entry points bundle for the browser with react as the only outside dependency', async (t) => {
  for (const entry of ['hooks/index.ts', 'hooks/client/index.ts', 'hooks/testing/index.ts']) {
    const result = await build({
      entryPoints: [path.join(root, entry)],
      bundle: true,
      write: false,
      platform: 'browser',
      format: 'esm',
      external: ['react', 'react/jsx-runtime'],
      metafile: true,
      absWorkingDir: root,
      logLevel: 'silent'
    })
    const inputs = Object.keys(result.metafile.inputs)
    const outside = inputs.filter((input) => !input.startsWith('hooks/') && input !== 'types/wire-constants.ts')
    t.same(outside, [], `${entry}: every bundled file is from hooks/ (or the wire constants)`)
  }
})

t.test('the client core bundles with no outside dependency at all', async (t) => {
  const result = await build({
    entryPoints: [path.join(root, 'hooks/client/index.ts')],
    bundle: true,
    write: false,
    platform: 'browser',
    format: 'esm',
    metafile: true,
    absWorkingDir: root,
    logLevel: 'silent'
  })
  const inputs = Object.keys(result.metafile.inputs)
  t.ok(inputs.length >= 20, `the core is bundled whole (${inputs.length} files)`)
  t.same(inputs.filter((input) => !input.startsWith('hooks/client/') && input !== 'types/wire-constants.ts'), [],
    'every bundled file is from hooks/client/ (or the wire constants)')
})
