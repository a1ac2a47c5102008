/**
 * A real HAProxy in front of test instances, terminating TLS: the configuration of docs/deployment.md (round-robin
 * with no stickiness, health checks, the WebSocket tunnel timeout, X-Forwarded-For/Proto), run in the foreground on a
 * free port from Debian's `haproxy` and stopped by pid.
 */
import { execFileSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { balancerDirectory, runBalancer, toolCommand, type Backend, type RunningBalancer } from './load-balancer.js'
import type { Teardown } from './server.js'

/**
 * The HAProxy configuration of docs/deployment.md for `backends` on loopback, TLS on `port` with `pem`, with the
 * timings shortened for a test (health checks every 500 ms, a server down after two failed checks) and round-robin
 * balancing, so that the test can tell that nothing sticks.
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
  # Quick checks for a test, but a check may take 2 s and two must fail: an instance slowed by a loaded machine is
  # not a dead one.
  timeout check 2s
  default-server check inter 500ms fall 2 rise 1
  # Which instance answered (the test reads it; drop it in production if you would rather not show it).
  http-response set-header X-Served-By %[srv_name]
${backends.map(({ name, port }) => `  server ${name} 127.0.0.1:${port}`).join('\n')}
`
}

/**
 * Starts HAProxy in the foreground with the configuration above on `port` (from `freePort`: the app's allowed origin
 * names it before HAProxy starts); it is stopped by pid at teardown.
 */
export async function startHaproxy (t: Teardown, { port, pem, backends, host = 'localhost' }: {
  port: number, pem: string, backends: readonly Backend[], host?: string
}): Promise<RunningBalancer> {
  const config = join(balancerDirectory(t, 'haproxy'), 'haproxy.cfg')
  writeFileSync(config, haproxyConfig({ port, pem, backends }))
  const command = toolCommand('haproxy') ?? 'haproxy'
  execFileSync(command, ['-c', '-q', '-f', config]) // a bad configuration fails here, with HAProxy's own message
  return await runBalancer(t, command, ['-f', config, '-db'], { port, host })
}
