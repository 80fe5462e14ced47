import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { tempDir } from './agent.js';
import { freePort } from './net.js';
import { waitFor } from './wait.js';

/**
 * A real nginx of our own on loopback: TLS for `serverName` (a certificate from a CA of its own, `caFile`), asking
 * every client for a certificate (`ssl_verify_client optional_no_ca`: any certificate, as a stranger's site would)
 * and answering with the subject it received ("dn=" empty when none). Its access log records the same.
 */
export interface Nginx {
  url: string;
  caFile: string;
  accessLog(): string;
  stop(): Promise<void>;
}

export function nginxUnavailable(): string | undefined {
  return spawnSync('sh', ['-c', 'command -v nginx || test -x /usr/sbin/nginx']).status === 0 ? undefined : 'skipped: nginx is not installed (apt install nginx-light)';
}

export async function startNginx(serverName: string): Promise<Nginx> {
  const dir = tempDir('nginx');
  const run = (args: string[]) => execFileSync('openssl', args, { stdio: 'pipe' });
  run(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${dir}/ca.key`, '-out', `${dir}/ca.pem`, '-days', '2',
    '-subj', `/O=Stranger Inc/CN=Stranger Site CA`, '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  run(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${dir}/server.key`, '-out', `${dir}/server.csr`, '-subj', `/CN=${serverName}`]);
  fs.writeFileSync(`${dir}/ext`, `subjectAltName=DNS:${serverName}\nextendedKeyUsage=serverAuth\n`);
  run(['x509', '-req', '-in', `${dir}/server.csr`, '-CA', `${dir}/ca.pem`, '-CAkey', `${dir}/ca.key`, '-CAcreateserial', '-days', '2', '-extfile', `${dir}/ext`, '-out', `${dir}/server.pem`]);
  const port = await freePort();
  fs.writeFileSync(path.join(dir, 'nginx.conf'), `daemon off;
master_process off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log;
events {}
http {
  log_format dn 'dn="$ssl_client_s_dn"';
  access_log ${dir}/access.log dn;
  client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy; fastcgi_temp_path ${dir}/fastcgi; uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi;
  server {
    listen 127.0.0.1:${port} ssl;
    server_name ${serverName};
    ssl_certificate ${dir}/server.pem;
    ssl_certificate_key ${dir}/server.key;
    ssl_verify_client optional_no_ca;
    location / { default_type text/plain; return 200 "dn=$ssl_client_s_dn\\n"; }
  }
}
`);
  const nginx = fs.existsSync('/usr/sbin/nginx') ? '/usr/sbin/nginx' : 'nginx';
  const child: ChildProcess = spawn(nginx, ['-p', dir, '-c', path.join(dir, 'nginx.conf')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d) => (stderr += d));
  await waitFor('nginx.pid', () => fs.existsSync(`${dir}/nginx.pid`), 10_000, 100, () => (child.exitCode !== null ? 'nginx exited' : undefined)).catch((e: Error) => {
    throw new Error(`nginx did not start (${e.message}): ${stderr}${fs.existsSync(`${dir}/error.log`) ? fs.readFileSync(`${dir}/error.log`, 'utf8') : ''}`);
  });
  return {
    url: `https://${serverName}:${port}/`,
    caFile: `${dir}/ca.pem`,
    accessLog: () => (fs.existsSync(`${dir}/access.log`) ? fs.readFileSync(`${dir}/access.log`, 'utf8') : ''),
    stop: async () => {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await new Promise((r) => child.once('exit', r));
      }
    },
  };
}
