import { createHash, createPrivateKey, X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { describeCertificate, parseCertificate } from '../base/certinfo.js';
import { AgentError } from '../base/errors.js';
import { runCommand, type Command, type CommandResult, type CommandRunner } from '../base/exec.js';
import { ensurePrivateDir } from '../base/fsutil.js';
import type { CertificateStore, InstallRequest, StoredCertificate } from './types.js';

/**
 * Applications allowed to use the key (`security import -T`): the browsers, besides the agent. `security import`
 * aborts the whole import (exit 1, nothing imported) when a -T path does not exist, so only installed ones are
 * passed (`installedApps`). Since macOS 10.12 the ACL alone does not stop key-use prompts: the key's partition
 * list decides, and setting it (`security set-key-partition-list`) needs the user's keychain password, which the
 * agent does not have — a browser may ask once ("Always Allow"). VERIFY-MACOS.md says how to check.
 */
export const MAC_TRUSTED_APPS = [
  '/Applications/Safari.app',
  '/Applications/Google Chrome.app',
  '/Applications/Microsoft Edge.app',
  '/Applications/Firefox.app',
];

/** The -T list: the agent plus those browsers that are installed (a missing path makes `security import` fail). */
export function installedApps(apps: string[], exists: (p: string) => boolean = fs.existsSync): string[] {
  return apps.filter((a) => exists(a));
}

/**
 * macOS `security`. The key and the certificate are imported as two items, not as one PKCS#12: on macOS 15 the
 * PKCS#12 path (SecPKCS12Import) does not pass key attributes on, so `-x` (non-extractable) was ignored there.
 * A bare private key goes through SecKeychainItemImport with the attributes. Whatever the path, the key's
 * Extractable attribute is read back afterwards (`dump-keychain`) and an extractable key is deleted again.
 */
export const darwinCommands = {
  /** -x: the private key is not extractable after import. -T: only these applications may use it (no -A). */
  importKey: (keyFile: string, keychain: string, apps: string[]): Command => ({
    file: '/usr/bin/security',
    args: ['import', keyFile, '-k', keychain, '-t', 'priv', '-f', 'openssl', '-x', ...apps.flatMap((a) => ['-T', a])],
  }),
  importCertificate: (certFile: string, keychain: string): Command => ({ file: '/usr/bin/security', args: ['import', certFile, '-k', keychain, '-t', 'cert'] }),
  findIdentities: (keychain: string): Command => ({ file: '/usr/bin/security', args: ['find-identity', keychain] }),
  /** Every certificate with its SHA-1/SHA-256 hashes and PEM; ours are picked by issuer afterwards. */
  findCertificates: (keychain: string): Command => ({ file: '/usr/bin/security', args: ['find-certificate', '-a', '-Z', '-p', keychain] }),
  /** Items with their attributes (no secrets: without -d nothing is decrypted): the key's Extractable flag. */
  dumpKeychain: (keychain: string): Command => ({ file: '/usr/bin/security', args: ['dump-keychain', keychain] }),
  deleteIdentity: (sha1: string, keychain: string): Command => ({ file: '/usr/bin/security', args: ['delete-identity', '-Z', sha1, keychain] }),
  /** Safari and other Keychain clients choose this identity for the service without asking. */
  setIdentityPreference: (sha1: string, service: string, keychain: string): Command => ({ file: '/usr/bin/security', args: ['set-identity-preference', '-Z', sha1, '-s', service, keychain] }),
  clearIdentityPreference: (service: string, keychain: string): Command => ({ file: '/usr/bin/security', args: ['set-identity-preference', '-n', '-s', service, keychain] }),
};

/** A private key item of `security dump-keychain`: its label (the public-key hash) and the CSSM key flags. */
export interface MacKeyItem {
  /** Attribute 6 (kSecKeyLabel = application label): SHA-1 of the public key, upper-case hex. */
  labelHex?: string;
  printName?: string;
  /** Attribute 16 (kSecKeyExtractable). */
  extractable?: boolean;
  /** Attribute 14 (kSecKeySensitive). */
  sensitive?: boolean;
}

/**
 * Parses the private-key records (class 0x00000010, CSSM_DL_DB_RECORD_PRIVATE_KEY) of `security dump-keychain`:
 * numbered attributes as `0x0000000N <type>=value`, numbered after the CSSM key schema (1 PrintName,
 * 6 Label, 14 Sensitive, 16 Extractable, …). Numbers, not names: the same on every macOS language.
 */
export function parseDumpKeychainKeys(stdout: string): MacKeyItem[] {
  const out: MacKeyItem[] = [];
  for (const rec of stdout.split(/^keychain: /m).slice(1)) {
    if (!/^class: 0x00000010\b/m.test(rec)) continue;
    const attr = (n: number) => new RegExp(`^\\s*0x${n.toString(16).padStart(8, '0')} <(\\w+)>=(.*)$`, 'mi').exec(rec);
    const flag = (n: number) => {
      const m = attr(n);
      return m && m[1] === 'uint32' && /^0x[0-9a-f]+/i.test(m[2]!) ? parseInt(m[2]!, 16) !== 0 : undefined;
    };
    const label = attr(6)?.[2];
    const name = attr(1)?.[2];
    const item: MacKeyItem = {};
    const hex = label ? /^0x([0-9A-Fa-f]+)/.exec(label)?.[1] : undefined;
    if (hex) item.labelHex = hex.toUpperCase();
    const pn = name ? /^"(.*)"/.exec(name)?.[1] : undefined;
    if (pn !== undefined) item.printName = pn;
    const ex = flag(16);
    if (ex !== undefined) item.extractable = ex;
    const se = flag(14);
    if (se !== undefined) item.sensitive = se;
    out.push(item);
  }
  return out;
}

/**
 * The keychain's label for a key (the CSSM key digest): SHA-1 of the RSA modulus, or of the EC public point
 * (04 || X || Y). When no key carries this label the check reports "not readable" rather than failing.
 */
export function publicKeyHash(certPem: string): string {
  const pub = new X509Certificate(certPem).publicKey;
  let bits: Buffer;
  if (pub.asymmetricKeyType === 'rsa') bits = Buffer.from((pub.export({ format: 'jwk' }) as { n: string }).n, 'base64url');
  else {
    const spki = pub.export({ format: 'der', type: 'spki' });
    bits = spki.subarray(spki.length - 65); // P-256: 0x04 || X || Y ends the SubjectPublicKeyInfo
  }
  return createHash('sha1').update(bits).digest('hex').toUpperCase();
}

/** PKCS#1 (RSA) or SEC1 (EC) PEM: the "openssl" format `security import -t priv -f openssl` reads. */
export function opensslKeyPem(keyPem: string): string {
  const key = createPrivateKey(keyPem);
  return key.export({ format: 'pem', type: key.asymmetricKeyType === 'rsa' ? 'pkcs1' : 'sec1' }).toString();
}

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
/**
 * `security` exits with the failing OSStatus truncated to its low byte where the Security framework gave one
 * (issue 25.11: decided from that, not from the English message): errSecItemNotFound -25300 → 44 (`security
 * delete-generic-password …; echo $?` prints 44: DeterminateSystems/nix-installer#520), errSecDuplicateItem
 * -25299 → 45, errSecInteractionNotAllowed -25308 → 36 (fastlane-community/security#5, status 36 with no GUI
 * session), errSecAuthFailed -25293 → 51, errSecPkcs12VerifyFailure -25264 → 80. Exit 1 is `security`'s own
 * "failed" with no status: only then is the (English, never translated by `security`) message read.
 */
export const SECURITY_EXIT_KINDS: Record<number, MacFailure> = {
  44: 'not-found',
  45: 'already-exists',
  36: 'interaction-not-allowed',
  51: 'wrong-password',
  80: 'wrong-password',
};

export function parseSecurityError(res: Pick<CommandResult, 'stdout' | 'stderr'> & { code?: number }): { kind: MacFailure; message: string } {
  const text = `${res.stderr}\n${res.stdout}`.trim();
  const message = /security: (?:\w+: )?(.+)$/m.exec(text)?.[1]?.trim() ?? text.split('\n')[0] ?? '';
  const byCode = res.code !== undefined ? SECURITY_EXIT_KINDS[res.code] : undefined;
  if (byCode) return { kind: byCode, message };
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
  /** Whether an application path exists (tests pass their own). */
  exists?: (p: string) => boolean;
}

/** The user's login keychain. A certificate's id is its SHA-1 hash (what `security` selects identities by). */
export class MacKeychainStore implements CertificateStore {
  readonly description: string;
  private readonly run: CommandRunner;
  /** What the last install found about the key's extractability, for status and --debug. */
  keyCheck: string | undefined;

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

  /** Whether our key (matched by its public-key hash) is marked extractable; undefined when it cannot be found. */
  async keyExtractable(certPem: string): Promise<boolean | undefined> {
    const res = await this.exec(darwinCommands.dumpKeychain(this.opts.keychain), 'read the key attributes');
    const hash = publicKeyHash(certPem);
    const key = parseDumpKeychainKeys(res.stdout).find((k) => k.labelHex === hash);
    return key?.extractable;
  }

  async install(req: InstallRequest): Promise<StoredCertificate> {
    const sha1 = sha1Of(req.certPem);
    const tmp = fs.mkdtempSync(path.join(ensurePrivateDir(this.opts.workDir), 'imp-'));
    try {
      const keyFile = path.join(tmp, 'device-key.pem');
      const certFile = path.join(tmp, 'device-cert.pem');
      fs.writeFileSync(keyFile, opensslKeyPem(req.keyPem), { mode: 0o600 });
      fs.writeFileSync(certFile, [req.certPem, ...req.chainPem].join('\n'), { mode: 0o600 });
      const apps = installedApps([this.opts.agentPath, ...(this.opts.trustedApps ?? MAC_TRUSTED_APPS)], this.opts.exists);
      // "already exists" is fine: an earlier interrupted run imported the same key or certificate.
      await this.exec(darwinCommands.importKey(keyFile, this.opts.keychain, apps), 'import the device key', ['already-exists']);
      fs.rmSync(keyFile, { force: true });
      await this.exec(darwinCommands.importCertificate(certFile, this.opts.keychain), 'import the certificate', ['already-exists']);
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
    const installed = (await this.list()).find((c) => c.id === sha1);
    if (!installed) {
      throw new AgentError('local', 'KEYCHAIN_OTHER', `The certificate was imported into ${this.opts.keychain} but is not listed as an identity (certificate with its key) afterwards.`,
        'Run again with --debug; if it repeats, run with --forceRenewal.');
    }
    const extractable = await this.keyExtractable(req.certPem);
    if (extractable === true) {
      await this.remove(sha1);
      throw new AgentError('local', 'KEYCHAIN_KEY_EXTRACTABLE', 'macOS imported the device key as extractable, so it was removed again.',
        'Report this with the --debug output and the macOS version; the previous certificate stays in use.');
    }
    this.keyCheck = extractable === false ? 'non-extractable (checked)' : 'extractability not readable from dump-keychain';
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

/** Apps whose own identity-preference names are written besides the plain ones (see identityServices). */
export const SAFARI_APP_IDS = ['com.apple.Safari'];

/**
 * Identity-preference services for content-settings patterns: `https://[*.]host` → `https://host/` and the
 * domain form `*.host`; `https://host:port` → `https://host:port/`. Since macOS 12.3 apps are reported to look
 * preferences up under `URL (app-id)` names while `set-identity-preference -s` stores the plain URL, so each URL
 * is also written as `https://host/ (com.apple.Safari)`. That naming comes from the review, not from a Mac here:
 * docs/VERIFY-MACOS.md shows how to read which names Safari created itself and compare.
 */
export function identityServices(patterns: string[], appIds: string[] = SAFARI_APP_IDS): string[] {
  const out = new Set<string>();
  for (const p of patterns) {
    const m = /^(https?):\/\/(\[\*\.\])?([^/]+)/.exec(p);
    if (!m) continue;
    const url = `${m[1]}://${m[3]}/`;
    out.add(url);
    for (const id of appIds) out.add(`${url} (${id})`);
    if (m[2]) out.add(`*.${m[3]!.replace(/:\d+$/, '')}`);
  }
  return [...out];
}
