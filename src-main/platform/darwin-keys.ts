import { lastJsonLine } from '../base/json-line.js';
import crypto, { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { describeCertificate, parseCertificate } from '../base/certinfo.js';
import { AgentError } from '../base/errors.js';
import { runCommand, type Command, type CommandResult, type CommandRunner } from '../base/exec.js';
import { ensurePrivateDir } from '../base/fsutil.js';
import { helperScript } from './helper-scripts.js';
import { darwinCommands, installedApps, MAC_TRUSTED_APPS, MacKeychainStore, parseSecurityError, publicKeyHash } from './darwin-store.js';
import type { DeviceKeyStore, KeyAlgorithmName, KeyStoreInfo, OwnKeyEntry, StoreKey } from './keystore.js';
import type { CertificateStore, InstallRequest, StoredCertificate } from './types.js';

/**
 * The macOS device key store (issue 13, macOS part). Nothing here has run on a Mac: every command line is data,
 * checked over reconstructed outputs (test/fixtures/darwin/README.md says which).
 *
 * - **Secure Enclave** (a Mac with Apple silicon or a T2 chip, `sc_auth` with CTK identities): the key is made by
 *   `sc_auth create-ctk-identity -k p-256-ne` — "ne": non-exportable, generated in and never leaving the Secure
 *   Enclave (sc_auth(8)) — as a CryptoTokenKit identity that Safari, Chrome and Edge find like a smart card.
 *   The public key comes from `sc_auth create-ctk-csr` (a request the enclave signs), the issued certificate goes
 *   in with `sc_auth import-ctk-certificate`, removal is `sc_auth delete-ctk-identity`.
 * - **Keychain, software** (no Secure Enclave, or SkipTPM=true): SecKeyCreateRandomKey in the login keychain with
 *   kSecAttrIsExtractable = false; the certificate is added with `security import`, which makes the identity.
 *
 * Signing arbitrary bytes (the renewal token, and the CSR the agent builds) has no command-line tool on macOS, so
 * it goes through the Security framework from JavaScript for Automation (`osascript -l JavaScript`, in every
 * macOS): SecItemCopyMatching finds the private key by its application label (the SHA-1 public-key hash that
 * sc_auth and the keychain both use), SecKeyCreateSignature signs. No compiled helper, no Swift toolchain
 * (/usr/bin/swift needs the Xcode command-line tools), no entitlement (SecKeyCreateRandomKey with the Secure
 * Enclave token needs a provisioning profile, which osascript has not: errSecMissingEntitlement -34018; the CTK
 * identity of sc_auth avoids it).
 */

export const MAC_KEY_TIMEOUT_MS = 30_000;

/** One JXA program for every keychain operation (src-main/platform/helpers/darwin-keys.jxa); inputs through the environment, one JSON line out. */
export function jxaKeysProgram(): string {
  return helperScript('darwin-keys.jxa');
}

function jxa(env: Record<string, string>): Command {
  return { file: '/usr/bin/osascript', args: ['-l', 'JavaScript', '-e', jxaKeysProgram()], env, timeoutMs: MAC_KEY_TIMEOUT_MS };
}

export const darwinKeyCommands = {
  /** Apple silicon answers 1 (a Secure Enclave in every one); Intel answers 0 or fails (the key is absent). */
  arm64: (): Command => ({ file: '/usr/sbin/sysctl', args: ['-n', 'hw.optional.arm64'], timeoutMs: 10_000 }),
  /** Intel Macs: a T2 chip (which holds the Secure Enclave) is listed under the iBridge data type. */
  t2: (): Command => ({ file: '/usr/sbin/system_profiler', args: ['SPiBridgeDataType', '-json'], timeoutMs: MAC_KEY_TIMEOUT_MS }),
  /** sc_auth's usage text: whether this macOS has CTK identities (create-ctk-identity). */
  scAuthUsage: (): Command => ({ file: '/usr/sbin/sc_auth', args: [], timeoutMs: 10_000 }),
  createIdentity: (label: string, commonName: string): Command => ({ file: '/usr/sbin/sc_auth', args: ['create-ctk-identity', '-l', label, '-k', 'p-256-ne', '-t', 'none', '-N', commonName], timeoutMs: MAC_KEY_TIMEOUT_MS }),
  listIdentities: (): Command => ({ file: '/usr/sbin/sc_auth', args: ['list-ctk-identities', '-t', 'sha1', '-e', 'hex'], timeoutMs: MAC_KEY_TIMEOUT_MS }),
  /** `file` without extension: sc_auth writes `<file>.csr` (issue 25.7; see csrOutputFiles). */
  createCsr: (hash: string, file: string, commonName: string): Command => ({ file: '/usr/sbin/sc_auth', args: ['create-ctk-csr', '-h', hash, '-f', file, '-N', commonName], timeoutMs: MAC_KEY_TIMEOUT_MS }),
  importCertificate: (file: string): Command => ({ file: '/usr/sbin/sc_auth', args: ['import-ctk-certificate', '-f', file], timeoutMs: MAC_KEY_TIMEOUT_MS }),
  deleteIdentity: (hash: string): Command => ({ file: '/usr/sbin/sc_auth', args: ['delete-ctk-identity', '-h', hash], timeoutMs: MAC_KEY_TIMEOUT_MS }),
  /** `trustedApps`: the installed browsers (installedApps), one per line in DTA_TRUSTED_APPS, given the key's ACL. */
  createKeychainKey: (algorithm: KeyAlgorithmName, label: string, trustedApps: string[] = []): Command => jxa({ DTA_OP: 'create', DTA_ALGORITHM: algorithm, DTA_LABEL: label, DTA_TRUSTED_APPS: trustedApps.join('\n') }),
  publicKey: (where: 'token' | 'keychain', hash: string): Command => jxa({ DTA_OP: 'public', DTA_WHERE: where, DTA_KEY_HASH_B64: Buffer.from(hash, 'hex').toString('base64') }),
  sign: (where: 'token' | 'keychain', hash: string, algorithm: KeyAlgorithmName, data: Buffer): Command =>
    jxa({ DTA_OP: 'sign', DTA_WHERE: where, DTA_ALGORITHM: algorithm, DTA_KEY_HASH_B64: Buffer.from(hash, 'hex').toString('base64'), DTA_DATA_B64: data.toString('base64') }),
  /** The certificates of CryptoTokenKit tokens (the Secure Enclave identities among them), DER. */
  tokenCertificates: (): Command => jxa({ DTA_OP: 'certs' }),
  deleteKeychainKey: (hash: string): Command => jxa({ DTA_OP: 'delete', DTA_WHERE: 'keychain', DTA_KEY_HASH_B64: Buffer.from(hash, 'hex').toString('base64') }),
};

// ---- parsing ---------------------------------------------------------------------------------------------------

/** `sc_auth list-ctk-identities` rows: key type, public key hash, protection, label, common name, …, valid. */
export interface CtkIdentity {
  keyType: string;
  hash: string;
  label: string;
  /** The row's text, for messages. */
  line: string;
}

export function parseCtkIdentities(stdout: string): CtkIdentity[] {
  const out: CtkIdentity[] = [];
  for (const line of stdout.split(/\r?\n/)) {
    const m = /^\s*(p-256(?:-ne)?|p-384(?:-ne)?|p-521)\s+([0-9A-Fa-f]{40}|[0-9A-Fa-f]{64})\s+\S+\s+(\S+)/.exec(line);
    if (m) out.push({ keyType: m[1]!, hash: m[2]!.toUpperCase(), label: m[3]!, line: line.trim() });
  }
  return out;
}

/**
 * Where `sc_auth create-ctk-csr -f PATH` leaves the request: it appends ".csr" to PATH (issue 25.7, reported from
 * macOS 14/15: waiting for PATH itself never finds it). PATH itself is still accepted, should a release stop
 * appending; the first that exists is read.
 */
export function csrOutputFiles(base: string): string[] {
  return [`${base}.csr`, base];
}

/**
 * The CTK label the agent gives a key made for the core's label (no spaces: sc_auth lists whitespace-separated
 * columns) and back: "device-trust-key 1765000000" ↔ "device-trust-key-1765000000-<12 hex>". The way back lets the
 * orphan sweep (core/keys/orphan-keys.ts) see when the key was made.
 */
export function ctkLabelFor(label: string, suffix: string = crypto.randomBytes(6).toString('hex')): string {
  return `${label.replace(/\s+/g, '-')}-${suffix}`;
}

export function coreLabelOfCtk(ctkLabel: string, labelPrefix: string): string | undefined {
  const head = labelPrefix.replace(/\s+/g, '-');
  if (!ctkLabel.startsWith(`${head}-`)) return undefined;
  const m = /^(\d{9,11})-[0-9a-f]{12}$/.exec(ctkLabel.slice(head.length + 1));
  return m ? `${labelPrefix} ${m[1]}` : labelPrefix;
}

/** Whether the Mac has a Secure Enclave: Apple silicon, or an Intel Mac with a T2 chip. */
export function hasSecureEnclave(arm64: CommandResult, t2: CommandResult | undefined): boolean {
  if (arm64.code === 0 && arm64.stdout.trim() === '1') return true;
  if (!t2 || t2.code !== 0) return false;
  return /"ibridge_model_name"\s*:\s*"[^"]*T2/i.test(t2.stdout);
}

