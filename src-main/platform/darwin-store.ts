import { createHash, X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { describeCertificate, parseCertificate } from '../base/certinfo.js';
import { AgentError } from '../base/errors.js';
import { runCommand, type Command, type CommandResult, type CommandRunner } from '../base/exec.js';
import { ensurePrivateDir } from '../base/fsutil.js';
import { oneTimePassword } from './pkcs12.js';
import type { CertificateStore, InstallRequest, StoredCertificate } from './types.js';

/** Applications allowed to use the key without a prompt (`security import -T`): the browsers, besides the agent. */
export const MAC_TRUSTED_APPS = [
  '/Applications/Safari.app',
  '/Applications/Google Chrome.app',
  '/Applications/Microsoft Edge.app',
  '/Applications/Firefox.app',
];

/**
 * macOS `security` (and the system's LibreSSL, which writes the PKCS#12 that `security import` reads:
 * 3DES/SHA-1 — it refuses the AES/PBKDF2 format of OpenSSL 3 with "MAC verification failed").
 */
export const darwinCommands = {
  makePkcs12: (keyFile: string, certFile: string, chainFile: string | undefined, label: string, out: string): Command => ({
    file: '/usr/bin/openssl',
    args: ['pkcs12', '-export', '-inkey', keyFile, '-in', certFile, ...(chainFile ? ['-certfile', chainFile] : []), '-name', label,
      '-keypbe', 'PBE-SHA1-3DES', '-certpbe', 'PBE-SHA1-3DES', '-macalg', 'sha1', '-passout', 'env:DTA_P12_PASSWORD', '-out', out],
  }),
  /**
   * -x: the private key is not extractable after import. -T: only these applications may use it (no -A).
   * `security` takes the PKCS#12 password only as -P: it is random, used once, for a file in the user's
   * private directory that is deleted straight after.
   */
  importPkcs12: (p12: string, password: string, keychain: string, apps: string[]): Command => ({
    file: '/usr/bin/security',
    args: ['import', p12, '-k', keychain, '-f', 'pkcs12', '-P', password, '-x', ...apps.flatMap((a) => ['-T', a])],
  }),
  findIdentities: (keychain: string): Command => ({ file: '/usr/bin/security', args: ['find-identity', keychain] }),
  /** Every certificate with its SHA-1/SHA-256 hashes and PEM; ours are picked by issuer afterwards. */
  findCertificates: (keychain: string): Command => ({ file: '/usr/bin/security', args: ['find-certificate', '-a', '-Z', '-p', keychain] }),
  deleteIdentity: (sha1: string, keychain: string): Command => ({ file: '/usr/bin/security', args: ['delete-identity', '-Z', sha1, keychain] }),
  /** Safari and other Keychain clients choose this identity for the service without asking. */
  setIdentityPreference: (sha1: string, service: string, keychain: string): Command => ({ file: '/usr/bin/security', args: ['set-identity-preference', '-Z', sha1, '-s', service, keychain] }),
  clearIdentityPreference: (service: string, keychain: string): Command => ({ file: '/usr/bin/security', args: ['set-identity-preference', '-n', '-s', service, keychain] }),
};

export interface MacIdentity {
  sha1: string;
  name: string;
  /** The reason macOS gives for an invalid identity (CSSMERR_TP_NOT_TRUSTED, …), if any. */
  problem?: string;
}

/** Parses the "Matching identities" section of `security find-identity` (all identities, valid or not). */
export function parseFindIdentity(stdout: string): MacIdentity[] {
  const matching = stdout.split(/Valid identities only/)[0] ?? '';
  const out: MacIdentity[] = [];
  for (const line of matching.split('\n')) {
    const m = /^\s*\d+\)\s+([0-9A-Fa-f]{40})\s+"(.*)"(?:\s+\(([^)]+)\))?\s*$/.exec(line);
    if (m) out.push({ sha1: m[1]!.toUpperCase(), name: m[2]!, ...(m[3] ? { problem: m[3] } : {}) });
  }
  return out;
}

