import { execFile } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { promisify } from 'node:util'
import t from 'tap'

const run = promisify(execFile)

t.test('the built package imports by its name from plain Node, as an app would', async (t) => {
  const script = `
    import Fastify from 'fastify'
    import povRealtime, { povRealtime as named, CloseCode, ErrorCode, errors } from 'fastify-pov-realtime'
    const app = Fastify()
    await app.register(povRealtime, { secret: 'a-secret-of-at-least-thirty-two-chars' })
    await app.ready()
    const out = {
      sameExport: povRealtime === named,
      decorated: typeof app.broadcastActivity === 'function' && typeof app.povRealtime.stats === 'function',
      closeCode: CloseCode.TOKEN_EXPIRED,
      errorCode: ErrorCode.SUBSCRIPTION_LIMIT,
      errorNames: Object.keys(errors).sort()
    }
    await app.close()
    console.log(JSON.stringify(out))
  `
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], { cwd: process.cwd() })
  const out = JSON.parse(stdout.trim().split('\n').at(-1)!)
  t.same(out, {
    sameExport: true,
    decorated: true,
    closeCode: 4002,
    errorCode: 'SUBSCRIPTION_LIMIT',
    errorNames: ['BadHandshakeError', 'BrokerUnavailableError', 'ClosedError', 'ForbiddenOriginError', 'InvalidActivityError',
      'InvalidArgumentError', 'InvalidCursorError', 'InvalidOptionError', 'NotEnabledError', 'TooManySocketsError',
      'UnauthorizedError']
  })
})

t.test('every export of package.json points at built JavaScript with types', async (t) => {
  const pkg = JSON.parse(await readFile('package.json', 'utf8')) as { exports: Record<string, string | { types: string, default: string }> }
  for (const [entry, target] of Object.entries(pkg.exports)) {
    if (typeof target === 'string') continue
    t.equal(Object.keys(target)[0], 'types', `${entry}: 'types' comes first`)
    await t.resolves(readFile(target.types), `${entry}: ${target.types} exists`)
    await t.resolves(readFile(target.default), `${entry}: ${target.default} exists`)
  }
})