/** A request sc_auth wrote (PEM or DER) → its DER SubjectPublicKeyInfo, after checking its signature. */
export function spkiFromCsr(bytes: Buffer): Buffer {
  const text = bytes.toString('latin1');
  const m = /-----BEGIN (?:NEW )?CERTIFICATE REQUEST-----([\s\S]*?)-----END (?:NEW )?CERTIFICATE REQUEST-----/.exec(text);
  const der = m ? Buffer.from(m[1]!.replace(/[^A-Za-z0-9+/=]/g, ''), 'base64') : bytes;
  // PKCS#10: SEQUENCE { CertificationRequestInfo SEQUENCE { version, subject, SubjectPublicKeyInfo, attributes }, … }
  const info = derChildren(der, 0)[0];
  if (!info) throw csrError('not a PKCS#10 request');
  const parts = derChildren(der, info.start);
  const spki = parts[2];
  if (!spki) throw csrError('no public key in the request');
  const outer = derChildren(der, 0);
  const sigAlg = outer[1];
  const sig = outer[2];
  if (!sigAlg || !sig) throw csrError('no signature in the request');
  const spkiDer = der.subarray(spki.start, spki.end);
  const pub = crypto.createPublicKey({ key: spkiDer, format: 'der', type: 'spki' });
  const signature = der.subarray(sig.contentStart + 1, sig.end); // BIT STRING: skip the unused-bits byte
  if (!crypto.verify('sha256', der.subarray(info.start, info.end), pub, signature)) throw csrError('its signature does not verify');
  return pub.export({ type: 'spki', format: 'der' });
}