/** Parses `security find-certificate -a -Z -p`: "SHA-256 hash:", "SHA-1 hash:", attributes, then the PEM. */
export function parseFindCertificate(stdout: string): { sha1: string; sha256?: string; pem: string }[] {
  const out: { sha1: string; sha256?: string; pem: string }[] = [];
  let sha1 = '';
  let sha256: string | undefined;
  let pem: string[] | undefined;
  for (const line of stdout.split(/\r?\n/)) {
    const h = /^SHA-(256|1) hash: ([0-9A-Fa-f]+)\s*$/.exec(line);
    if (h) {
      if (h[1] === '1') sha1 = h[2]!.toUpperCase();
      else sha256 = h[2]!.toUpperCase();
    } else if (line.startsWith('-----BEGIN CERTIFICATE-----')) {
      pem = [line];
    } else if (pem) {
      pem.push(line);
      if (line.startsWith('-----END CERTIFICATE-----')) {
        if (sha1) out.push({ sha1, ...(sha256 ? { sha256 } : {}), pem: pem.join('\n') + '\n' });
        pem = undefined;
        sha1 = '';
        sha256 = undefined;
      }
    }
  }
  return out;
}

export type MacFailure = 'already-exists' | 'wrong-password' | 'interaction-not-allowed' | 'access-denied' | 'not-found' | 'other';

/** `security` prints failures as "security: <Function>: <message>" on stderr. */
export function parseSecurityError(res: Pick<CommandResult, 'stdout' | 'stderr'>): { kind: MacFailure; message: string } {
  const text = `${res.stderr}\n${res.stdout}`.trim();
  const message = /security: (?:\w+: )?(.+)$/m.exec(text)?.[1]?.trim() ?? text.split('\n')[0] ?? '';
  let kind: MacFailure = 'other';
  if (/already exists in the keychain/i.test(text)) kind = 'already-exists';
  else if (/MAC verification failed|wrong password/i.test(text)) kind = 'wrong-password';
  else if (/User interaction is not allowed/i.test(text)) kind = 'interaction-not-allowed';
  else if (/Permission denied|Operation not permitted|not have permission|write permissions error/i.test(text)) kind = 'access-denied';
  else if (/could not be found|Unable to delete identity|no identity found/i.test(text)) kind = 'not-found';
  return { kind, message };
}

export function loginKeychain(home: string): string {
  return path.join(home, 'Library', 'Keychains', 'login.keychain-db');
}

function sha1Of(pem: string): string {
  return createHash('sha1').update(new X509Certificate(pem).raw).digest('hex').toUpperCase();
}

export interface MacStoreOptions {
  keychain: string;
  workDir: string;
  /** The agent's own executable, trusted to use the key besides the browsers. */
  agentPath: string;
  trustedApps?: string[];
  run?: CommandRunner;
}

/** The user's login keychain. A certificate's id is its SHA-1 hash (what `security` selects identities by). */
export class MacKeychainStore implements CertificateStore {
  readonly description: string;
  private readonly run: CommandRunner;

  constructor(private readonly opts: MacStoreOptions) {
    this.description = `macOS login keychain ${opts.keychain}`;
    this.run = opts.run ?? runCommand;
  }

  private async exec(cmd: Command, what: string, tolerate: MacFailure[] = []): Promise<CommandResult> {
    let res: CommandResult;
    try {
      res = await this.run(cmd);
    } catch (e) {
      throw new AgentError('local', 'STORE_TOOL_MISSING', `${cmd.file} could not be started to ${what}: ${(e as Error).message}.`);
    }
    if (res.code !== 0) {
      const err = parseSecurityError(res);
      if (tolerate.includes(err.kind)) return res;
      const remedy: Record<MacFailure, string> = {
        'already-exists': 'Run again; the agent removes the existing entry first.',
        'wrong-password': 'Report this with the --debug output: the PKCS#12 the agent made was not readable by this macOS version.',
        'interaction-not-allowed': 'The login keychain is locked (no user session): the user task runs when the user is logged in.',
        'access-denied': 'Check the permissions of ~/Library/Keychains; the agent must run as the logged-in user.',
        'not-found': 'Run again with --debug; the keychain changed while the agent was working.',
        other: 'Run again with --debug and give the output to the help desk.',
      };
      throw new AgentError('local', `KEYCHAIN_${err.kind.toUpperCase().replace(/-/g, '_')}`, `Could not ${what} in ${this.opts.keychain}: ${err.message || `exit ${res.code}`}.`, remedy[err.kind]);
    }
    return res;
  }

