/**
 * A real squid (Debian's squid-openssl) on a loopback port for one test: its own config, pid, logs and
 * certificate database in a temp dir, started in the foreground (`-N`) and stopped by its pid.
 *
 * The lab's servers are all `localhost` on random ports, so the config allows CONNECT to any port — from
 * loopback clients only.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { tempDir } from './agent.js';
import { accepts, freePort } from './net.js';
import { waitFor } from './wait.js';

export interface SquidOptions {
  /** Demand Basic proxy authentication for this user and password. */
  basicAuth?: { user: string; password: string };
  /** Demand Negotiate (Kerberos) proxy authentication: the helper accepts with this keytab and krb5.conf. */
  negotiate?: { keytab: string; krb5Config: string; servicePrincipal: string };
  /** Intercept TLS (ssl_bump): re-sign every server certificate with this CA; trust `upstreamCaFile` upstream. */
  bump?: { caCertPem: string; caKeyPem: string; upstreamCaFile: string };
}

export interface Squid {
  port: number;
  url: string;
  dir: string;
  /** Lines of squid's access log (one per request/CONNECT it handled). */
  accessLog(): string[];
  stop(): Promise<void>;
}

const SQUID_PATHS = ['/usr/sbin/squid', '/usr/local/sbin/squid'];
const CERTGEN = '/usr/lib/squid/security_file_certgen';

export function squidUnavailable(): string | undefined {
  if (!SQUID_PATHS.some((p) => fs.existsSync(p))) return 'skipped: squid is not installed (apt install squid-openssl)';
  try {
    const v = execFileSync(squidBinary(), ['-v'], { encoding: 'utf8' });
    if (!/--with-openssl/.test(v)) return 'skipped: this squid is built without OpenSSL (apt install squid-openssl)';
  } catch (e) {
    return `skipped: squid -v failed: ${(e as Error).message}`;
  }
  return undefined;
}

function squidBinary(): string {
  return SQUID_PATHS.find((p) => fs.existsSync(p)) ?? 'squid';
}


/** Starts squid and resolves once it accepts connections. */
export async function startSquid(opts: SquidOptions = {}): Promise<Squid> {
  const dir = tempDir('squid');
  const port = await freePort();
  const lines: string[] = [];
  const httpPort = opts.bump
    ? `http_port 127.0.0.1:${port} ssl-bump tls-cert=${dir}/bump-ca.pem tls-key=${dir}/bump-ca.key generate-host-certificates=on dynamic_cert_mem_cache_size=4MB`
    : `http_port 127.0.0.1:${port}`;
  lines.push(
    httpPort,
    `pid_filename ${dir}/squid.pid`,
    `cache_log ${dir}/cache.log`,
    `access_log stdio:${dir}/access.log squid`,
    `coredump_dir ${dir}`,
    'cache deny all',
    'pinger_enable off',
    'netdb_filename none',
    'shutdown_lifetime 0 seconds',
    'dns_v4_first on',
    'acl CONNECT method CONNECT',
    'acl loopback src 127.0.0.1/32 ::1',
  );
  if (opts.basicAuth) {
    const hash = execFileSync('openssl', ['passwd', '-apr1', opts.basicAuth.password], { encoding: 'utf8' }).trim();
    fs.writeFileSync(path.join(dir, 'passwd'), `${opts.basicAuth.user}:${hash}\n`);
    lines.push(`auth_param basic program /usr/lib/squid/basic_ncsa_auth ${dir}/passwd`, 'auth_param basic realm lab-proxy', 'acl authed proxy_auth REQUIRED', 'http_access deny !authed');
  }
  if (opts.negotiate) {
    // The helper runs as squid's user: it gets its own copies of the keytab and krb5.conf.
    fs.copyFileSync(opts.negotiate.keytab, path.join(dir, 'http.keytab'));
    fs.copyFileSync(opts.negotiate.krb5Config, path.join(dir, 'krb5.conf'));
    lines.push(`auth_param negotiate program /usr/lib/squid/negotiate_kerberos_auth -s ${opts.negotiate.servicePrincipal}`, 'auth_param negotiate children 2', 'acl authed proxy_auth REQUIRED', 'http_access deny !authed');
  }
  if (opts.bump) {
    fs.writeFileSync(path.join(dir, 'bump-ca.pem'), opts.bump.caCertPem);
    fs.writeFileSync(path.join(dir, 'bump-ca.key'), opts.bump.caKeyPem, { mode: 0o600 });
    execFileSync(CERTGEN, ['-c', '-s', `${dir}/ssl_db`, '-M', '4MB'], { stdio: 'pipe' });
    lines.push(
      `sslcrtd_program ${CERTGEN} -s ${dir}/ssl_db -M 4MB`,
      'sslcrtd_children 2',
      'acl step1 at_step SslBump1',
      'ssl_bump peek step1',
      'ssl_bump bump all',
      `tls_outgoing_options cafile=${opts.bump.upstreamCaFile}`,
    );
  }
  lines.push('http_access allow loopback', 'http_access deny all');
  const conf = path.join(dir, 'squid.conf');
  fs.writeFileSync(conf, lines.join('\n') + '\n');
  // As root, squid drops to the proxy user: it must be able to write its logs and read its files.
  if (process.getuid?.() === 0) execFileSync('chown', ['-R', 'proxy:proxy', dir]);

  const env: Record<string, string> = { PATH: process.env.PATH ?? '/usr/bin:/bin' };
  if (opts.negotiate) Object.assign(env, { KRB5_KTNAME: path.join(dir, 'http.keytab'), KRB5_CONFIG: path.join(dir, 'krb5.conf'), KRB5RCACHEDIR: dir });
  const child: ChildProcess = spawn(squidBinary(), ['-N', '-f', conf], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout?.on('data', (d) => (output += d));
  child.stderr?.on('data', (d) => (output += d));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));

  await waitFor('squid to accept connections', () => accepts(port), 15_000, 100, () => (child.exitCode !== null ? 'squid exited' : undefined)).catch((e: Error) => {
    child.kill('SIGKILL');
    throw new Error(`${e.message}:\n${output}\n${safeRead(path.join(dir, 'cache.log'))}`);
  });
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    dir,
    accessLog: () => safeRead(path.join(dir, 'access.log')).split('\n').filter(Boolean),
    async stop() {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(timer);
      }
    },
  };
}

function safeRead(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}
