/**
 * What the load-balancer tests share, whichever balancer they start: a check that the balancer and openssl are
 * installed (skipped with a loud note outside CI, failed under CI), a free port, a wait for the balancer to listen,
 * a self-signed certificate for `localhost` made for the run, and running the balancer in the foreground, stopped by
 * pid at teardown.
 */
import { execFileSync, spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { sleep, type Teardown } from './server.js'

const inCI = process.env.CI === 'true' || process.env.CI === '1'

/** How to ask each tool for its version: it runs when this exits 0. Each is also its Debian package's name. */
const VERSION_ARGS = { haproxy: '-v', nginx: '-v', openssl: 'version' } as const
export type LoadBalancerTool = keyof typeof VERSION_ARGS

/** Whether `command` runs (`<command> <versionArg>` exits 0). */
function runs (command: string, versionArg: string): boolean {
  try {
    execFileSync(command, [versionArg], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

/**
 * The command that runs `tool`: its name when it is on the PATH, else Debian's `/usr/sbin/<tool>` (haproxy and nginx
 * live there, outside a non-root user's PATH); undefined when neither runs.
 */
export function toolCommand (tool: LoadBalancerTool): string | undefined {
  return [tool, `/usr/sbin/${tool}`].find((command) => runs(command, VERSION_ARGS[tool]))
}

/** Those of `tools` this machine lacks. */
export function missingTools (tools: readonly LoadBalancerTool[]): LoadBalancerTool[] {
  return tools.filter((tool) => toolCommand(tool) === undefined)
}

/**
 * The `skip` option of a load-balancer test: skipped (with a loud note) when one of `tools` is missing outside CI;
 * under CI the test runs and {@link requireTools} fails it.
 */
export function skipWithoutTools (tools: readonly LoadBalancerTool[]): string | false {
  const missing = missingTools(tools)
  if (missing.length === 0 || inCI) return false
  console.error(`\n*** SKIPPING a load-balancer test: ${missing.join(' and ')} missing. Install with ` +
    `\`apt-get install -y ${missing.join(' ')}\` (CI installs them, and under CI=true this test fails instead). ***\n`)
  return `${missing.join(' and ')} missing (apt-get install -y ${missing.join(' ')})`
}

/** Fails `t` (and returns false) when one of `tools` is missing but the test was not skipped: CI must install it. */
export function requireTools (t: { fail (message: string): void }, tools: readonly LoadBalancerTool[]): boolean {
  const missing = missingTools(tools)
  if (missing.length === 0) return true
  t.fail(`${missing.join(' and ')} missing but CI=true: CI must install it (apt-get install -y ${missing.join(' ')})`)
  return false
}

/** Resolves once `port` accepts a TCP connection, or rejects after `timeout` ms. */
export async function accepts (port: number, timeout: number): Promise<void> {
  const deadline = Date.now() + timeout
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, '127.0.0.1')
      socket.once('error', () => resolve(false))
      socket.once('connect', () => { socket.destroy(); resolve(true) })
    })
    if (ok) return
    if (Date.now() > deadline) throw new Error(`nothing accepts connections on port ${port} after ${timeout} ms`)
    await sleep(50)
  }
}

/**
 * A self-signed certificate for `localhost` (and 127.0.0.1), made with openssl in a temporary directory removed at
 * teardown. Returns the path of the PEM holding the certificate and then its key (what HAProxy's `crt` reads), and
 * the two apart (what nginx reads).
 */
export function selfSignedCertificate (t: Teardown): { pem: string, cert: string, key: string } {
  const dir = mkdtempSync(join(tmpdir(), 'pov-realtime-tls-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const cert = join(dir, 'cert.pem')
  const key = join(dir, 'key.pem')
  execFileSync(toolCommand('openssl') ?? 'openssl', [
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=localhost',
    '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1', '-keyout', key, '-out', cert
  ], { stdio: 'ignore' })
  const pem = join(dir, 'localhost.pem')
  writeFileSync(pem, readFileSync(cert, 'utf8') + readFileSync(key, 'utf8'))
  return { pem, cert, key }
}

/** An instance behind the balancer: its name (for `X-Served-By`) and its loopback port. */
export interface Backend { readonly name: string, readonly port: number }

export interface RunningBalancer {
  readonly port: number
  /** The public address, `https://<host>:<port>`. */
  readonly url: string
  /** What the balancer wrote to stderr (its warnings and errors). */
  readonly output: () => string
}

/**
 * Runs `command args` in the foreground (a balancer told not to daemonize) until it accepts connections on `port`;
 * it is stopped by pid (SIGTERM) at teardown. Rejects with its stderr if it exits first.
 */
export async function runBalancer (t: Teardown, command: string, args: readonly string[], { port, host }: {
  port: number, host: string
}): Promise<RunningBalancer> {
  const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr!.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
  t.teardown(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return
    const exited = once(child, 'exit')
    child.kill('SIGTERM')
    await exited
  })
  await Promise.race([
    accepts(port, 10_000),
    once(child, 'exit').then(([code]) => { throw new Error(`${command} exited with ${String(code)}: ${stderr}`) })
  ])
  return { port, url: `https://${host}:${port}`, output: () => stderr }
}

/** A temporary directory for a balancer's configuration and state, removed at teardown. */
export function balancerDirectory (t: Teardown, name: string): string {
  const dir = mkdtempSync(join(tmpdir(), `pov-realtime-${name}-`))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}
