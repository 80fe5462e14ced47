import { execFileSync, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { childEnv } from '../base/exec.js';
import { ensurePrivateDir } from '../base/fsutil.js';
import { AgentError } from '../base/errors.js';
import { storeWriteFault } from '../base/test-faults.js';
import { testTpm2Ptool } from '../base/test-hooks.js';
import { monotonicMs } from '../base/trace.js';
import { helperScript } from './helper-scripts.js';
import type { DeviceKeyStore, KeyAlgorithmName, KeyStoreInfo, OwnKeyEntry, SignHash, StoreKey } from './keystore.js';
import { Pkcs11Token } from './pkcs11.js';
import { tokenTlsPresenter, tokenTlsUnavailable, type TokenTlsPresenter, type TokenTlsSpec } from './token-tls.js';
import { AttestationUnavailable, attestTpmKey, type AskChallenge, type KeyAttestationEvidence } from './tpm-attest.js';
import type { CertificateStore, InstallRequest, StoredCertificate } from './types.js';

export const TPM2_PKCS11_LIBRARIES = ['/usr/lib/x86_64-linux-gnu/pkcs11/libtpm2_pkcs11.so', '/usr/lib/aarch64-linux-gnu/pkcs11/libtpm2_pkcs11.so', '/usr/lib64/pkcs11/libtpm2_pkcs11.so', '/usr/lib/pkcs11/libtpm2_pkcs11.so'];
export const SOFTOKN_LIBRARIES = ['/usr/lib/x86_64-linux-gnu/libsoftokn3.so', '/usr/lib/aarch64-linux-gnu/libsoftokn3.so', '/usr/lib64/libsoftokn3.so', '/usr/lib/libsoftokn3.so', '/usr/lib/x86_64-linux-gnu/nss/libsoftokn3.so'];
/** The TPM token's label: empty user PIN, in its own store (never shared with PIN tokens, which make browsers prompt). */
export const TPM_TOKEN_LABEL = 'device-trust';

export interface LinuxKeySettings {
  nssDbDir: string;
  home: string;
  skipTpm: boolean;
  env: NodeJS.ProcessEnv;
}

/** NSS softokn's module parameters for one database (what NSS_Init passes; readOnly omitted: we write). */
export function softoknParameters(dbDir: string): string {
  return `configdir='sql:${dbDir}' certPrefix='' keyPrefix='' secmod='secmod.db' flags= `;
}

/** tpm2-pkcs11's own store: $TPM2_PKCS11_STORE, else ~/.tpm2_pkcs11 (the library's default, which browsers find too). */
export function tpmStoreDir(s: Pick<LinuxKeySettings, 'home' | 'env'>): string {
  return s.env.TPM2_PKCS11_STORE || path.join(s.home, '.tpm2_pkcs11');
}

function firstExisting(paths: string[]): string | undefined {
  return paths.find((p) => fs.existsSync(p));
}

/**
 * The persistent storage primary every token store of the agent shares (the TCG SRK handle). A TPM keeps only a
 * handful of persistent objects (about seven on real chips): a new store reuses this one instead of taking another.
 */
export const SHARED_PRIMARY_HANDLE = '0x81000001';

/** The environment for tpm2-tools: they read their own TCTI variable, and the agent is usually given tpm2-pkcs11's. */
export function tpm2ToolsEnv(base: Record<string, string>): Record<string, string> {
  const tcti = base.TPM2TOOLS_TCTI || base.TPM2_PKCS11_TCTI || base.TSS2_TCTI;
  return tcti ? { ...base, TPM2TOOLS_TCTI: tcti } : base;
}

/** The TPM's persistent handles (tpm2_getcap); throws when tpm2-tools cannot be run or the TPM does not answer. */
function listPersistentHandles(env: NodeJS.ProcessEnv): string[] {
  const out = execFileSync('tpm2_getcap', ['handles-persistent'], { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 30_000 });
  return [...out.matchAll(/0x[0-9a-fA-F]{8}/g)].map((m) => m[0].toLowerCase());
}

/** The TPM's persistent handles (tpm2_getcap); empty when tpm2-tools cannot be run (then nothing is reused or reclaimed). */
export function persistentHandles(env: NodeJS.ProcessEnv): string[] {
  try {
    return listPersistentHandles(env);
  } catch {
    return [];
  }
}

interface PtoolStep {
  args: string[];
  /** Skipped once a step before reported a primary key id. */
  ifNoId?: boolean;
}

/** What one run of tpm2_ptool steps did: the steps that ran, and the failure that ended it (if any). */
interface PtoolRun {
  ran: string[];
  error?: Error;
}

/**
 * Runs tpm2_ptool steps in ONE Python process (each start of tpm2_ptool is a Python start importing tpm2-pytss,
 * about half a second): "{id}" in an argument is the primary key id an earlier step reported. tpm2_ptool takes PINs
 * only as arguments, which every local user sees in `ps`: they reach it on standard input, never on a command line
 * (helpers/tpm2-ptool-stdin.py).
 */
function runPtool(env: Record<string, string>, steps: PtoolStep[]): PtoolRun {
  const tool = testTpm2Ptool() ?? firstExisting(TPM2_PTOOL_PATHS) ?? 'tpm2_ptool';
  const r = spawnSync(python(), ['-c', helperScript('tpm2-ptool-stdin.py'), tool], { env, input: JSON.stringify(steps), encoding: 'utf8', timeout: 120_000 });
  const results: { step: string; code: number; out: string }[] = [];
  for (const line of (r.stdout ?? '').split('\n')) {
    try {
      if (line.trim()) results.push(JSON.parse(line));
    } catch {
      /* not one of the helper's lines */
    }
  }
  const ran = results.map((x) => x.step);
  if (r.status === 0 && !r.error) return { ran };
  const failed = results.find((x) => x.code !== 0);
  const said = [r.stderr ?? '', failed?.out ?? ''].join('\n').trim().split('\n').filter(Boolean);
  const why = r.error ? r.error.message : said.length ? said[said.length - 1]!.trim() : `exit ${r.status ?? r.signal}`;
  return { ran, error: new Error(`tpm2_ptool ${failed?.step ?? steps[0]?.args[0] ?? ''} failed: ${why}`) };
}

/**
 * Creates the agent's TPM token once: a token with an empty user PIN (browsers never prompt) under a storage
 * primary key, through tpm2_ptool (C_InitToken in tpm2-pkcs11 1.9 leaves no way to set an empty user PIN). The
 * primary is the store's own if it has one, else the shared persistent one at SHARED_PRIMARY_HANDLE (made by
 * `install --device`, ensureSharedPrimary, or by the first store on this TPM), else a new one (persisted there when
 * it is free). A failed attempt gives back the handle it took and leaves no half store. No key material passes
 * through it; the SO PIN is random and not kept.
 */
export function provisionTpmToken(store: string): void {
  const env = tpm2ToolsEnv(childEnv({ TPM2_PKCS11_STORE: store }));
  const db = path.join(store, 'tpm2_pkcs11.sqlite3');
  const addToken: PtoolStep = { args: ['addtoken', '--pid={id}', `--label=${TPM_TOKEN_LABEL}`, '--userpin=', `--sopin=${crypto.randomBytes(12).toString('hex')}`, '--path', store] };
  // A store without its database has no primary of its own: nothing to list.
  const listed = (): PtoolStep[] => (fs.existsSync(db) ? [{ args: ['listprimaries', '--path', store] }] : []);
  const before = persistentHandles(env);
  if (before.includes(SHARED_PRIMARY_HANDLE)) {
    const r = runPtool(env, [...listed(), { args: ['init', `--primary-handle=${SHARED_PRIMARY_HANDLE}`, '--path', store], ifNoId: true }, addToken]);
    if (!r.error) return;
    // The store's own primary was used and refused: nothing of ours to fall back to.
    if (!r.ran.includes('init')) throw r.error;
    /* else not a storage key we can use: make our own below, in a clean store */
    fs.rmSync(db, { force: true });
  }
  const r = runPtool(env, [...listed(), { args: ['init', '--path', store], ifNoId: true }, addToken]);
  if (!r.error) return;
  if (r.ran.includes('init')) {
    // Reclaimed: the handle this attempt persisted (nothing else can reference it) and the store that names it.
    const created = persistentHandles(env).filter((h) => !before.includes(h));
    for (const h of created) {
      try {
        execFileSync('tpm2_evictcontrol', ['-C', 'o', '-c', h], { env, stdio: 'ignore', timeout: 30_000 });
      } catch {
        /* best effort */
      }
    }
    if (created.length) fs.rmSync(db, { force: true });
  }
  throw r.error;
}

/** What `install --device` did about the shared storage primary key (ensureSharedPrimary). */
export interface SharedPrimarySetup {
  /** created: made now; present: already there (kept); occupied: the handle holds something else (left); failed; skipped: no usable TPM. */
  outcome: 'created' | 'present' | 'occupied' | 'failed' | 'skipped';
  handle: string;
  /** Wall time of the whole step (ms). */
  ms: number;
  detail: string;
  /** What to do, for a warning (occupied, failed). */
  remedy?: string;
}

/** Attributes of a storage primary (what tpm2_ptool init makes and what its tokens need as a parent). */
const STORAGE_ATTRIBUTES = ['fixedtpm', 'fixedparent', 'restricted', 'decrypt', 'userwithauth'];

/**
 * The device side's once-per-machine TPM set-up (`install --device`, as root): the shared persistent storage
 * primary at SHARED_PRIMARY_HANDLE, made with tpm2_ptool init's own template (tpm2_createprimary -C o -g sha256
 * -G rsa, tpm2-tools' default attributes), so a user's first enrollment only adds its token under it
 * (`tpm2_ptool init --primary-handle`) instead of creating a primary (an RSA prime search: seconds on real chips).
 * Never throws: a failure is reported with what to do, and users' first enrollments then make it as before.
 * Idempotent: an existing storage primary there is kept; anything else there is left alone and named.
 */
export function ensureSharedPrimary(s: Pick<LinuxKeySettings, 'skipTpm' | 'env'>): SharedPrimarySetup {
  const t0 = monotonicMs();
  const handle = SHARED_PRIMARY_HANDLE;
  const done = (outcome: SharedPrimarySetup['outcome'], detail: string, remedy?: string): SharedPrimarySetup =>
    ({ outcome, handle, ms: Math.round(monotonicMs() - t0), detail, ...(remedy ? { remedy } : {}) });
  const tpm = tpmAvailability(s);
  if (!tpm.usable) return done('skipped', `no TPM token will be used here: ${tpm.reason}`);
  const env = tpm2ToolsEnv(childEnv({}, s.env));
  const later = `users' first TPM enrollment makes its storage primary key itself (about a second each, seconds on a real TPM chip)`;
  const why = (e: unknown) => {
    const err = e as Error & { stderr?: string };
    const text = (typeof err.stderr === 'string' && err.stderr.trim()) || err.message;
    return text.trim().split('\n').filter(Boolean).pop() ?? 'no detail';
  };
  let handles: string[];
  try {
    handles = listPersistentHandles(env);
  } catch (e) {
    return done('failed', `the TPM's persistent handles could not be read (tpm2_getcap: ${why(e)})`, `Install tpm2-tools and check that the TPM answers (tpm2_getcap handles-persistent), then run install --device again; until then ${later}.`);
  }
  if (handles.includes(handle)) {
    let pub: string;
    try {
      pub = execFileSync('tpm2_readpublic', ['-c', handle], { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 30_000 });
    } catch (e) {
      return done('failed', `${handle} is in use but could not be read (tpm2_readpublic: ${why(e)})`, `Check the TPM (tpm2_readpublic -c ${handle}); until then ${later}.`);
    }
    const attrs = /^attributes:\s*\n\s*value:\s*(\S+)/m.exec(pub)?.[1]?.split('|') ?? [];
    const type = /^type:\s*\n\s*value:\s*(\S+)/m.exec(pub)?.[1] ?? '?';
    const bits = /^bits:\s*(\d+)/m.exec(pub)?.[1];
    const what = `${type.toUpperCase()}${bits ? ` ${bits}` : ''}, ${attrs.join('|') || 'no attributes read'}`;
    if (STORAGE_ATTRIBUTES.every((a) => attrs.includes(a)) && !attrs.includes('sign')) return done('present', `the shared storage primary key at ${handle} is already there (${what}): kept`);
    return done('occupied', `${handle} holds another object (${what}), not a storage primary key: left as it is`,
      `Nothing to do if that object is meant to be there: ${later}, at another persistent handle. To give ${handle} to the agent, evict that object (tpm2_evictcontrol -C o -c ${handle}) and run install --device again.`);
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dta-tpm-primary-'));
  try {
    const ctxFile = path.join(dir, 'primary.ctx');
    // Real chips search for RSA primes here: seconds, sometimes tens of seconds.
    execFileSync('tpm2_createprimary', ['-C', 'o', '-g', 'sha256', '-G', 'rsa', '-c', ctxFile], { env, stdio: ['ignore', 'pipe', 'pipe'], timeout: 120_000 });
    execFileSync('tpm2_evictcontrol', ['-C', 'o', '-c', ctxFile, handle], { env, stdio: ['ignore', 'pipe', 'pipe'], timeout: 30_000 });
  } catch (e) {
    return done('failed', `the shared storage primary key could not be created at ${handle} (${why(e)})`,
      `Check that the TPM's owner hierarchy has no password and is not locked out (tpm2_getcap properties-variable), then run install --device again; until then ${later}.`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return done('created', `created the shared storage primary key at ${handle} (RSA 2048, tpm2_ptool init's template)`);
}

/** What tpm2-pkcs11 needs from the environment (TCTI, its store, tabrmd's D-Bus session) and nothing else. */
export function tpmModuleEnv(env: NodeJS.ProcessEnv, store: string, home: string): Record<string, string> {
  const out: Record<string, string> = { TPM2_PKCS11_STORE: store, HOME: home };
  for (const k of ['TPM2_PKCS11_TCTI', 'TSS2_TCTI', 'TPM2TOOLS_TCTI', 'DBUS_SESSION_BUS_ADDRESS', 'DBUS_SYSTEM_BUS_ADDRESS', 'XDG_RUNTIME_DIR', 'TPM2_PKCS11_LOG_LEVEL']) if (env[k]) out[k] = env[k]!;
  return out;
}

const TPM2_PTOOL_PATHS = ['/usr/bin/tpm2_ptool', '/usr/local/bin/tpm2_ptool'];
/** Looked up when needed, not at import (the start-up snapshot loads this module where it is built). */
const python = () => firstExisting(['/usr/bin/python3', '/usr/local/bin/python3']) ?? 'python3';

/** Whether a TPM is worth trying, and if not, why (for `status`). */
export function tpmAvailability(s: Pick<LinuxKeySettings, 'skipTpm' | 'env'> & Partial<LinuxKeySettings>): { usable: true; library: string; via: string } | { usable: false; reason: string } {
  if (s.skipTpm) return { usable: false, reason: 'SkipTPM=true' };
  const library = firstExisting(TPM2_PKCS11_LIBRARIES);
  if (!library) return { usable: false, reason: 'tpm2-pkcs11 is not installed (libtpm2-pkcs11-1)' };
  const tcti = s.env.TPM2_PKCS11_TCTI || s.env.TSS2_TCTI || s.env.TPM2TOOLS_TCTI;
  if (tcti) return { usable: true, library, via: `TCTI ${tcti}` };
  if (fs.existsSync('/dev/tpmrm0')) return { usable: true, library, via: '/dev/tpmrm0' };
  if (fs.existsSync('/dev/tpm0')) return { usable: false, reason: 'a TPM is present (/dev/tpm0) but no resource manager (/dev/tpmrm0, tpm2-abrmd)' };
  return { usable: false, reason: 'no TPM (no /dev/tpmrm0 and no TPM2_PKCS11_TCTI)' };
}

/**
 * The Linux key store: the TPM token when a TPM and its resource manager answer, else the NSS software token of
 * the user's database. Also the certificate store: it lists the personal certificates of both tokens (the NSS
 * database also holds ones installed by earlier versions, with their extractable keys, until the next renewal
 * replaces them).
 */
export class LinuxKeyStore implements DeviceKeyStore, CertificateStore {
  description: string;
  private chosen: { token: Pkcs11Token; info: KeyStoreInfo } | undefined;
  /** The TPM token exists but this machine's TPM cannot open it (made by another TPM, or this one was cleared). */
  private foreign: { store: string; detail: string } | undefined;
  private nss: Pkcs11Token | undefined;

  constructor(private readonly s: LinuxKeySettings) {
    this.description = `NSS database ${s.nssDbDir}`;
  }

  private nssToken(): Pkcs11Token {
    if (this.nss) return this.nss;
    const library = firstExisting(SOFTOKN_LIBRARIES);
    if (!library) {
      throw new AgentError('local', 'NSS_MISSING', 'The NSS software token (libsoftokn3.so) is not installed, so there is nowhere to keep the device key.',
        'Install NSS (Debian/Ubuntu: apt install libnss3; Fedora: dnf install nss-softokn).');
    }
    ensurePrivateDir(this.s.nssDbDir);
    const t = new Pkcs11Token({ library, libraryParameters: softoknParameters(this.s.nssDbDir), protection: 'software', tag: 'nss' });
    try {
      t.open();
    } catch (e) {
      if ((e as AgentError).code === 'TOKEN_HAS_PIN') throw e;
      const msg = (e as Error).message;
      const full = /DEVICE_MEMORY|No space/i.test(msg);
      throw new AgentError('local', full ? 'DISK_FULL' : 'NSS_FAILED', `The NSS database ${this.s.nssDbDir} could not be opened: ${msg}.`,
        full ? 'Free some disk space; the agent tries again on its next run.' : 'Check that you own the database and that it is not damaged (move it aside and run with --forceRenewal).');
    }
    for (const f of ['cert9.db', 'key4.db', 'pkcs11.txt']) {
      const p = path.join(this.s.nssDbDir, f);
      if (fs.existsSync(p)) fs.chmodSync(p, 0o600);
    }
    this.nss = t;
    this.description = `NSS database ${this.s.nssDbDir}`;
    return t;
  }

  /** Chooses the token once: TPM first (unless SkipTPM), falling back to software with the reason. */
  private choose(): { token: Pkcs11Token; info: KeyStoreInfo } {
    if (this.chosen) return this.chosen;
    const tpm = tpmAvailability(this.s);
    let reason: string;
    if (tpm.usable) {
      const store = tpmStoreDir(this.s);
      ensurePrivateDir(store);
      fs.chmodSync(store, 0o700);
      // The library reads its store and TCTI from the environment when it is initialized.
      process.env.TPM2_PKCS11_STORE = store;
      const token = new Pkcs11Token({ library: tpm.library, tokenLabel: TPM_TOKEN_LABEL, protection: 'tpm', tag: 'tpm' });
      try {
        try {
          token.open();
        } catch (e) {
          if ((e as AgentError).code === 'TOKEN_LOGIN_FAILED') this.foreign = { store, detail: (e as Error).message.replace(/\.$/, '') };
          if (!/no token labelled/.test((e as Error).message)) throw e;
          provisionTpmToken(store);
          token.open();
        }
        this.chosen = { token, info: { protection: 'tpm', reason: `TPM 2.0 via ${tpm.via}`, description: `TPM 2.0 token "${TPM_TOKEN_LABEL}" (tpm2-pkcs11, store ${store})` } };
        this.description = `TPM 2.0 token "${TPM_TOKEN_LABEL}" and NSS database ${this.s.nssDbDir}`;
        return this.chosen;
      } catch (e) {
        reason = `the TPM could not be used (${(e as Error).message})`;
      }
    } else {
      reason = tpm.reason;
    }
    const token = this.nssToken();
    this.chosen = { token, info: { protection: 'software', reason, description: `NSS software token of ${this.s.nssDbDir}` } };
    return this.chosen;
  }

  async info(): Promise<KeyStoreInfo> {
    return this.choose().info;
  }

  async unusable(): Promise<{ code: string; message: string } | undefined> {
    this.choose();
    if (!this.foreign) return undefined;
    return {
      code: 'TPM_NOT_THIS_ONE',
      message: `The device key is in a TPM token (${this.foreign.store}) that this machine's TPM cannot open: the token was made by another TPM (a profile copied from another machine) or this TPM was cleared or replaced since. The key cannot be used here, so the certificate cannot be presented or renewed (${this.foreign.detail})`,
    };
  }

  /** Moves the unusable token store aside (kept for the record, owner-only) and makes a new token on this TPM. */
  async replaceUnusable(): Promise<string> {
    const foreign = this.foreign;
    if (!foreign) return '';
    await this.close();
    const aside = `${foreign.store}.unusable-${new Date().toISOString().replace(/[:.]/g, '-')}`;
    fs.renameSync(foreign.store, aside);
    this.foreign = undefined;
    this.choose();
    return aside;
  }

  async generate(algorithm: KeyAlgorithmName, label: string): Promise<StoreKey> {
    return this.choose().token.generate(algorithm, label);
  }

  async find(id: string): Promise<StoreKey | undefined> {
    return this.choose().token.findKey(id);
  }

  async sign(id: string, data: Buffer, hash?: SignHash): Promise<Buffer> {
    const { token } = this.choose();
    const key = token.findKey(id);
    if (!key) throw new AgentError('local', 'KEY_MISSING', `The device key is no longer in the ${this.chosen!.info.description}.`, 'Run: device-trust-agent run --forceRenewal');
    return token.sign(id, key.algorithm, data, hash);
  }

  async decrypt(id: string, ciphertext: Buffer): Promise<Buffer> {
    return this.choose().token.decrypt(id, ciphertext);
  }

  /** The chosen token's keys of ours (the orphan sweep removes only from the token keys are made in). */
  async listOwnKeys(labelPrefix: string): Promise<OwnKeyEntry[]> {
    return this.choose().token.listOwnKeys(labelPrefix);
  }

  async removeUnidentifiedKeys(labelPrefix: string): Promise<number> {
    return this.choose().token.removeUnidentified(labelPrefix);
  }

  /** TPM2_Certify of the key by an AK bound to the EK (platform/tpm-attest.ts); only for a key in the TPM token. */
  async attest(id: string, ask: AskChallenge): Promise<KeyAttestationEvidence> {
    const { token } = this.choose();
    if (token.opts.tag !== 'tpm' || !token.findKey(id)) throw new AttestationUnavailable('TPM_KEY_NOT_IN_TPM', 'the device key is not in the TPM token');
    return attestTpmKey({ store: tpmStoreDir(this.s), keyId: id, tokenLabel: TPM_TOKEN_LABEL, env: childEnv({}, { ...process.env, ...this.s.env }), ask });
  }

  async attach(id: string, req: { certPem: string; chainPem: string[]; label: string }): Promise<StoredCertificate> {
    this.injectedFault();
    return this.choose().token.attach(id, req.certPem, req.chainPem, req.label);
  }

  private injectedFault(): void {
    const fault = storeWriteFault();
    if (fault) {
      throw new AgentError('local', 'DISK_FULL', `Could not file the certificate in the ${this.description}: ${fault.message}.`,
        'Free some disk space; the agent tries again on its next run and the previous certificate is unchanged.');
    }
  }

  async close(): Promise<void> {
    this.chosen?.token.close();
    if (this.nss !== this.chosen?.token) this.nss?.close();
    this.chosen = undefined;
    this.nss = undefined;
  }

  /** Both tokens' personal certificates: the chosen one's first. */
  private tokens(): Pkcs11Token[] {
    const { token } = this.choose();
    const out = [token];
    if (token.opts.tag !== 'nss') {
      try {
        out.push(this.nssToken());
      } catch {
        /* no NSS database: nothing of ours can be in it */
      }
    }
    return out;
  }

  async list(): Promise<StoredCertificate[]> {
    return this.tokens().flatMap((t) => t.listPersonal());
  }

  /**
   * Keys are made in the token and certificates attached to them (attach). This import is only for the SCEP
   * backend's software key, which goes into the NSS software token in-process (no PKCS#12, no child process).
   */
  async install(req: InstallRequest): Promise<StoredCertificate> {
    this.injectedFault();
    return this.nssToken().importKeyAndCertificate(req.keyPem, req.certPem, req.chainPem, req.label);
  }

  /**
   * Both interfaces' remove: a certificate-store id "<tpm|nss>:<CKA_ID hex>", or a bare key id of the chosen
   * token (DeviceKeyStore). The key pair and its certificates go together.
   */
  async remove(id: string): Promise<void> {
    if (/^[0-9a-f]+$/.test(id)) {
      this.choose().token.remove(id);
      return;
    }
    const m = /^(tpm|nss):([0-9a-f]*)$/.exec(id);
    if (!m) return;
    const token = this.tokens().find((t) => t.opts.tag === m[1]);
    token?.remove(m[2]!);
  }

  get nssDbDir(): string {
    return this.s.nssDbDir;
  }

  /** The agent's own mTLS check with the key: openssl + libp11 on the chosen token (token-tls.ts). */
  tlsPresenter(id: string): { presenter: TokenTlsPresenter } | { unavailable: string } | undefined {
    const { token } = this.choose();
    if (!token.findKey(id)) return undefined;
    const tpm = token.opts.tag === 'tpm';
    const spec: TokenTlsSpec = tpm
      ? { module: token.opts.library, tokenLabel: TPM_TOKEN_LABEL, keyId: id, outOfProcess: true, moduleEnv: tpmModuleEnv({ ...process.env, ...this.s.env }, tpmStoreDir(this.s), this.s.home) }
      : { module: token.opts.library, initArgs: softoknParameters(this.s.nssDbDir), tokenLabel: 'NSS Certificate DB', keyId: id };
    const why = tokenTlsUnavailable(spec);
    return why ? { unavailable: why } : { presenter: tokenTlsPresenter(spec) };
  }

  /** The module browsers must load to reach the key: the TPM token's; undefined for the NSS database's own token. */
  browserModule(): { name: string; library: string } | undefined {
    const { token } = this.choose();
    return token.opts.tag === 'tpm' ? { name: 'Device Trust TPM', library: token.opts.library } : undefined;
  }

  /** The key id inside a store id ("nss:ab12…" → "ab12…"), if the id is of the chosen token. */
  keyIdOf(storeId: string): string | undefined {
    const m = /^(tpm|nss):([0-9a-f]+)$/.exec(storeId);
    return m && m[1] === this.choose().token.opts.tag ? m[2] : undefined;
  }
}
