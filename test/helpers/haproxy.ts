/**
 * A real HAProxy in front of test instances, terminating TLS with a self-signed certificate made for the run: the
 * load balancer of docs/deployment.md, with the same settings (round-robin with no stickiness, health checks,
 * WebSocket tunnel timeout, X-Forwarded-For/Proto). Debian's `haproxy` and `openssl`, run in the foreground on a
 * free port and stopped by pid; without them the test is skipped with a loud note, except under CI, where it fails.
 */
import { execFileSync, spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { sleep, type Teardown } from './server.js'

const inCI = process.env.CI === 'true' || process.env.CI === '1'

/** Whether `command` runs (`<command> <versionArg>` exits 0). */
function runs (command: string, versionArg: string): boolean {
  try {
    execFileSync(command, [versionArg], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

/** The load-balancer tools this machine lacks, as Debian package names. */
export function missingLoadBalancerTools (): string[] {
  return [['haproxy', '-v'], ['openssl', 'version']].filter(([command, arg]) => !runs(command!, arg!)).map(([command]) => command!)
}

/**
 * The `skip` option of a load-balancer test: skipped (with a loud note) when haproxy or openssl is missing outside CI;
 * under CI the test runs and {@link requireLoadBalancerTools} fails it.
 */
export function skipWithoutLoadBalancerTools (): string | false {
  const missing = missingLoadBalancerTools()
  if (missing.length === 0 || inCI) return false
  console.error(`\n*** SKIPPING the load-balancer test: ${missing.join(' and ')} missing. Install with ` +
    `\`apt-get install -y ${missing.join(' ')}\` (CI installs them, and under CI=true this test fails instead). ***\n`)
  return `${missing.join(' and ')} missing (apt-get install -y ${missing.join(' ')})`
}

/** Fails `t` (and returns false) when a tool is missing but the test was not skipped: CI must install it. */
export function requireLoadBalancerTools (t: { fail (message: string): void }): boolean {
  const missing = missingLoadBalancerTools()
  if (missing.length === 0) return true
  t.fail(`${missing.join(' and ')} missing but CI=true: CI must install it (apt-get install -y ${missing.join(' ')})`)
  return false
}

/** A free loopback port (free when this resolves). */
export async function freePort (): Promise<number> {
  const server = net.createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as net.AddressInfo
  server.close()
  await once(server, 'close')
  return port
}

/** Resolves once `port` accepts a TCP connection, or rejects after `timeout` ms. */
async function accepts (port: number, timeout: number): Promise<void> {
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
export function selfSignedCertificate (t: Teardown): { pem: string, cert: string, key: string, dir: string } {
  const dir = mkdtempSync(join(tmpdir(), 'pov-realtime-tls-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const cert = join(dir, 'cert.pem')
  const key = join(dir, 'key.pem')
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=localhost',
    '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1', '-keyout', key, '-out', cert
  ], { stdio: 'ignore' })
  const pem = join(dir, 'localhost.pem')
  writeFileSync(pem, readFileSync(cert, 'utf8') + readFileSync(key, 'utf8'))
  return { pem, cert, key, dir }
}

export interface Backend { readonly name: string, readonly port: number }

/**
 * The HAProxy configuration of docs/deployment.md for `backends` on loopback, TLS on `port` with `pem`, with the
 * timings shortened for a test: health checks every 500 ms, a server down after one failed check.
 */
export function haproxyConfig ({ port, pem, backends }: { port: number, pem: string, backends: readonly Backend[] }): string {
  return `global
  maxconn 4096

defaults
  mode http
  timeout connect 2s
  timeout client 30s
  timeout server 30s
  # After the upgrade, a WebSocket is a tunnel: this is its idle timeout. Keep it above the plugin's heartbeat
  # (30 s) and the client's ping (25 s), or the balancer cuts quiet sockets.
  timeout tunnel 1h
  timeout http-request 10s
  timeout http-keep-alive 10s
  timeout client-fin 5s

frontend public
  bind 127.0.0.1:${port} ssl crt ${pem} alpn h2,http/1.1
  # The app trusts these from the balancer only (Fastify's trustProxy): the client's address and that it came over https.
  option forwardfor
  http-request set-header X-Forwarded-Proto https
  default_backend app

backend app
  balance roundrobin
  # A dead instance is taken out by the checks, and a request that could not connect is sent to another one.
  option httpchk GET /health
  http-check expect status 200
  option redispatch 1
  retries 3
  default-server check inter 500ms fall 1 rise 1
  # Which instance answered (the test reads it; drop it in production if you would rather not show it).
  http-response set-header X-Served-By %[srv_name]
${backends.map(({ name, port }) => `  server ${name} 127.0.0.1:${port}`).join('\n')}
`
}

export interface Haproxy {
  readonly port: number
  readonly url: string
  /** What HAProxy wrote to stderr (its warnings and alerts). */
  readonly output: () => string
}

/**
 * Starts HAProxy in the foreground with the configuration above on `port` (from {@link freePort}: the app's
 * allowed origin names it before HAProxy starts); it is stopped by pid at teardown.
 */
export async function startHaproxy (t: Teardown, { port, pem, backends, host = 'localhost' }: {
  port: number, pem: string, backends: readonly Backend[], host?: string
}): Promise<Haproxy> {
  const dir = mkdtempSync(join(tmpdir(), 'pov-realtime-haproxy-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const config = join(dir, 'haproxy.cfg')
  writeFileSync(config, haproxyConfig({ port, pem, backends }))
  execFileSync('haproxy', ['-c', '-q', '-f', config]) // a bad configuration fails here, with HAProxy's own message
  const child = spawn('haproxy', ['-f', config, '-db'], { stdio: ['ignore', 'ignore', 'pipe'] })
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
    once(child, 'exit').then(([code]) => { throw new Error(`haproxy exited with ${String(code)}: ${stderr}`) })
  ])
  return { port, url: `https://${host}:${port}`, output: () => stderr }
}