function csrError(why: string): AgentError {
  return new AgentError('local', 'MAC_KEY_ANSWER', `sc_auth wrote a request this agent cannot use (${why}).`, 'Run again with --debug and give the output to the help desk.');
}

/** The TLV children of the constructed element at `at` (minimal DER reader: lengths up to 4 bytes). */
function derChildren(der: Buffer, at: number): { start: number; contentStart: number; end: number }[] {
  const head = (pos: number) => {
    if (pos + 2 > der.length) throw csrError('truncated');
    let len = der[pos + 1]!;
    let hdr = 2;
    if (len & 0x80) {
      const n = len & 0x7f;
      if (n < 1 || n > 4) throw csrError('bad length');
      len = 0;
      for (let i = 0; i < n; i++) len = len * 256 + der[pos + 2 + i]!;
      hdr += n;
    }
    if (pos + hdr + len > der.length) throw csrError('truncated');
    return { start: pos, contentStart: pos + hdr, end: pos + hdr + len };
  };
  const outer = head(at);
  const out = [];
  for (let p = outer.contentStart; p < outer.end;) {
    const h = head(p);
    out.push(h);
    p = h.end;
  }
  return out;
}

/** JXA answers. */
const JxaFailure = z.object({ ok: z.literal(false), status: z.number(), message: z.string() });
const JxaSuccess = z.object({ ok: z.literal(true), data: z.unknown() });
const PublicData = z.union([z.object({ exists: z.literal(false) }), z.object({ exists: z.literal(true), label: z.string(), publicKey: z.string().min(8), extractable: z.boolean().nullable() })]);
const SignData = z.object({ signature: z.string().min(8) });
const CertList = z.array(z.string());

export type JxaAnswer = { ok: true; data: unknown } | { ok: false; status?: number; message: string; timedOut?: boolean };

export function parseJxaAnswer(res: CommandResult): JxaAnswer {
  if (res.code === 124) return { ok: false, timedOut: true, message: 'osascript did not answer in time' };
  const raw = lastJsonLine(res.stdout);
  const s = JxaSuccess.safeParse(raw);
  if (s.success) return { ok: true, data: s.data.data };
  const f = JxaFailure.safeParse(raw);
  if (f.success) return { ok: false, status: f.data.status, message: f.data.message };
  // osascript's own errors: "execution error: … (-2700)" on stderr.
  const text = res.stderr.trim() || res.stdout.trim() || `osascript exited with ${res.code}`;
  const status = /\((-?\d+)\)\s*$/.exec(text)?.[1];
  return { ok: false, ...(status ? { status: Number(status) } : {}), message: text.split(/\r?\n/)[0]!.slice(0, 300) };
}

