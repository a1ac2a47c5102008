/**
 * The README's code runs as pasted. Its two snippets, found by the `<!-- README snippet: … -->` line above each fence,
 * are copied out unchanged: both type-check (strict, against the built package, imported by its name), and the server
 * runs in a process of its own, where a user signs in through the snippet's own route, trades the cookie it set for a
 * WebSocket token, subscribes, and receives the note the snippet's route broadcasts. Needs `npm run build` first.
 */
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import path from 'node:path'
import t from 'tap'
import { TestClient } from '../helpers/client.js'
import { importedPackages, root, snippetProject, startSnippetServer } from '../helpers/readme-snippets.js'

t.ok(existsSync(path.join(root, 'dist/index.d.ts')), 'dist/ is built (npm run build)')
const { readme, server, client, dir } = await snippetProject(t)

t.test('the README\'s Install section installs every package its snippets import', async (t) => {
  const install = /## Install\n([\s\S]*?)\n## /.exec(readme)?.[1] ?? ''
  const installed = new Set([...install.matchAll(/^npm install ([^#\n]+)/gm)].flatMap(([, names]) => names!.trim().split(/\s+/)))
  const imported = importedPackages(server + client)
  t.ok(imported.includes('@fastify/jwt') && imported.includes('react-dom'), `the snippets' imports were found (${imported.join(', ')})`)
  t.same(imported.filter((name) => !installed.has(name)), [], 'each is in an `npm install` line of the Install section')
})

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

t.test('the README\'s server runs as pasted: sign in, token, socket, and the note a route broadcasts arrives', async (t) => {
  const url = await startSnippetServer(t, dir)
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
