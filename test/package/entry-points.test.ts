/**
 * The server entry points load only what they need: the main entry its `dependencies` and Node built-ins, and each
 * optional peer (ioredis, prom-client) only through its own entry point, so an app that uses neither never loads
 * them. Checked on the built files (`npm run build`), as they ship.
 */
import { execFile } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { builtinModules } from 'node:module'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { build } from 'esbuild'
import t from 'tap'

const root = fileURLToPath(new URL('../../', import.meta.url))
const run = promisify(execFile)

interface PackageJson {
  exports: Record<string, string | { types: string, default: string }>
  dependencies: Record<string, string>
  peerDependencies: Record<string, string>
}

/** The packages (by name) and Node built-ins that a built entry point imports, its own files followed. */
async function packagesImportedBy (file: string): Promise<string[]> {
  const result = await build({
    entryPoints: [path.join(root, file)],
    bundle: true,
    write: false,
    platform: 'node',
    format: 'esm',
    packages: 'external',
    metafile: true,
    absWorkingDir: root,
    logLevel: 'silent'
  })
  const imported = new Set<string>()
  for (const input of Object.values(result.metafile.inputs)) {
    for (const { path: specifier, external } of input.imports) {
      if (!external) continue
      // '@scope/name/sub' → '@scope/name', 'name/sub' → 'name'
      imported.add(specifier.split('/').slice(0, specifier.startsWith('@') ? 2 : 1).join('/'))
    }
  }
  return [...imported].sort()
}

t.test('each server entry point imports its dependencies, and the optional peers only where they are used', async (t) => {
  const pkg = JSON.parse(await readFile(path.join(root, 'package.json'), 'utf8')) as PackageJson
  const entry = (name: string): string => {
    const target = pkg.exports[name]
    if (typeof target !== 'object') throw new Error(`package.json exports no ${name}`)
    return target.default
  }
  const builtins = new Set([...builtinModules, ...builtinModules.map((name) => `node:${name}`)])
  const dependencies = new Set(Object.keys(pkg.dependencies))
  const outside = (imported: string[]): string[] => imported.filter((name) => !builtins.has(name) && !dependencies.has(name))

  const main = await packagesImportedBy(entry('.'))
  t.ok(main.includes('fastify-plugin'), `the scan sees the main entry's imports (${main.join(', ')})`)
  t.same(outside(main), [], 'the main entry: dependencies and Node built-ins only (no ioredis, no prom-client)')
  t.same(outside(await packagesImportedBy(entry('./redis'))), ['ioredis'], '/redis: ioredis besides')
  t.same(outside(await packagesImportedBy(entry('./metrics'))), ['prom-client'], '/metrics: prom-client besides')
  t.ok('ioredis' in pkg.peerDependencies && 'prom-client' in pkg.peerDependencies, 'both are declared peers')
})

t.test('fastify-pov-realtime/metrics imports by its name from plain Node and serves the stats', async (t) => {
  const script = `
    import Fastify from 'fastify'
    import povRealtime from 'fastify-pov-realtime'
    import { povRealtimeCollector } from 'fastify-pov-realtime/metrics'
    import { register } from 'prom-client'
    const app = Fastify()
    await app.register(povRealtime, { secret: 'a-secret-of-at-least-thirty-two-chars' })
    povRealtimeCollector(app)
    app.get('/metrics', async (request, reply) => reply.type(register.contentType).send(await register.metrics()))
    const response = await app.inject('/metrics')
    await app.close()
    console.log(JSON.stringify({ status: response.statusCode, body: response.body }))
  `
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], { cwd: root })
  const out = JSON.parse(stdout.trim().split('\n').at(-1)!) as { status: number, body: string }
  t.equal(out.status, 200)
  t.match(out.body, /^# TYPE pov_realtime_connections gauge\npov_realtime_connections 0$/m)
  t.match(out.body, /^pov_realtime_broadcasts_total 0$/m)
})