/** OSStatus values (Security framework, not translated) → what to do. */
export function macKeyRemedy(status: number | undefined, timedOut?: boolean): string {
  if (timedOut) return `osascript did not answer within ${MAC_KEY_TIMEOUT_MS / 1000} s: the keychain may be waiting for a password prompt nobody sees. Unlock the login keychain and run again.`;
  switch (status) {
    case -25308: return 'The login keychain is locked or there is no user session (errSecInteractionNotAllowed): the user task runs when the user is logged in.';
    case -25293: return 'The keychain refused the operation (errSecAuthFailed): unlock the login keychain (Keychain Access) and run again.';
    case -128: return 'The keychain prompt was cancelled (userCanceledErr): run again and allow the agent to use its key ("Always Allow").';
    case -34018: return 'macOS wants an entitlement for this key (errSecMissingEntitlement): set SkipTPM=true to keep the key in the login keychain instead of the Secure Enclave.';
    case -25300: return 'The device key is no longer in the keychain: run device-trust-agent run --forceRenewal.';
    case -1743: case -1744: return 'macOS blocked osascript (Automation/TCC): allow it for the agent under System Settings → Privacy & Security, or deploy the agent\'s PPPC profile.';
    default: return 'Run again with --debug and give the output to the help desk.';
  }
}

/** ECDSA-Sig-Value (DER SEQUENCE of two INTEGERs) → raw r‖s of 32 bytes each (the JWS form). */
export function derEcdsaToRaw(der: Buffer): Buffer {
  if (der[0] !== 0x30) throw new Error('not a DER ECDSA signature');
  let p = 2;
  if (der[1]! & 0x80) p = 2 + (der[1]! & 0x7f);
  const read = () => {
    if (der[p] !== 0x02) throw new Error('not a DER ECDSA signature');
    const len = der[p + 1]!;
    let v = der.subarray(p + 2, p + 2 + len);
    p += 2 + len;
    while (v.length > 32 && v[0] === 0) v = v.subarray(1);
    if (v.length > 32) throw new Error('ECDSA integer longer than 32 bytes');
    return Buffer.concat([Buffer.alloc(32 - v.length), v]);
  };
  return Buffer.concat([read(), read()]);
}

/** The keychain's public-key export (X9.63 point for EC, PKCS#1 for RSA) → DER SubjectPublicKeyInfo. */
export function macPublicKeyToSpki(bytes: Buffer, algorithm: KeyAlgorithmName): Buffer {
  if (algorithm === 'P-256') {
    if (bytes.length !== 65 || bytes[0] !== 0x04) throw new AgentError('local', 'MAC_KEY_ANSWER', 'The keychain answered a public key that is not an uncompressed P-256 point.', 'Report this with the --debug output.');
    const jwk = { kty: 'EC', crv: 'P-256', x: bytes.subarray(1, 33).toString('base64url'), y: bytes.subarray(33).toString('base64url') };
    return crypto.createPublicKey({ key: jwk, format: 'jwk' }).export({ type: 'spki', format: 'der' });
  }
  return crypto.createPublicKey({ key: bytes, format: 'der', type: 'pkcs1' }).export({ type: 'spki', format: 'der' });
}

/** The keychain / CTK hash of a public key (SHA-1 of the EC point or RSA modulus), from its SPKI. */
export function hashOfSpki(spki: Buffer): string {
  const pem = `-----BEGIN PUBLIC KEY-----\n${spki.toString('base64')}\n-----END PUBLIC KEY-----\n`;
  const pub = crypto.createPublicKey(pem);
  const jwk = pub.export({ format: 'jwk' }) as { n?: string; x?: string; y?: string };
  const bits = jwk.n ? Buffer.from(jwk.n, 'base64url') : Buffer.concat([Buffer.from([4]), Buffer.from(jwk.x!, 'base64url'), Buffer.from(jwk.y!, 'base64url')]);
  return crypto.createHash('sha1').update(bits).digest('hex').toUpperCase();
}

// ---- key ids ---------------------------------------------------------------------------------------------------

/** "se:<hash>" (Secure Enclave CTK identity, always P-256), "kc-ec:<hash>" / "kc-rsa:<hash>" (login keychain). */
export function parseMacKeyId(id: string): { where: 'token' | 'keychain'; hash: string; algorithm: KeyAlgorithmName } | undefined {
  const m = /^(se|kc-ec|kc-rsa):([0-9A-F]{40})$/.exec(id);
  if (!m) return undefined;
  return { where: m[1] === 'se' ? 'token' : 'keychain', hash: m[2]!, algorithm: m[1] === 'kc-rsa' ? 'RSA-2048' : 'P-256' };
}

// ---- the store -------------------------------------------------------------------------------------------------

