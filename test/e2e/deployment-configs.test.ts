/**
 * The HAProxy and nginx configurations docs/deployment.md prints are the ones the balancer tests run, and they are
 * valid as printed: each block is taken from the doc, its certificate paths pointed at a certificate made for the
 * run, and checked by the real program (`haproxy -c`, `nginx -t`). And the settings a WebSocket needs, which the
 * test configurations share with the doc, are in both.
 */
import { execFileSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { haproxyConfig } from '../helpers/haproxy.js'
import { balancerDirectory, requireTools, selfSignedCertificate, skipWithoutTools, toolCommand } from '../helpers/load-balancer.js'
import { nginxConfig } from '../helpers/nginx.js'

const DOC = readFileSync(new URL('../../docs/deployment.md', import.meta.url), 'utf8')

/** The body of the doc's one fenced block in `language`. */
function block (language: string): string {
  const blocks = [...DOC.matchAll(new RegExp('^```' + language + '\\n([\\s\\S]*?)^```$', 'gm'))]
  if (blocks.length !== 1) throw new Error(`docs/deployment.md has ${blocks.length} \`${language}\` blocks, expected one`)
  return blocks[0]![1]!
}

/** What a WebSocket needs from each balancer: in the doc's configuration and in the one the tests run. */
const WEBSOCKET_SETTINGS = {
  haproxy: [/timeout tunnel 1h/, /option forwardfor/, /http-request set-header X-Forwarded-Proto https/, /option httpchk GET \/health/, /option redispatch 1/, /ssl crt /],
  nginx: [/proxy_http_version 1\.1;/, /proxy_set_header Upgrade \$http_upgrade;/, /proxy_set_header Connection \$connection_upgrade;/,
    /proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;/, /proxy_set_header X-Forwarded-Proto \$scheme;/,
    /proxy_read_timeout 1h;/, /proxy_send_timeout 1h;/, /proxy_next_upstream error timeout;/, /listen \S+ ssl http2;/]
}

t.test('the HAProxy configuration of the doc is valid and has what WebSockets need', { skip: skipWithoutTools(['haproxy', 'openssl']) }, async (t) => {
  if (!requireTools(t, ['haproxy', 'openssl'])) return
  const { pem } = selfSignedCertificate(t)
  const documented = block('haproxy')
  const tested = haproxyConfig({ port: 8443, pem, backends: [{ name: 'a', port: 3000 }] })
  for (const setting of WEBSOCKET_SETTINGS.haproxy) {
    t.match(documented, setting, `the doc has ${setting.source}`)
    t.match(tested, setting, `the tested configuration has ${setting.source}`)
  }
  const file = join(balancerDirectory(t, 'haproxy-doc'), 'haproxy.cfg')
  writeFileSync(file, documented.replace(/ssl crt \S+/, `ssl crt ${pem}`))
  t.doesNotThrow(() => execFileSync(toolCommand('haproxy')!, ['-c', '-q', '-f', file], { stdio: 'pipe' }), 'haproxy -c accepts it')
})

t.test('the nginx configuration of the doc is valid and has what WebSockets need', { skip: skipWithoutTools(['nginx', 'openssl']) }, async (t) => {
  if (!requireTools(t, ['nginx', 'openssl'])) return
  const { cert, key } = selfSignedCertificate(t)
  const dir = balancerDirectory(t, 'nginx-doc')
  const documented = block('nginx')
  const tested = nginxConfig({ port: 8443, cert, key, backends: [{ name: 'a', port: 3000 }], dir })
  for (const setting of WEBSOCKET_SETTINGS.nginx) {
    t.match(documented, setting, `the doc has ${setting.source}`)
    t.match(tested, setting, `the tested configuration has ${setting.source}`)
  }
  // The doc's block is what goes in nginx's http block; around it, only what a run in a temporary directory needs.
  const file = join(dir, 'nginx.conf')
  writeFileSync(file, `pid ${dir}/nginx.pid;
error_log stderr;
events {}
http {
  access_log off;
  client_body_temp_path ${dir}/client-body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
${documented.replace(/ssl_certificate\s+\S+;/, `ssl_certificate ${cert};`).replace(/ssl_certificate_key\s+\S+;/, `ssl_certificate_key ${key};`)}
}
`)
  t.doesNotThrow(() => execFileSync(toolCommand('nginx')!, ['-e', 'stderr', '-p', dir, '-c', file, '-t', '-q'], { stdio: 'pipe' }), 'nginx -t accepts it')
})
