/**
 * The package as npm would publish it (`npm pack`), judged as a consumer meets it: what the tarball holds (LICENSE,
 * README, docs, dist with declarations, source maps whose sources ship with them, no script that runs on the
 * consumer's install), what its declarations import (only packages the consumer gets, with types), and a new
 * TypeScript project (strict, `skipLibCheck: false`, the TypeScript default) that type-checks against it using every
 * entry point. The consumer's node_modules links the packages of this checkout except the development-only @types
 * (@types/ws among them: a consumer does not get it), with `preserveSymlinks` so that nothing resolves through this
 * checkout's own node_modules. Needs `npm run build` first; no network.
 */
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, readFile, readdir, realpath, rm, symlink, writeFile } from 'node:fs/promises'
import { builtinModules } from 'node:module'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'

const root = fileURLToPath(new URL('../..', import.meta.url))

interface Run { code: number, stdout: string, stderr: string }
function run (command: string, args: string[], cwd: string): Promise<Run> {
  return new Promise((resolve) => {
    execFile(command, args, { cwd, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) =>
      resolve({ code: typeof err?.code === 'number' ? err.code : err ? 1 : 0, stdout, stderr }))
  })
}

interface PackageJson {
  name: string
  files?: string[]
  scripts?: Record<string, string>
  exports: Record<string, string | { types: string, default: string }>
  dependencies: Record<string, string>
  peerDependencies: Record<string, string>
  types?: string
  typings?: string
}

t.ok(existsSync(path.join(root, 'dist/index.d.ts')), 'dist/ is built (npm run build)')
// A strict check of every declaration the consumer reads (fastify's, React's, Node's) takes 20 s of CPU and more on
// a busy machine: more than tap's 120 s default.
t.setTimeout(300_000)

const work = await mkdtemp(path.join(tmpdir(), 'pov-tarball-'))
t.teardown(() => rm(work, { recursive: true, force: true }))

// --ignore-scripts: pack the dist/ this run built (prepack would build it again, as it does for `npm publish`).
const packed = await run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', work], root)
if (packed.code !== 0) throw new Error(`npm pack failed:\n${packed.stderr}`)
const [pack] = JSON.parse(packed.stdout) as Array<{ filename: string, files: Array<{ path: string }> }>
const shipped = new Set(pack.files.map((file) => file.path))
// The installed package, as npm would lay it out: the tarball's package/ folder under the consumer's node_modules.
const consumer = path.join(work, 'consumer')
const installed = path.join(consumer, 'node_modules', 'fastify-pov-realtime')
await mkdir(installed, { recursive: true })
const extracted = await run('tar', ['-xzf', path.join(work, pack.filename), '-C', installed, '--strip-components=1'], work)
if (extracted.code !== 0) throw new Error(`tar failed:\n${extracted.stderr}`)
const pkg = JSON.parse(await readFile(path.join(installed, 'package.json'), 'utf8')) as PackageJson

