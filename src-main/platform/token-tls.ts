import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Duplex } from 'node:stream';
import { AgentError } from '../base/errors.js';
import { P11KIT_CLIENT_LIBRARIES } from './p11kit-bridge.js';

/**
 * The agent's own mutual-TLS checks with a key that lives in a PKCS#11 token (the NSS software token or the TPM
 * token): Node's TLS cannot be handed such a key, so `openssl s_client` presents it through libp11's PKCS#11 engine,
 * in a child process whose standard input and output carry the plaintext of one HTTP exchange.
 *
 * The TPM token is not loaded into that child: libp11 makes itself OpenSSL's default RSA/EC method when it loads a
 * key (ENGINE_set_default_string in its load_privkey, process-wide), and tss2-esys inside tpm2-pkcs11 then cannot
 * build the software RSA key for its salted session (EVP_PKEY_fromdata_init has no key manager under an engine:
 * "Could not create rsa key", C_Sign → CKR_GENERAL_ERROR; libp11 #676, tpm2-tss #3151). So `p11-kit server` runs
 * tpm2-pkcs11 in a process of its own, on a private socket, and the engine loads p11-kit's client module.
 */
export const PKCS11_ENGINES = ['/usr/lib/x86_64-linux-gnu/engines-3/pkcs11.so', '/usr/lib/aarch64-linux-gnu/engines-3/pkcs11.so', '/usr/lib64/engines-3/pkcs11.so'];

/** What the child needs to reach one token. */
export interface TokenTlsSpec {
  /** The PKCS#11 module that holds the key. */
  module: string;
  /** NSS softokn's init parameters (its database); absent for other modules. */
  initArgs?: string;
  tokenLabel: string;
  keyId: string;
  /** Serve the module from `p11-kit server` (a module that uses OpenSSL itself: tpm2-pkcs11). */
  outOfProcess?: boolean;
  /** The environment the module needs (TPM: TCTI, store, D-Bus session for tabrmd); nothing else is passed. */
  moduleEnv?: Record<string, string>;
  /** Where the engine and p11-kit's client are looked for (tests). */
  engines?: string[];
  p11KitClients?: string[];
}

// The presenter's interfaces live with the key store's (keystore.ts), which the core may see.
export type { TokenTlsConnection, TokenTlsOpen, TokenTlsPresenter } from './keystore.js';
import type { TokenTlsConnection, TokenTlsOpen, TokenTlsPresenter } from './keystore.js';

/** The variables a child may inherit besides what the module needs: no proxy or SCEP secrets, no tokens. */
const BASE_ENV = ['PATH', 'LANG', 'LC_ALL', 'TZ'];

function baseEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const k of BASE_ENV) if (process.env[k]) env[k] = process.env[k]!;
  return { ...env, ...extra };
}

/** libp11's engine for one module, from a 0600 file (a PIN, if ever needed, would be here and never on argv). */
export function engineConfig(engine: string, module: string, initArgs?: string): string {
  return ['openssl_conf = init', '[init]', 'engines = engines', '[engines]', 'pkcs11 = p11', '[p11]', 'engine_id = pkcs11', `dynamic_path = ${engine}`,
    `MODULE_PATH = ${module}`, ...(initArgs ? [`INIT_ARGS = ${initArgs}`] : []), 'init = 0', ''].join('\n');
}

/** The key's PKCS#11 URI (tokens of ours have an empty user PIN). */
export function keyUri(tokenLabel: string, keyId: string): string {
  return `pkcs11:token=${encodeURIComponent(tokenLabel)};id=${keyId.replace(/../g, (b) => `%${b}`)};type=private;pin-value=`;
}

/** s_client's arguments: verified server name, the engine key, nothing printed but the plaintext. */
export function sClientArgs(o: { host: string; port: number; serverName: string; dir: string; keyUri: string; chain: boolean }): string[] {
  const ip = net.isIP(o.serverName) !== 0;
  return ['s_client', '-connect', `${o.host}:${o.port}`, ...(ip ? ['-noservername', '-verify_ip', o.serverName] : ['-servername', o.serverName, '-verify_hostname', o.serverName]),
    '-CAfile', path.join(o.dir, 'ca.pem'), '-verify_return_error', '-cert', path.join(o.dir, 'cert.pem'), ...(o.chain ? ['-cert_chain', path.join(o.dir, 'chain.pem')] : []),
    '-key', `org.openssl.engine:pkcs11:${o.keyUri}`, '-quiet'];
}