export interface MacKeyStoreOptions {
  skipTpm: boolean;
  /** Applications given the software key's access list besides the agent (default: the installed MAC_TRUSTED_APPS). */
  trustedApps?: string[];
  /** Whether an application path exists (tests pass their own). */
  exists?: (p: string) => boolean;
  workDir: string;
  /** The login keychain and its certificate store (list/remove of identities there). */
  keychain: MacKeychainStore;
  keychainPath: string;
  run?: CommandRunner;
}

export class MacKeyStore implements DeviceKeyStore {
  private readonly run: CommandRunner;
  private chosen: Promise<KeyStoreInfo> | undefined;
  private readonly known = new Map<string, StoreKey>();

  constructor(private readonly opts: MacKeyStoreOptions) {
    this.run = opts.run ?? runCommand;
  }

  private async exec(cmd: Command, what: string): Promise<CommandResult> {
    try {
      return await this.run(cmd);
    } catch (e) {
      throw new AgentError('local', 'STORE_TOOL_MISSING', `${cmd.file} could not be started to ${what}: ${(e as Error).message}.`,
        `${cmd.file} is part of macOS; check that it has not been removed or blocked.`);
    }
  }

  private jxaFail(what: string, a: Extract<JxaAnswer, { ok: false }>): AgentError {
    const code = a.status === -25300 ? 'KEY_MISSING' : a.timedOut ? 'MAC_KEY_TIMEOUT' : 'MAC_KEY_FAILED';
    return new AgentError('local', code, `Could not ${what}: ${a.message}${a.status !== undefined ? ` (OSStatus ${a.status})` : ''}.`, macKeyRemedy(a.status, a.timedOut));
  }

  private toolFail(what: string, res: CommandResult): AgentError {
    if (res.code === 124) return new AgentError('local', 'MAC_KEY_TIMEOUT', `Could not ${what}: no answer within ${MAC_KEY_TIMEOUT_MS / 1000} s.`, macKeyRemedy(undefined, true));
    const text = (res.stderr.trim() || res.stdout.trim()).split(/\r?\n/)[0] ?? '';
    return new AgentError('local', 'MAC_KEY_FAILED', `Could not ${what}: ${text || `exit ${res.code}`}.`, 'Run again with --debug; set SkipTPM=true to keep the key in the login keychain instead of the Secure Enclave.');
  }

  /** Secure Enclave when the Mac has one and sc_auth can make CTK identities; else the login keychain. */
  private choose(): Promise<KeyStoreInfo> {
    this.chosen ??= (async (): Promise<KeyStoreInfo> => {
      const software = (reason: string): KeyStoreInfo => ({ protection: 'software', reason, description: `login keychain ${this.opts.keychainPath}, non-extractable` });
      if (this.opts.skipTpm) return software('SkipTPM=true');
      const arm = await this.exec(darwinKeyCommands.arm64(), 'read the processor type').catch(() => ({ code: 1, stdout: '', stderr: '' }));
      const t2 = arm.stdout.trim() === '1' ? undefined : await this.exec(darwinKeyCommands.t2(), 'look for a T2 chip').catch(() => undefined);
      if (!hasSecureEnclave(arm, t2)) return software('no Secure Enclave (an Intel Mac without a T2 chip)');
      const usage = await this.exec(darwinKeyCommands.scAuthUsage(), 'read sc_auth\'s commands').catch(() => ({ code: 1, stdout: '', stderr: '' }));
      if (!/create-ctk-identity/.test(usage.stdout + usage.stderr)) return software('this macOS has no CTK identities (sc_auth create-ctk-identity)');
      return { protection: 'tpm', reason: 'Secure Enclave through a CryptoTokenKit identity (sc_auth)', description: 'Secure Enclave (CTK identity, non-exportable)' };
    })();
    return this.chosen;
  }

  async info(): Promise<KeyStoreInfo> {
    return this.choose();
  }