t.test('the tarball holds the license, the README, the docs and dist with declarations, and nothing of the workshop', async (t) => {
  for (const file of ['LICENSE', 'README.md', 'SECURITY.md', 'package.json']) t.ok(shipped.has(file), `${file} ships`)
  const docs = (await readdir(path.join(root, 'docs'))).filter((name) => name.endsWith('.md'))
  t.ok(docs.length >= 10, `docs/ has ${docs.length} pages`)
  for (const doc of docs) t.ok(shipped.has(`docs/${doc}`), `docs/${doc} ships`)
  for (const [entry, target] of Object.entries(pkg.exports)) {
    if (typeof target === 'string') continue
    t.ok(shipped.has(target.types.replace(/^\.\//, '')), `${entry}: its declarations (${target.types}) ship`)
    t.ok(shipped.has(target.default.replace(/^\.\//, '')), `${entry}: its JavaScript (${target.default}) ship`)
  }
  const js = [...shipped].filter((file) => file.startsWith('dist/') && file.endsWith('.js'))
  t.same(js.filter((file) => !shipped.has(file.replace(/\.js$/, '.d.ts'))), [], `each of the ${js.length} built files has its declarations`)
  t.same([...shipped].filter((file) => /^(test|example|bench|scripts|\.ci|\.tsbuild|node_modules)\//.test(file) ||
    /(^|\/)tsconfig.*\.json$|\.tsbuildinfo$/.test(file)), [], 'no tests, example, bench, scripts, build state or node_modules')
})

t.test('every shipped source map points at sources that ship with it, and every sourceMappingURL at a shipped map', async (t) => {
  const maps = [...shipped].filter((file) => file.endsWith('.map'))
  t.ok(maps.length > 0, `${maps.length} maps ship`)
  const dead: string[] = []
  for (const map of maps) {
    const { sources } = JSON.parse(await readFile(path.join(installed, map), 'utf8')) as { sources: string[] }
    for (const source of sources) {
      const target = path.posix.join(path.posix.dirname(map), source)
      if (!shipped.has(target)) dead.push(`${map} → ${target}`)
    }
  }
  t.same(dead, [], 'no map names a source the package does not ship')
  const unmapped: string[] = []
  for (const file of [...shipped].filter((name) => name.endsWith('.js'))) {
    const url = /\/\/# sourceMappingURL=(\S+)\s*$/.exec(await readFile(path.join(installed, file), 'utf8'))?.[1]
    if (url && !shipped.has(path.posix.join(path.posix.dirname(file), url))) unmapped.push(`${file} → ${url}`)
  }
  t.same(unmapped, [], 'no built file names a map the package does not ship')
})

t.test('no script of the published package runs on a consumer\'s install; prepack builds before packing', async (t) => {
  const scripts = pkg.scripts ?? {}
  for (const name of ['preinstall', 'install', 'postinstall', 'prepare']) t.notOk(name in scripts, `no ${name} script`)
  t.match(scripts.prepack, /^npm run build$/, 'npm pack and npm publish build dist/ first')
})

/** What a declaration file imports, its comments left out (their examples import the package by its own name). */
function specifiersIn (declarations: string): string[] {
  const code = declarations.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '')
  return [...code.matchAll(/(?:from|import)\s*\(?\s*['"]([^'"]+)['"]/g)].map(([, specifier]) => specifier)
}

/**
 * The bare specifiers (`fastify`, `@fastify/error`, `node:stream`) imported by the shipped declarations that a
 * consumer's compiler reads: those of package.json's exports and what they import, followed. (The hub's and the
 * socket session's declarations name ws's WebSocket, but no entry point reaches them.)
 */
async function declarationImports (): Promise<Map<string, string[]>> {
  const found = new Map<string, string[]>()
  const queue = Object.values(pkg.exports).flatMap((target) => typeof target === 'string' ? [] : [path.posix.normalize(target.types)])
  const seen = new Set<string>()
  while (queue.length > 0) {
    const file = queue.shift()!
    if (seen.has(file)) continue
    seen.add(file)
    for (const specifier of specifiersIn(await readFile(path.join(installed, file), 'utf8'))) {
      if (specifier.startsWith('.')) {
        queue.push(path.posix.join(path.posix.dirname(file), specifier).replace(/\.js$/, '.d.ts'))
        continue
      }
      const name = specifier.split('/').slice(0, specifier.startsWith('@') ? 2 : 1).join('/')
      found.set(name, [...(found.get(name) ?? []), file])
    }
  }
  return found
}

t.test('the declarations import only Node, fastify, the dependencies and the peers, each of which has types', async (t) => {
  const imports = await declarationImports()
  t.ok(imports.has('@fastify/error'), `the scan sees the declarations' imports (${[...imports.keys()].join(', ')})`)
  const builtins = new Set([...builtinModules, ...builtinModules.map((name) => `node:${name}`)])
  for (const [name, files] of imports) {
    // fastify is the app's own (a plugin does not bring it), with its types.
    if (builtins.has(name) || name === 'fastify') continue
    const where = `${name} (imported by ${files[0]})`
    const dependency = name in pkg.dependencies
    const peer = name in (pkg.peerDependencies ?? {})
    t.ok(dependency || peer, `${where} is a dependency or a peer`)
    const own = JSON.parse(await readFile(path.join(root, 'node_modules', name, 'package.json'), 'utf8')) as PackageJson
    const typesPackage = `@types/${name.replace(/^@/, '').replace('/', '__')}`
    if (Boolean(own.types ?? own.typings) || JSON.stringify(own.exports ?? {}).includes('"types"')) continue
    // A dependency without its own types needs its @types package as a dependency too (a consumer gets nothing
    // else); a peer's @types package the app installs with the peer (@types/react with react).
    if (dependency) t.ok(typesPackage in pkg.dependencies, `${where} has no types of its own: ${typesPackage} must be a dependency`)
    else t.ok(existsSync(path.join(root, 'node_modules', typesPackage)), `${where}: its types come from ${typesPackage}`)
  }
})

/** The consumer's node_modules: this checkout's packages, linked, without the @types a consumer would not have. */
async function linkDependencies (): Promise<void> {
  const modules = await realpath(path.join(root, 'node_modules'))
  const target = path.join(consumer, 'node_modules')
  for (const name of await readdir(modules)) {
    if (name.startsWith('.') || name === 'fastify-pov-realtime') continue
    if (name !== '@types') {
      await symlink(path.join(modules, name), path.join(target, name))
      continue
    }
    // A TypeScript app with a React front end has these; @types/ws, @types/cors and the linters' types it has not.
    await mkdir(path.join(target, '@types'))
    for (const types of ['node', 'react', 'react-dom']) {
      await symlink(path.join(modules, '@types', types), path.join(target, '@types', types))
    }
  }
}

const CONSUMER = `
import Fastify from 'fastify'
import povRealtime, { CloseCode, errors, type BroadcastResult, type PovRealtimeOptions } from 'fastify-pov-realtime'
import { PovRealtimeProvider, usePovActivities, useWebSocket } from 'fastify-pov-realtime/hooks'
import { RealtimeClient, type ConnectionStatus } from 'fastify-pov-realtime/client'
import { MockWebSocketProvider, getSentMessages, simulateConnectionStatus } from 'fastify-pov-realtime/testing'
import { createRedisBroker } from 'fastify-pov-realtime/redis'
import { povRealtimeCollector } from 'fastify-pov-realtime/metrics'
import { Registry } from 'prom-client'

const options: PovRealtimeOptions = {
  secret: process.env.JWT_SECRET ?? 'a-secret-of-at-least-thirty-two-chars',
  broker: createRedisBroker({ redis: 'redis://127.0.0.1:6379', keyPrefix: 'consumer:' })
}
const app = Fastify()
await app.register(povRealtime, options)
povRealtimeCollector(app, { register: new Registry() })

app.post('/api/povs/:povId/notes', async (request) => {
  const { povId } = request.params as { povId: string }
  const result: BroadcastResult = await app.broadcastActivity({
    id: 'a1', type: 'note', action: 'created', povId, userId: 'u1', title: 'New note', message: 'Hello'
  })
  return { cursor: result.cursor, connections: app.povRealtime.stats().connections }
})
// @ts-expect-error: a misspelt activity field does not compile
void app.broadcastActivity({ id: 'a2', type: 'note', action: 'created', povId: 'p1', userId: 'u1', titel: 'typo', message: 'x' })

export const tokenExpired: number = CloseCode.TOKEN_EXPIRED
export const isInvalidActivity = (err: unknown): boolean => err instanceof errors.InvalidActivityError

function Feed ({ povId }: { povId: string }) {
  const { connectionStatus } = useWebSocket()
  const { activities } = usePovActivities(povId)
  const status: ConnectionStatus = connectionStatus
  return <ul data-status={status}>{activities.map((activity) => <li key={activity.id}>{activity.title}</li>)}</ul>
}
export const page = <PovRealtimeProvider socketUrl='/ws'><Feed povId='p1' /></PovRealtimeProvider>
export const underTest = <MockWebSocketProvider><Feed povId='p1' /></MockWebSocketProvider>
simulateConnectionStatus('disconnected')
export const sent: unknown[] = getSentMessages()
export const client = new RealtimeClient({ socketUrl: 'wss://example.test/ws', tokenUrl: 'https://example.test/api/auth/ws-token' })
`

t.test('a new strict TypeScript project type-checks against the packed package, skipLibCheck off', async (t) => {
  await linkDependencies()
  await writeFile(path.join(consumer, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }))
  await writeFile(path.join(consumer, 'tsconfig.json'), JSON.stringify({
    compilerOptions: {
      target: 'ES2022',
      module: 'NodeNext',
      moduleResolution: 'NodeNext',
      lib: ['ES2023', 'DOM', 'DOM.Iterable'],
      jsx: 'react-jsx',
      strict: true,
      skipLibCheck: false,
      noEmit: true,
      types: ['node'],
      // Resolve from where each package is linked (the consumer's node_modules), not from this checkout's, which
      // has every development @types package.
      preserveSymlinks: true
    },
    files: ['consumer.tsx']
  }, null, 2))
  await writeFile(path.join(consumer, 'consumer.tsx'), CONSUMER)
  const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc')
  // One compile (checking every declaration takes a while): --listFiles shows what it read, the errors come after.
  const { code, stdout, stderr } = await run(process.execPath, [tsc, '-p', 'tsconfig.json', '--pretty', 'false', '--listFiles'], consumer)
  const read = stdout.split('\n').filter((line) => line.startsWith('/'))
  t.ok(read.some((file) => file.endsWith('/consumer/node_modules/fastify-pov-realtime/dist/index.d.ts')), 'it compiles against the packed declarations')
  t.ok(read.some((file) => file.endsWith('/consumer/node_modules/fastify/fastify.d.ts')), 'and the consumer\'s fastify')
  t.same(read.filter((file) => file.includes('@types/ws/')), [], 'without @types/ws')
  // The @ts-expect-error above a misspelt field is used (an unused one is error TS2578): the types are not \`any\`.
  t.same(stdout.split('\n').filter((line) => /error TS\d+/.test(line)), [], 'no type error')
  t.equal(stderr, '')
  t.equal(code, 0)
})
