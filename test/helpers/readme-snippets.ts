/**
 * The README's code blocks as the tests use them: each snippet found by the `<!-- README snippet: … -->` line above
 * its fence and copied out unchanged into a folder inside the package (the git-ignored `.tsbuild/`, so that
 * `import … from 'fastify-pov-realtime'` resolves to this package by its own name, as in an app that installed it),
 * and the server snippet started in a process of its own.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

export const root = fileURLToPath(new URL('../..', import.meta.url))

interface Teardown { teardown (fn: () => unknown): void }

/** The code of the fenced block right under `<!-- README snippet: <name> … -->`. */
export function snippet (readme: string, name: string): string {
  const escaped = name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
  const match = new RegExp(`<!-- README snippet: ${escaped}\\b[^>]*-->\\n\`\`\`tsx?\\n([\\s\\S]*?)\\n\`\`\`\\n`).exec(readme)
  if (!match) throw new Error(`README.md has no fenced block under <!-- README snippet: ${name} -->`)
  return match[1]! + '\n'
}

export interface SnippetProject {
  readonly readme: string
  readonly server: string
  readonly client: string
  /** The folder holding `server.ts` and `client.tsx` (removed at teardown). */
  readonly dir: string
}

/** Copies the server and React client snippets into a folder of their own, inside the package. */
export async function snippetProject (t: Teardown): Promise<SnippetProject> {
  const readme = await readFile(path.join(root, 'README.md'), 'utf8')
  const server = snippet(readme, 'server')
  const client = snippet(readme, 'react client')
  await mkdir(path.join(root, '.tsbuild'), { recursive: true })
  const dir = await mkdtemp(path.join(root, '.tsbuild', 'readme-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  await writeFile(path.join(dir, 'server.ts'), server)
  await writeFile(path.join(dir, 'client.tsx'), client)
  return { readme, server, client, dir }
}

/**
 * Starts `file` of the snippet folder on a free port (its PORT variable); resolves its URL from Fastify's "Server
 * listening" line. The repo's loader compiles the TypeScript; tap's tracking and V8 coverage are left out (the
 * snippet is the README's code, not the package's).
 */
export async function startSnippetServer (t: Teardown, dir: string, file = 'server.ts'): Promise<string> {
  const env = Object.fromEntries(Object.entries(process.env)
    .filter(([name]) => name !== 'NODE_OPTIONS' && name !== 'NODE_V8_COVERAGE' && !name.startsWith('_TAPJS')))
  const child: ChildProcess = spawn(process.execPath, ['--import', path.join(root, 'scripts/typescript-loader.mjs'), file], {
    cwd: dir, env: { ...env, PORT: '0', JWT_SECRET: 'a-readme-secret-of-at-least-32-characters' }, stdio: ['ignore', 'pipe', 'pipe']
  })
  t.teardown(() => { child.kill() })
  let output = ''
  child.stderr!.on('data', (chunk) => { output += chunk })
  return await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the snippet did not start in 20 s:\n${output}`)), 20_000)
    child.stdout!.on('data', (chunk) => {
      output += chunk
      const url = /"msg":"Server listening at (http:\/\/127\.0\.0\.1:\d+)"/.exec(output)?.[1]
      if (url) { clearTimeout(timer); resolve(url) }
    })
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`the snippet exited with ${code}:\n${output}`)) })
  })
}

/** The packages a snippet imports by name (no `node:` built-ins, no relative paths), e.g. `@fastify/jwt`, `react-dom`. */
export function importedPackages (code: string): string[] {
  const names = new Set<string>()
  for (const [, specifier] of code.matchAll(/^import\s[^'"]*['"]([^'"]+)['"]/gm)) {
    if (specifier!.startsWith('node:') || specifier!.startsWith('.')) continue
    const parts = specifier!.split('/')
    names.add(specifier!.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!)
  }
  return [...names].sort()
}