  async generate(algorithm: KeyAlgorithmName, label: string): Promise<StoreKey> {
    const info = await this.choose();
    // sc_auth lists identities as whitespace-separated columns: a label must not contain spaces.
    const unique = ctkLabelFor(label);
    if (info.protection === 'tpm') {
      if (algorithm !== 'P-256') {
        throw new AgentError('config', 'MAC_KEY_ALGORITHM', `The Secure Enclave makes P-256 keys only, and ${algorithm} was asked.`, 'Set keyAlgorithm to P-256, or SkipTPM=true for an RSA key in the login keychain.');
      }
      const created = await this.exec(darwinKeyCommands.createIdentity(unique, unique), 'create the device key in the Secure Enclave');
      if (created.code !== 0) throw this.toolFail('create the device key in the Secure Enclave (sc_auth create-ctk-identity)', created);
      const listed = await this.exec(darwinKeyCommands.listIdentities(), 'list CTK identities');
      const row = parseCtkIdentities(listed.stdout).find((r) => r.label === unique);
      if (!row) throw new AgentError('local', 'MAC_KEY_FAILED', `sc_auth made the identity ${unique} but does not list it.`, 'Run again with --debug.');
      // From here on a failure must not leave the identity behind (each attempt would add one): it is deleted.
      try {
        if (row.keyType !== 'p-256-ne') {
          throw new AgentError('local', 'MAC_KEY_EXPORTABLE', `sc_auth made a ${row.keyType} identity, not a non-exportable p-256-ne one, so it was removed again.`, 'Report this with the macOS version.');
        }
        const spki = await this.publicFromCsr(row.hash, unique);
        if (hashOfSpki(spki) !== row.hash) throw new AgentError('local', 'MAC_KEY_FAILED', 'The request sc_auth wrote is not for the identity it listed.', 'Run again with --debug.');
        const key: StoreKey = { id: `se:${row.hash}`, algorithm: 'P-256', spki, protection: 'tpm' };
        this.known.set(key.id, key);
        return key;
      } catch (e) {
        await this.exec(darwinKeyCommands.deleteIdentity(row.hash), 'remove the identity').catch(() => undefined);
        throw e;
      }
    }
    const apps = installedApps(this.opts.trustedApps ?? MAC_TRUSTED_APPS, this.opts.exists);
    const a = parseJxaAnswer(await this.exec(darwinKeyCommands.createKeychainKey(algorithm, unique, apps), 'create the device key in the login keychain'));
    if (!a.ok) throw this.jxaFail('create the device key in the login keychain', a);
    const key = this.readPublic(a.data, algorithm, 'keychain');
    if (!key) throw new AgentError('local', 'MAC_KEY_FAILED', 'The keychain made the key but did not answer its public key.', 'Run again with --debug.');
    return key;
  }

