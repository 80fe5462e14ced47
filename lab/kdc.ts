/**
 * A throw-away MIT Kerberos realm on loopback, for tests and the demo.
 *
 * Everything lives in `opts.dir` (configs, database, stash, keytabs, ccaches, logs); the KDC listens on
 * 127.0.0.1 only, on a TCP+UDP port picked at run time, so several realms can run side by side.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { accessSync, constants as fsConstants } from 'node:fs';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { createSocket } from 'node:dgram';
import path from 'node:path';

export interface KdcUser {
  name: string;
  principal: string;
  password: string;
  keytab: string;
}

export interface Kdc {
  realm: string;
  dir: string;
  krb5Config: string;
  kdcPort: number;
  serviceKeytab: string;
  /** e.g. HTTP/localhost@LAB.TEST */
  servicePrincipal: string;
  deviceKeytab: string;
  /** e.g. host/ws01.lab.test@LAB.TEST */
  devicePrincipal: string;
  users: KdcUser[];
  /** Env for a process acting as `principal` (a user name, or a full principal known to this realm):
   *  KRB5_CONFIG and KRB5CCNAME (a fresh FILE: ccache in dir, filled with kinit -k -t <keytab>). */
  kinit(principal: string): Promise<Record<string, string>>;
  /** Env for the accepting side: KRB5_CONFIG, KRB5_KTNAME (the service keytab) and KRB5RCACHEDIR (dir, so the
   *  replay cache is not written to /var/tmp). */
  serverEnv(): Record<string, string>;
  /** Kills krb5kdc and waits for it to exit. */
  stop(): Promise<void>;
  /** Starts krb5kdc again on the same port (tests use stop/start to simulate an outage). */
  start(): Promise<void>;
}

export interface StartKdcOptions {
  dir: string;
  realm?: string;
  users?: string[];
  hostName?: string;
  deviceName?: string;
}

const TOOLS = ['krb5kdc', 'kdb5_util', 'kadmin.local', 'kinit'] as const;
type Tool = (typeof TOOLS)[number];

function findTool(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(path.delimiter), '/usr/sbin', '/sbin', '/usr/local/sbin'];
  for (const d of dirs) {
    if (!d) continue;
    const p = path.join(d, name);
    try {
      accessSync(p, fsConstants.X_OK);
      return p;
    } catch {
      // keep looking
    }
  }
  return undefined;
}

/** True when krb5kdc, kdb5_util, kadmin.local and kinit are installed (PATH, /usr/sbin, /sbin). */
export function kerberosToolsAvailable(): boolean {
  return TOOLS.every((t) => findTool(t) !== undefined);
}

function toolPaths(): Record<Tool, string> {
  const out = {} as Record<Tool, string>;
  const missing: string[] = [];
  for (const t of TOOLS) {
    const p = findTool(t);
    if (p) out[t] = p;
    else missing.push(t);
  }
  if (missing.length) {
    throw new Error(`MIT Kerberos tools not found: ${missing.join(', ')} (Debian: apt-get install krb5-kdc krb5-admin-server krb5-user)`);
  }
  return out;
}

// One process-wide safety net: a krb5kdc must never outlive the process that started it.
const liveChildren = new Set<ChildProcess>();
let exitHookInstalled = false;
function track(child: ChildProcess): void {
  liveChildren.add(child);
  child.once('exit', () => liveChildren.delete(child));
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on('exit', () => {
      for (const c of liveChildren) {
        try {
          c.kill('SIGKILL');
        } catch {
          // already gone
        }
      }
    });
  }
}

interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv, input?: string): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    // A tool that exits before reading its input (e.g. kinit failing fast) must not crash us with EPIPE.
    child.stdin.on('error', () => undefined);
    child.stdin.end(input ?? '');
  });
}

/** A port free for both TCP and UDP on 127.0.0.1 right now (krb5kdc binds both). */
async function freeLoopbackPort(): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const srv = createServer();
    const port = await new Promise<number>((resolve, reject) => {
      srv.once('error', reject);
      srv.listen(0, '127.0.0.1', () => resolve((srv.address() as AddressInfo).port));
    });
    const udp = createSocket('udp4');
    const udpOk = await new Promise<boolean>((resolve) => {
      udp.once('error', () => resolve(false));
      udp.bind(port, '127.0.0.1', () => resolve(true));
    });
    await new Promise<void>((r) => srv.close(() => r()));
    if (udpOk) {
      await new Promise<void>((r) => udp.close(() => r()));
      return port;
    }
    try {
      udp.close();
    } catch {
      // never bound
    }
  }
  throw new Error('no free loopback port for the KDC');
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function krb5Conf(realm: string, port: number, dir: string, hostName: string): string {
  return `# Throw-away lab realm; generated by lab/kdc.ts
[libdefaults]
  default_realm = ${realm}
  dns_lookup_kdc = false
  dns_lookup_realm = false
  dns_canonicalize_hostname = false
  rdns = false
  udp_preference_limit = 1
  # keep every file this realm's clients touch inside the lab dir
  default_ccache_name = FILE:${dir}/ccache-default
  default_keytab_name = FILE:${dir}/http.keytab
  default_client_keytab_name = FILE:${dir}/client-default.keytab

[realms]
  ${realm} = {
    kdc = 127.0.0.1:${port}
  }

[domain_realm]
${[...new Set([hostName, 'localhost', '.lab.test', 'lab.test'])].map((h) => `  ${h} = ${realm}`).join('\n')}
`;
}