export function tokenTlsUnavailable(spec: Pick<TokenTlsSpec, 'outOfProcess' | 'engines' | 'p11KitClients'>): string | undefined {
  if (!(spec.engines ?? PKCS11_ENGINES).some((p) => fs.existsSync(p))) return 'the OpenSSL PKCS#11 engine is not installed (Debian/Ubuntu: apt install libengine-pkcs11-openssl)';
  if (spec.outOfProcess && !(spec.p11KitClients ?? P11KIT_CLIENT_LIBRARIES).some((p) => fs.existsSync(p))) return 'p11-kit\'s client module is not installed (Debian/Ubuntu: apt install p11-kit p11-kit-modules)';
  return undefined;
}

export function tokenTlsPresenter(spec: TokenTlsSpec): TokenTlsPresenter {
  return {
    description: spec.outOfProcess ? 'openssl (PKCS#11 engine) through p11-kit server' : 'openssl (PKCS#11 engine)',
    open: (o) => openTokenTls(spec, o),
  };
}

async function waitForSocket(file: string, child: ChildProcess, until: number): Promise<void> {
  while (!fs.existsSync(file)) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`p11-kit server ended (${child.exitCode ?? child.signalCode})`);
    if (Date.now() > until) throw new Error('p11-kit server did not open its socket in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function openTokenTls(spec: TokenTlsSpec, o: TokenTlsOpen): Promise<TokenTlsConnection> {
  const why = tokenTlsUnavailable(spec);
  if (why) throw new AgentError('local', 'TOKEN_TLS_UNAVAILABLE', `The agent cannot present the device key in the token for its own mTLS check: ${why}.`, `Install it; browsers are not affected.`);
  const engine = (spec.engines ?? PKCS11_ENGINES).find((p) => fs.existsSync(p))!;
  const until = Date.now() + o.deadlineMs;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dta-tls-'));
  fs.chmodSync(dir, 0o700);
  const children: ChildProcess[] = [];
  const cleanup = async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await Promise.all(children.map((c) => (c.exitCode === null && c.signalCode === null ? new Promise((r) => c.once('close', r)) : undefined)));
    fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    const write = (name: string, text: string) => fs.writeFileSync(path.join(dir, name), text, { mode: 0o600 });
    write('ca.pem', o.caPem.join('\n'));
    write('cert.pem', o.certPem);
    if (o.chainPem?.length) write('chain.pem', o.chainPem.join('\n'));
    let env: Record<string, string>;
    if (spec.outOfProcess) {
      const client = (spec.p11KitClients ?? P11KIT_CLIENT_LIBRARIES).find((p) => fs.existsSync(p))!;
      const socket = path.join(dir, 'p11.sock');
      const server = spawn('p11-kit', ['server', '--foreground', '--provider', spec.module, '--name', socket, `pkcs11:token=${encodeURIComponent(spec.tokenLabel)}`],
        { env: baseEnv(spec.moduleEnv), stdio: ['ignore', 'ignore', 'pipe'] });
      children.push(server);
      let serverErr = '';
      server.stderr!.on('data', (d) => (serverErr = (serverErr + d).slice(-2000)));
      server.on('error', (e) => (serverErr += e.message));
      await waitForSocket(socket, server, until).catch((e: Error) => {
        throw new Error(`${e.message}${serverErr ? `: ${lastLines(serverErr)}` : ''}`);
      });
      write('openssl.cnf', engineConfig(engine, client));
      env = baseEnv({ OPENSSL_CONF: path.join(dir, 'openssl.cnf'), P11_KIT_SERVER_ADDRESS: `unix:path=${socket}` });
    } else {
      write('openssl.cnf', engineConfig(engine, spec.module, spec.initArgs));
      env = baseEnv({ OPENSSL_CONF: path.join(dir, 'openssl.cnf'), ...spec.moduleEnv });
    }
    const child = spawn('openssl', sClientArgs({ ...o.connect, serverName: o.serverName, dir, keyUri: keyUri(spec.tokenLabel, spec.keyId), chain: Boolean(o.chainPem?.length) }), { env, stdio: ['pipe', 'pipe', 'pipe'] });
    children.push(child);
    let err = '';
    child.stderr!.on('data', (d) => (err = (err + d).slice(-4000)));
    child.on('error', (e) => (err += e.message));
    const stream = Duplex.from({ readable: child.stdout!, writable: child.stdin! });
    child.stdin!.on('error', () => undefined);
    const timer = setTimeout(() => void cleanup(), Math.max(0, until - Date.now()));
    child.once('close', () => {
      clearTimeout(timer);
      void cleanup();
    });
    return { stream, failure: () => (err.trim() ? lastLines(err) : undefined), close: cleanup };
  } catch (e) {
    await cleanup();
    throw e;
  }
}

/** The child's last meaningful lines, for a message (no secrets reach the child's output: the PIN is empty). */
function lastLines(text: string): string {
  return text.split('\n').map((l) => l.trim()).filter((l) => l && !/^(WARNING|Can't use SSL_get_servername|depth=|verify return)/.test(l)).slice(-3).join(' ').slice(0, 400);
}