  private async publicFromCsr(hash: string, commonName: string): Promise<Buffer> {
    const tmp = fs.mkdtempSync(path.join(ensurePrivateDir(this.opts.workDir), 'ctk-'));
    try {
      const base = path.join(tmp, 'request');
      const res = await this.exec(darwinKeyCommands.createCsr(hash, base, commonName), 'read the Secure Enclave key');
      const written = csrOutputFiles(base).find((f) => fs.existsSync(f));
      if (res.code !== 0 || !written) throw this.toolFail('read the Secure Enclave key (sc_auth create-ctk-csr)', res);
      return spkiFromCsr(fs.readFileSync(written));
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  }

  /**
   * The Secure Enclave identities this agent made (label prefix), for the orphan sweep: an identity without a
   * certificate that no key reference names is left by an interrupted run. The login keychain's software keys are
   * not listed (SecItemCopyMatching by label is not wired): they are deleted with their certificate.
   */
  async listOwnKeys(labelPrefix: string): Promise<OwnKeyEntry[]> {
    if ((await this.choose()).protection !== 'tpm') return [];
    const listed = await this.exec(darwinKeyCommands.listIdentities(), 'list CTK identities');
    if (listed.code !== 0) throw this.toolFail('list the Secure Enclave identities (sc_auth list-ctk-identities)', listed);
    const withCert = new Set((await this.tokenCertificates()).map((t) => t.keyHash));
    const out: OwnKeyEntry[] = [];
    for (const r of parseCtkIdentities(listed.stdout)) {
      const label = coreLabelOfCtk(r.label, labelPrefix);
      if (label) out.push({ id: `se:${r.hash}`, label, hasCertificate: withCert.has(r.hash) });
    }
    return out;
  }

  private readPublic(data: unknown, algorithm: KeyAlgorithmName, where: 'token' | 'keychain'): StoreKey | undefined {
    const p = PublicData.safeParse(data);
    if (!p.success) throw new AgentError('local', 'MAC_KEY_ANSWER', 'The keychain answered in an unexpected form.', 'Run again with --debug.');
    if (!p.data.exists) return undefined;
    if (p.data.extractable === true) {
      throw new AgentError('local', 'MAC_KEY_EXTRACTABLE', 'The device key in the keychain is marked extractable; the agent never uses such a key.', 'Run device-trust-agent run --forceRenewal to make a new one.');
    }
    const spki = macPublicKeyToSpki(Buffer.from(p.data.publicKey, 'base64'), algorithm);
    const hash = hashOfSpki(spki);
    const id = where === 'token' ? `se:${hash}` : `${algorithm === 'P-256' ? 'kc-ec' : 'kc-rsa'}:${hash}`;
    const key: StoreKey = { id, algorithm, spki, protection: where === 'token' ? 'tpm' : 'software' };
    this.known.set(id, key);
    return key;
  }

  async find(id: string): Promise<StoreKey | undefined> {
    const k = parseMacKeyId(id);
    if (!k) return undefined;
    const a = parseJxaAnswer(await this.exec(darwinKeyCommands.publicKey(k.where, k.hash), 'find the device key'));
    if (!a.ok) {
      if (a.status === -25300) return undefined;
      throw this.jxaFail('find the device key', a);
    }
    const key = this.readPublic(a.data, k.algorithm, k.where);
    if (!key) this.known.delete(id);
    return key;
  }

  async sign(id: string, data: Buffer): Promise<Buffer> {
    const k = parseMacKeyId(id);
    if (!k) throw new AgentError('local', 'KEY_MISSING', `${id} is not a macOS device key handle.`, 'Run device-trust-agent run --forceRenewal');
    const a = parseJxaAnswer(await this.exec(darwinKeyCommands.sign(k.where, k.hash, k.algorithm, data), 'sign with the device key'));
    if (!a.ok) throw this.jxaFail('sign with the device key', a);
    const s = SignData.safeParse(a.data);
    if (!s.success) {
      const gone = (a.data as { exists?: unknown } | null)?.exists === false;
      throw gone ? this.jxaFail('sign with the device key', { ok: false, status: -25300, message: 'the key is not in the keychain' })
        : new AgentError('local', 'MAC_KEY_ANSWER', 'The keychain answered the signature in an unexpected form.', 'Run again with --debug.');
    }
    const raw = Buffer.from(s.data.signature, 'base64');
    const signature = k.algorithm === 'P-256' ? derEcdsaToRaw(raw) : raw;
    const key = this.known.get(id) ?? (await this.find(id));
    if (!key) throw this.jxaFail('sign with the device key', { ok: false, status: -25300, message: 'the key is not in the keychain' });
    const pub = crypto.createPublicKey({ key: key.spki, format: 'der', type: 'spki' });
    const good = k.algorithm === 'P-256' ? crypto.verify('sha256', data, { key: pub, dsaEncoding: 'ieee-p1363' }, signature) : crypto.verify('sha256', data, pub, signature);
    if (!good) throw new AgentError('local', 'MAC_KEY_BAD_SIGNATURE', 'The signature the keychain made does not verify with the device key.', 'Report this with the --debug output.');
    return signature;
  }

  async attach(id: string, req: { certPem: string; chainPem: string[]; label: string }): Promise<StoredCertificate> {
    const k = parseMacKeyId(id);
    if (!k) throw new AgentError('local', 'KEY_MISSING', `${id} is not a macOS device key handle.`, 'Run device-trust-agent run --forceRenewal');
    if (publicKeyHash(req.certPem) !== k.hash) throw new AgentError('local', 'MAC_KEY_MISMATCH', 'The issued certificate is not for the device key.', 'Run device-trust-agent run --forceRenewal.');
    const sha1 = new X509Certificate(req.certPem).fingerprint.replace(/:/g, '').toUpperCase();
    const tmp = fs.mkdtempSync(path.join(ensurePrivateDir(this.opts.workDir), 'att-'));
    try {
      if (req.chainPem.length) {
        const chain = path.join(tmp, 'chain.pem');
        fs.writeFileSync(chain, req.chainPem.join('\n'), { mode: 0o600 });
        const res = await this.exec(darwinCommands.importCertificate(chain, this.opts.keychainPath), 'add the issuing CAs');
        if (res.code !== 0 && parseSecurityError(res).kind !== 'already-exists') throw this.toolFail('add the issuing CAs to the login keychain', res);
      }
      if (k.where === 'token') {
        // SecCertificateCreateWithData, which CTK tools use, reads DER.
        const cer = path.join(tmp, 'device.cer');
        fs.writeFileSync(cer, new X509Certificate(req.certPem).raw, { mode: 0o600 });
        const res = await this.exec(darwinKeyCommands.importCertificate(cer), 'attach the certificate to the Secure Enclave identity');
        if (res.code !== 0) throw this.toolFail('attach the certificate to the Secure Enclave identity (sc_auth import-ctk-certificate)', res);
        // What a browser will see: the token lists the certificate with the Secure Enclave key.
        const joined = (await this.tokenCertificates()).find((t) => t.cert.id === sha1 && t.keyHash === k.hash);
        if (!joined) {
          throw new AgentError('local', 'MAC_KEY_NOT_JOINED', 'sc_auth accepted the certificate but the Secure Enclave identity does not carry it.',
            'Run device-trust-agent run --forceRenewal; if it repeats, send the output of `sc_auth list-ctk-identities`.');
        }
        return joined.cert;
      }
      const cer = path.join(tmp, 'device.pem');
      fs.writeFileSync(cer, req.certPem, { mode: 0o600 });
      const res = await this.exec(darwinCommands.importCertificate(cer, this.opts.keychainPath), 'add the certificate');
      if (res.code !== 0 && parseSecurityError(res).kind !== 'already-exists') throw this.toolFail('add the certificate to the login keychain', res);
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
    const stored = (await this.opts.keychain.list()).find((c) => c.id === sha1);
    if (!stored) throw new AgentError('local', 'KEYCHAIN_OTHER', 'The certificate was added but the keychain does not pair it with the device key.', 'Run device-trust-agent run --forceRenewal.');
    return stored;
  }

  keyIdOf(_storeId: string): string | undefined {
    return undefined; // the key reference file (key-ref.json) names the key; a keychain SHA-1 alone does not
  }

  async remove(id: string): Promise<void> {
    const k = parseMacKeyId(id);
    if (!k) return;
    this.known.delete(id);
    if (k.where === 'token') {
      const rows = parseCtkIdentities((await this.exec(darwinKeyCommands.listIdentities(), 'list CTK identities')).stdout);
      if (!rows.some((r) => r.hash === k.hash)) return;
      const res = await this.exec(darwinKeyCommands.deleteIdentity(k.hash), 'remove the Secure Enclave identity');
      if (res.code !== 0) throw this.toolFail('remove the Secure Enclave identity', res);
      return;
    }
    for (const c of await this.opts.keychain.list().catch(() => [])) {
      if (publicKeyHash(c.pem) === k.hash) await this.opts.keychain.remove(c.id);
    }
    const a = parseJxaAnswer(await this.exec(darwinKeyCommands.deleteKeychainKey(k.hash), 'delete the device key'));
    if (!a.ok && a.status !== -25300) throw this.jxaFail('delete the device key', a);
  }

  async close(): Promise<void> {
    /* each operation is one process */
  }

  /**
   * The Secure Enclave identities that carry a certificate, as certificate-store entries (id = certificate SHA-1):
   * the login keychain's `find-identity` does not list token identities. Nothing is asked under SkipTPM.
   */
  async tokenCertificates(): Promise<{ cert: StoredCertificate; keyHash: string }[]> {
    if (this.opts.skipTpm) return [];
    const listed = await this.exec(darwinKeyCommands.listIdentities(), 'list CTK identities').catch(() => undefined);
    const hashes = new Set(listed && listed.code === 0 ? parseCtkIdentities(listed.stdout).map((r) => r.hash) : []);
    if (!hashes.size) return [];
    const a = parseJxaAnswer(await this.exec(darwinKeyCommands.tokenCertificates(), 'list token certificates'));
    if (!a.ok) throw this.jxaFail('list the Secure Enclave certificates', a);
    const ders = CertList.safeParse(a.data);
    if (!ders.success) throw new AgentError('local', 'MAC_KEY_ANSWER', 'The keychain answered the token certificates in an unexpected form.', 'Run again with --debug.');
    const out: { cert: StoredCertificate; keyHash: string }[] = [];
    for (const b64 of ders.data) {
      let x: X509Certificate;
      try {
        x = new X509Certificate(Buffer.from(b64, 'base64'));
      } catch {
        continue;
      }
      const pem = x.toString();
      const keyHash = publicKeyHash(pem);
      if (!hashes.has(keyHash)) continue;
      out.push({ cert: { id: x.fingerprint.replace(/:/g, '').toUpperCase(), pem, info: describeCertificate(parseCertificate(pem)) }, keyHash });
    }
    return out;
  }
}

/**
 * The macOS certificate store the core sees: the login keychain's identities plus the Secure Enclave identities
 * (which `security find-identity <keychain>` does not list). Removing a Secure Enclave entry deletes its identity.
 */
export class MacDeviceCertificateStore implements CertificateStore {
  readonly description: string;

  constructor(private readonly keychain: MacKeychainStore, private readonly keys: MacKeyStore) {
    this.description = `${keychain.description} and the Secure Enclave`;
  }

  async list(): Promise<StoredCertificate[]> {
    const fromKeychain = await this.keychain.list();
    const fromToken = (await this.keys.tokenCertificates()).map((t) => t.cert).filter((c) => !fromKeychain.some((k) => k.id === c.id));
    return [...fromKeychain, ...fromToken];
  }

  install(req: InstallRequest): Promise<StoredCertificate> {
    return this.keychain.install(req);
  }

  async remove(id: string): Promise<void> {
    const token = (await this.keys.tokenCertificates()).find((t) => t.cert.id === id);
    if (token) return this.keys.remove(`se:${token.keyHash}`);
    return this.keychain.remove(id);
  }
}