function kdcConf(realm: string, port: number, dir: string): string {
  return `# Throw-away lab KDC; generated by lab/kdc.ts
[kdcdefaults]
  kdc_listen = 127.0.0.1:${port}
  kdc_tcp_listen = 127.0.0.1:${port}

[realms]
  ${realm} = {
    database_name = ${dir}/principal
    key_stash_file = ${dir}/stash
    acl_file = ${dir}/kadm5.acl
    max_life = 10h
    max_renewable_life = 1d
  }

[logging]
  kdc = FILE:${dir}/kdc.log
  admin_server = FILE:${dir}/kadmin.log
  default = FILE:${dir}/krb5lib.log
`;
}

function randomPassword(): string {
  return randomBytes(18).toString('base64url');
}

const SAFE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

export async function startKdc(opts: StartKdcOptions): Promise<Kdc> {
  const tools = toolPaths();
  const realm = opts.realm ?? 'LAB.TEST';
  const hostName = opts.hostName ?? 'localhost';
  const deviceName = opts.deviceName ?? 'ws01';
  const userNames = opts.users ?? [];
  for (const n of [hostName, deviceName, ...userNames]) {
    if (!SAFE_NAME.test(n)) throw new Error(`startKdc: unsafe name ${JSON.stringify(n)}`);
  }
  if (!/^[A-Z0-9][A-Z0-9.-]*$/.test(realm)) throw new Error(`startKdc: realm must be upper case, got ${realm}`);

  const dir = path.resolve(opts.dir);
  await mkdir(dir, { recursive: true });
  const krb5Config = path.join(dir, 'krb5.conf');
  const kdcProfile = path.join(dir, 'kdc.conf');
  const serviceKeytab = path.join(dir, 'http.keytab');
  const deviceKeytab = path.join(dir, 'device.keytab');
  const servicePrincipal = `HTTP/${hostName}@${realm}`;
  const devicePrincipal = `host/${deviceName}.lab.test@${realm}`;
  const users: KdcUser[] = userNames.map((name) => ({
    name,
    principal: `${name}@${realm}`,
    password: randomPassword(),
    keytab: path.join(dir, `${name}.keytab`),
  }));

  // Only what the tools need: no inherited KRB5CCNAME etc. that could point outside dir.
  const toolEnv: NodeJS.ProcessEnv = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    KRB5_CONFIG: krb5Config,
    KRB5_KDC_PROFILE: kdcProfile,
    KRB5CCNAME: `FILE:${dir}/ccache-tools`,
    KRB5RCACHEDIR: dir,
  };

  let port = await freeLoopbackPort();
  const writeConfigs = async () => {
    await writeFile(krb5Config, krb5Conf(realm, port, dir, hostName));
    await writeFile(kdcProfile, kdcConf(realm, port, dir));
  };
  await writeConfigs();
  await writeFile(path.join(dir, 'kadm5.acl'), '');

  const created = await run(tools.kdb5_util, ['-r', realm, 'create', '-s', '-P', randomPassword()], toolEnv);
  if (created.code !== 0) throw new Error(`kdb5_util create failed (${created.code}): ${created.stderr.trim()}`);

  // One kadmin.local run reading commands from stdin; it exits 0 even when a command fails, hence the check below.
  const cmds = [
    `addprinc -randkey ${servicePrincipal}`,
    `ktadd -k ${serviceKeytab} -norandkey ${servicePrincipal}`,
    `addprinc -randkey ${devicePrincipal}`,
    `ktadd -k ${deviceKeytab} -norandkey ${devicePrincipal}`,
    ...users.flatMap((u) => [`addprinc -pw ${u.password} ${u.principal}`, `ktadd -k ${u.keytab} -norandkey ${u.principal}`]),
  ];
  const admin = await run(tools['kadmin.local'], ['-r', realm], toolEnv, cmds.join('\n') + '\n');
  const adminErrors = admin.stderr.split('\n').filter((l) => / while /.test(l));
  if (admin.code !== 0 || adminErrors.length) {
    throw new Error(`kadmin.local failed: ${adminErrors.join('; ') || admin.stderr.trim()}`);
  }
  for (const kt of [serviceKeytab, deviceKeytab, ...users.map((u) => u.keytab)]) {
    const s = await stat(kt).catch(() => undefined);
    if (!s || s.size === 0) throw new Error(`kadmin.local did not write ${kt}: ${admin.stderr.trim()}`);
  }

  const keytabFor = new Map<string, string>([
    [servicePrincipal, serviceKeytab],
    [devicePrincipal, deviceKeytab],
    ...users.map((u) => [u.principal, u.keytab] as [string, string]),
  ]);

  let child: ChildProcess | undefined;
  let ccacheCounter = 0;

  const kinitInto = async (principal: string, ccache: string): Promise<RunResult> => {
    const keytab = keytabFor.get(principal);
    if (!keytab) throw new Error(`kinit: ${principal} is not a principal of this lab realm`);
    return run(tools.kinit, ['-k', '-t', keytab, '-c', ccache, principal], { ...toolEnv, KRB5CCNAME: ccache });
  };

  const kdcLogTail = async () => {
    const log = await readFile(path.join(dir, 'kdc.log'), 'utf8').catch(() => '');
    return log.trim().split('\n').slice(-3).join(' | ');
  };

  /** Spawns krb5kdc and waits until it issues a ticket; resolves false if it exited (port taken). */
  const launch = async (): Promise<boolean> => {
    // setpriv --pdeathsig: the kernel kills krb5kdc even if this process dies without running 'exit' handlers.
    const setpriv = process.platform === 'linux' ? findTool('setpriv') : undefined;
    const [cmd, args] = setpriv
      ? [setpriv, ['--pdeathsig', 'KILL', '--', tools.krb5kdc, '-n', '-r', realm]]
      : [tools.krb5kdc, ['-n', '-r', realm]];
    const c = spawn(cmd, args, { env: toolEnv, stdio: 'ignore' });
    track(c);
    let exited = false;
    c.once('exit', () => (exited = true));
    await new Promise<void>((resolve, reject) => {
      c.once('spawn', resolve);
      c.once('error', reject);
    });
    child = c;
    const probe = `FILE:${dir}/ccache-probe`;
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      if (exited) {
        child = undefined;
        return false;
      }
      const r = await kinitInto(devicePrincipal, probe);
      if (r.code === 0) return true;
      await sleep(30);
    }
    await stopChild();
    throw new Error(`krb5kdc did not answer on 127.0.0.1:${port} within 10 s: ${await kdcLogTail()}`);
  };

  const stopChild = async (): Promise<void> => {
    const c = child;
    child = undefined;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise<void>((r) => c.once('exit', () => r()));
    c.kill('SIGTERM');
    const timer = setTimeout(() => c.kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(timer);
  };

  // Another process may grab the port between probing and binding: pick a new one and retry.
  let started = false;
  for (let attempt = 0; attempt < 5 && !started; attempt++) {
    if (attempt > 0) {
      port = await freeLoopbackPort();
      await writeConfigs();
    }
    started = await launch();
  }
  if (!started) throw new Error(`krb5kdc would not start: ${await kdcLogTail()}`);

  const qualify = (p: string) => (p.includes('@') ? p : `${p}@${realm}`);

  return {
    realm,
    dir,
    krb5Config,
    get kdcPort() {
      return port;
    },
    serviceKeytab,
    servicePrincipal,
    deviceKeytab,
    devicePrincipal,
    users,
    async kinit(principal: string) {
      const p = qualify(principal);
      const safe = p.replace(/[^A-Za-z0-9._-]/g, '_');
      const ccache = `FILE:${path.join(dir, `ccache-${safe}-${++ccacheCounter}`)}`;
      const r = await kinitInto(p, ccache);
      if (r.code !== 0) throw new Error(`kinit ${p} failed: ${r.stderr.trim()}`);
      return { KRB5_CONFIG: krb5Config, KRB5CCNAME: ccache };
    },
    serverEnv() {
      return { KRB5_CONFIG: krb5Config, KRB5_KTNAME: `FILE:${serviceKeytab}`, KRB5RCACHEDIR: dir };
    },
    stop: stopChild,
    async start() {
      if (child) return;
      if (!(await launch())) {
        throw new Error(`krb5kdc could not start again on 127.0.0.1:${port} (port taken?): ${await kdcLogTail()}`);
      }
    },
  };
}
