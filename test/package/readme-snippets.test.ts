/**
 * The README's code runs as pasted. Its two snippets, found by the `<!-- README snippet: … -->` line above each fence,
 * are copied out unchanged: both type-check (strict, against the built package, imported by its name), and the server
 * runs in a process of its own, where a user signs in through the snippet's own route, trades the cookie it set for a
 * WebSocket token, subscribes, and receives the note the snippet's route broadcasts. Needs `npm run build` first.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { TestClient } from '../helpers/client.js'

const root = fileURLToPath(new URL('../..', import.meta.url))

/** The code of the fenced block right under `<!-- README snippet: <name> … -->`. */
function snippet (readme: string, name: string): string {
  const escaped = name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
  const match = new RegExp(`<!-- README snippet: ${escaped}\\b[^>]*-->\\n\`\`\`tsx?\\n([\\s\\S]*?)\\n\`\`\`\\n`).exec(readme)
  if (!match) throw new Error(`README.md has no fenced block under <!-- README snippet: ${name} -->`)
  return match[1]! + '\n'
}

t.ok(existsSync(path.join(root, 'dist/index.d.ts')), 'dist/ is built (npm run build)')
const readme = await readFile(path.join(root, 'README.md'), 'utf8')
const server = snippet(readme, 'server')
const client = snippet(readme, 'react client')
// Inside the package (in the git-ignored .tsbuild/), so that `import … from 'fastify-pov-realtime'` resolves to this
// package by its own name, as it does in an app that installed it.
await mkdir(path.join(root, '.tsbuild'), { recursive: true })
const dir = await mkdtemp(path.join(root, '.tsbuild', 'readme-'))
t.teardown(() => rm(dir, { recursive: true, force: true }))
await writeFile(path.join(dir, 'server.ts'), server)
await writeFile(path.join(dir, 'client.tsx'), client)

t.test('the README\'s server and React snippets type-check, strict, against the built package', async (t) => {
  t.match(server, /app\.register\(povRealtime/, 'the server snippet registers the plugin')
  t.match(server, /reply\.setCookie\('accessToken'/, 'and signs the user in with the accessToken cookie')
  t.match(server, /app\.broadcastActivity\(/, 'and broadcasts from a route')
  t.match(client, /usePovActivities\(povId\)/, 'the client snippet uses usePovActivities')
  await writeFile(path.join(dir, 'tsconfig.json'), JSON.stringify({
    compilerOptions: {
      target: 'ES2022',
      module: 'NodeNext',
      moduleResolution: 'NodeNext',
      lib: ['ES2023', 'DOM', 'DOM.Iterable'],
      jsx: 'react-jsx',
      strict: true,
      noEmit: true,
      skipLibCheck: true,
      types: ['node']
    },
    files: ['server.ts', 'client.tsx']
  }))
  const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc')
  const { code, output } = await new Promise<{ code: number, output: string }>((resolve) => {
    execFile(process.execPath, [tsc, '-p', 'tsconfig.json', '--pretty', 'false'], { cwd: dir }, (err, stdout, stderr) =>
      resolve({ code: typeof err?.code === 'number' ? err.code : 0, output: stdout + stderr }))
  })
  t.equal(output, '', 'no type error')
  t.equal(code, 0)
})

/** Starts the snippet on a free port (its PORT variable); resolves its URL from Fastify's "Server listening" line. */
async function startSnippet (t: { teardown (fn: () => unknown): void }): Promise<string> {
  // The repo's loader compiles the TypeScript; tap's tracking and V8 coverage are left out (the snippet is the
  // README's code, not the package's).
  const env = Object.fromEntries(Object.entries(process.env)
    .filter(([name]) => name !== 'NODE_OPTIONS' && name !== 'NODE_V8_COVERAGE' && !name.startsWith('_TAPJS')))
  const child: ChildProcess = spawn(process.execPath, ['--import', path.join(root, 'scripts/typescript-loader.mjs'), 'server.ts'], {
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

t.test('the README\'s server runs as pasted: sign in, token, socket, and the note a route broadcasts arrives', async (t) => {
  const url = await startSnippet(t)
  const signIn = await fetch(`${url}/api/sign-in`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ userId: 'ada' })
  })
  t.equal(signIn.status, 200)
  const setCookie = signIn.headers.get('set-cookie') ?? ''
  t.match(setCookie, /^accessToken=[^;]+;.*HttpOnly/i, 'the sign-in sets the HttpOnly accessToken cookie')
  const cookie = setCookie.split(';')[0]!

  const tokenResponse = await fetch(`${url}/api/auth/ws-token`, { headers: { cookie } })
  t.equal(tokenResponse.status, 200, 'the plugin\'s token route takes the cookie the app set')
  const { token } = await tokenResponse.json() as { token: string }
  const socket = new TestClient(`${url.replace('http', 'ws')}/ws`, ['pov-realtime.v1', `bearer.${token}`])
  t.teardown(() => socket.terminate())
  await socket.opened
  await socket.subscribe('launch')

  const posted = await fetch(`${url}/api/povs/launch/notes`, {
    method: 'POST', headers: { cookie, 'content-type': 'application/json' }, body: JSON.stringify({ text: 'Kick-off at 10' })
  })
  t.equal(posted.status, 200)
  const { id, cursor } = await posted.json() as { id: string, cursor: string }
  const received = await socket.next('activity', 5000)
  t.equal(received.cursor, cursor, 'the subscriber gets the broadcast\'s cursor')
  t.match(received.data, { id, type: 'note', action: 'created', povId: 'launch', userId: 'ada', title: 'New note', message: 'Kick-off at 10' })

  const anonymous = await fetch(`${url}/api/povs/launch/notes`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ text: 'x' })
  })
  t.equal(anonymous.status, 401, 'the note route wants the signed-in user')
})