  async list(): Promise<StoredCertificate[]> {
    if (!fs.existsSync(this.opts.keychain)) return [];
    const identities = parseFindIdentity((await this.exec(darwinCommands.findIdentities(this.opts.keychain), 'list identities')).stdout);
    if (!identities.length) return [];
    const certs = parseFindCertificate((await this.exec(darwinCommands.findCertificates(this.opts.keychain), 'list certificates')).stdout);
    const withKey = new Set(identities.map((i) => i.sha1));
    return certs.filter((c) => withKey.has(c.sha1)).map((c) => ({ id: c.sha1, pem: c.pem, info: describeCertificate(parseCertificate(c.pem)) }));
  }

  async install(req: InstallRequest): Promise<StoredCertificate> {
    const sha1 = sha1Of(req.certPem);
    const tmp = fs.mkdtempSync(path.join(ensurePrivateDir(this.opts.workDir), 'p12-'));
    try {
      const keyFile = path.join(tmp, 'key.pem');
      const certFile = path.join(tmp, 'cert.pem');
      const chainFile = path.join(tmp, 'chain.pem');
      const p12 = path.join(tmp, 'bundle.p12');
      fs.writeFileSync(keyFile, req.keyPem, { mode: 0o600 });
      fs.writeFileSync(certFile, req.certPem, { mode: 0o600 });
      if (req.chainPem.length) fs.writeFileSync(chainFile, req.chainPem.join('\n'), { mode: 0o600 });
      const password = oneTimePassword();
      const mk = darwinCommands.makePkcs12(keyFile, certFile, req.chainPem.length ? chainFile : undefined, req.label, p12);
      await this.exec({ ...mk, env: { DTA_P12_PASSWORD: password } }, 'package the certificate');
      const apps = [this.opts.agentPath, ...(this.opts.trustedApps ?? MAC_TRUSTED_APPS)];
      // "already exists" is fine: an earlier interrupted run imported the same identity.
      await this.exec(darwinCommands.importPkcs12(p12, password, this.opts.keychain, apps), 'import the certificate', ['already-exists']);
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
    const installed = (await this.list()).find((c) => c.id === sha1);
    if (!installed) {
      throw new AgentError('local', 'KEYCHAIN_OTHER', `The certificate was imported into ${this.opts.keychain} but is not listed as an identity (certificate with its key) afterwards.`,
        'Run again with --debug; if it repeats, run with --forceRenewal.');
    }
    return installed;
  }

  async remove(id: string): Promise<void> {
    await this.exec(darwinCommands.deleteIdentity(id, this.opts.keychain), `remove the identity ${id}`, ['not-found']);
  }

  /** Identity preferences (Safari, Keychain clients) for each mTLS service; returns the services set. */
  async preferIdentity(sha1: string, services: string[]): Promise<void> {
    for (const s of services) await this.exec(darwinCommands.setIdentityPreference(sha1, s, this.opts.keychain), `set the identity preference for ${s}`);
  }

  async clearPreferences(services: string[]): Promise<void> {
    for (const s of services) await this.exec(darwinCommands.clearIdentityPreference(s, this.opts.keychain), `clear the identity preference for ${s}`, ['not-found']);
  }
}

/**
 * Identity-preference services for content-settings patterns: `https://[*.]host` → `https://host/` and the
 * domain form `*.host`; `https://host:port` → `https://host:port/`.
 */
export function identityServices(patterns: string[]): string[] {
  const out = new Set<string>();
  for (const p of patterns) {
    const m = /^(https?):\/\/(\[\*\.\])?([^/]+)/.exec(p);
    if (!m) continue;
    out.add(`${m[1]}://${m[3]}/`);
    if (m[2]) out.add(`*.${m[3]!.replace(/:\d+$/, '')}`);
  }
  return [...out];
}
