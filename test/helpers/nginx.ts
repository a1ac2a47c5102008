/**
 * A real nginx in front of test instances, terminating TLS: the configuration of docs/deployment.md (the upgrade
 * headers, HTTP/1.1 to the instances, the WebSocket read/send timeouts, X-Forwarded-For/Proto, retry on the next
 * instance), run in the foreground on a free port from Debian's `nginx` with every path in a temporary directory,
 * and stopped by pid.
 */
import { execFileSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { balancerDirectory, runBalancer, toolCommand, type Backend, type RunningBalancer } from './load-balancer.js'
import type { Teardown } from './server.js'

/**
 * The nginx configuration of docs/deployment.md for `backends` on loopback, TLS on `port`; round-robin (nginx's
 * default) so that the test can tell that nothing sticks, and everything nginx writes kept in `dir`.
 */
export function nginxConfig ({ port, cert, key, backends, dir }: {
  port: number, cert: string, key: string, backends: readonly Backend[], dir: string
}): string {
  return `worker_processes 1;
daemon off;
pid ${dir}/nginx.pid;
error_log stderr warn;
events { worker_connections 1024; }

http {
  access_log off;
  client_body_temp_path ${dir}/client-body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;

  # \`Connection: upgrade\` for an upgrade request, \`close\` otherwise.
  map $http_upgrade $connection_upgrade {
    default upgrade;
    ''      close;
  }

  upstream app {
${backends.map(({ port }) => `    server 127.0.0.1:${port} max_fails=1 fail_timeout=10s;`).join('\n')}
  }

  server {
    listen 127.0.0.1:${port} ssl http2;
    server_name localhost;
    ssl_certificate     ${cert};
    ssl_certificate_key ${key};

    location / {
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_read_timeout 1h;
      proxy_send_timeout 1h;
      proxy_next_upstream error timeout;
    }
  }
}
`
}

/**
 * Starts nginx in the foreground with the configuration above on `port` (from `freePort`: the app's allowed origin
 * names it before nginx starts); it is stopped by pid at teardown.
 */
export async function startNginx (t: Teardown, { port, cert, key, backends, host = 'localhost' }: {
  port: number, cert: string, key: string, backends: readonly Backend[], host?: string
}): Promise<RunningBalancer> {
  const dir = balancerDirectory(t, 'nginx')
  const config = join(dir, 'nginx.conf')
  writeFileSync(config, nginxConfig({ port, cert, key, backends, dir }))
  const args = ['-e', 'stderr', '-p', dir, '-c', config]
  const command = toolCommand('nginx') ?? 'nginx'
  execFileSync(command, [...args, '-t', '-q']) // a bad configuration fails here, with nginx's own message
  return await runBalancer(t, command, args, { port, host })
}
