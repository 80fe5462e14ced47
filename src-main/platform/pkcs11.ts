import crypto from 'node:crypto';
import { createRequire } from 'node:module';
import { describeCertificate, parseCertificate } from '../base/certinfo.js';
import { AgentError } from '../base/errors.js';
import { testPausePoint } from '../base/test-hooks.js';
import type { KeyAlgorithmName, KeyProtection, OwnKeyEntry, SignHash, StoreKey } from './keystore.js';
import type { StoredCertificate } from './types.js';

/**
 * One PKCS#11 token driven in-process through pkcs11js: the NSS software token (libsoftokn3 opened on the
 * user's NSS database) or a TPM 2.0 token (tpm2-pkcs11). Keys are generated inside it (sensitive,
 * non-extractable), signatures are made by it, and certificates are filed beside their key under the same
 * CKA_ID — NSS's own convention (SHA-1 of the public point / modulus) — so NSS, and through it Chromium and
 * Firefox, pair them.
 */
type P11 = typeof import('pkcs11js');
type Module = InstanceType<P11['PKCS11']>;
type Handle = Buffer;

let lib: P11 | undefined;
/** pkcs11js is an optional native dependency (built on `npm install`, see `npm run build:native`). */
export function loadPkcs11js(): P11 {
  if (lib) return lib;
  try {
    lib = createRequire(import.meta.url)('pkcs11js') as P11;
    return lib;
  } catch (e) {
    throw new AgentError('local', 'PKCS11_UNAVAILABLE', `The PKCS#11 binding (pkcs11js) could not be loaded: ${(e as Error).message}.`,
      'Reinstall the agent; from source run: npm run build:native');
  }
}

const P256_OID = Buffer.from('06082a8648ce3d030107', 'hex');
const P256_SPKI_PREFIX = Buffer.from('3059301306072a8648ce3d020106082a8648ce3d030107034200', 'hex');
/** DER DigestInfo prefixes (RFC 8017 §9.2 note 1): CKM_RSA_PKCS signs DigestInfo‖hash for any digest. */
const DIGEST_INFO: Record<SignHash, Buffer> = {
  sha1: Buffer.from('3021300906052b0e03021a05000414', 'hex'),
  sha256: Buffer.from('3031300d060960864801650304020105000420', 'hex'),
  sha512: Buffer.from('3051300d060960864801650304020305000440', 'hex'),
};

/** Modules are initialized once per process (a second C_Initialize is an error), keyed by library path. */
const modules = new Map<string, { mod: Module; users: number }>();

export interface TokenOptions {
  library: string;
  /** NSS softokn's configuration string (configdir=…); undefined for ordinary modules. */
  libraryParameters?: string;
  /** Picks the slot: by token label, or the first slot whose token passes. */
  tokenLabel?: string;
  protection: KeyProtection;
  /** Short tag used in store ids: "tpm" or "nss". */
  tag: string;
}

/**
 * tpm2-pkcs11 keeps its objects in SQLite and answers CKR_GENERAL_ERROR ("Failed to add public object to db") when
 * another process — the tray polling status while the daemon renews — reads the store at the moment it writes
 * (tpm2-pkcs11 #701). Writes are retried a few times with a short pause; a store that stays busy is a local failure the next pass retries.
 */
const BUSY_PAUSES_MS = [150, 400, 1000, 2000];

function pauseSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function tokenLabel(raw: string): string {
  return raw.replace(/\0/g, '').trim();
}

export class Pkcs11Token {
  private mod!: Module;
  private session!: Handle;
  private p!: P11;
  private opened = false;
  label = '';

  constructor(readonly opts: TokenOptions) {}

  /** Loads the module, finds (or creates) the token, opens an RW session and logs in with the empty user PIN. */
  open(): void {
    if (this.opened) return;
    const p = (this.p = loadPkcs11js());
    let entry = modules.get(this.opts.library);
    if (!entry) {
      const mod = new p.PKCS11();
      mod.load(this.opts.library);
      try {
        mod.C_Initialize(this.opts.libraryParameters ? { libraryParameters: this.opts.libraryParameters } : undefined);
      } catch (e) {
        if ((e as { code?: number }).code !== p.CKR_CRYPTOKI_ALREADY_INITIALIZED) {
          mod.close();
          throw e;
        }
      }
      entry = { mod, users: 0 };
      modules.set(this.opts.library, entry);
    }
    entry.users++;
    this.mod = entry.mod;
    try {
      const slot = this.findSlot();
      const info = this.mod.C_GetTokenInfo(slot);
      this.label = tokenLabel(info.label);
      this.session = this.mod.C_OpenSession(slot, p.CKF_RW_SESSION | p.CKF_SERIAL_SESSION);
      // A fresh NSS database: its user PIN is set to empty (the SO PIN of a new NSS database is empty too).
      if (!(info.flags & p.CKF_USER_PIN_INITIALIZED)) this.initEmptyUserPin(slot, '');
      this.login();
      this.opened = true;
    } catch (e) {
      this.release();
      throw e;
    }
  }

  private findSlot(): Handle {
    const p = this.p;
    const slots = this.mod.C_GetSlotList(true);
    if (!this.opts.tokenLabel) {
      // NSS softokn: slot 1 is "Generic Crypto Services" (no objects), slot 2 the database's token.
      const db = slots.find((s: Handle) => (this.mod.C_GetTokenInfo(s).flags & p.CKF_TOKEN_INITIALIZED) && /Certificate DB|Private Key/i.test(tokenLabel(this.mod.C_GetTokenInfo(s).label)));
      const s = db ?? slots[slots.length - 1];
      if (!s) throw new Error('the module has no token');
      return s;
    }
    const want = this.opts.tokenLabel;
    const found = slots.find((s: Handle) => {
      const ti = this.mod.C_GetTokenInfo(s);
      return ti.flags & p.CKF_TOKEN_INITIALIZED && tokenLabel(ti.label) === want;
    });
    if (found) return found;
    throw new Error(`no token labelled "${want}"`);
  }

  /** Browsers never prompt only for tokens with an empty user PIN (a PIN token makes headless Chromium hang). */
  private initEmptyUserPin(slot: Handle, soPin: string): void {
    const p = this.p;
    const so = this.mod.C_OpenSession(slot, p.CKF_RW_SESSION | p.CKF_SERIAL_SESSION);
    try {
      this.mod.C_Login(so, p.CKU_SO, soPin);
      this.mod.C_InitPIN(so, '');
      this.mod.C_Logout(so);
    } finally {
      this.mod.C_CloseSession(so);
    }
  }

  private login(): void {
    const p = this.p;
    try {
      // Needed even on empty-PIN tokens: tpm2-pkcs11 refuses C_GenerateKeyPair/C_CreateObject otherwise.
      this.mod.C_Login(this.session, p.CKU_USER, '');
    } catch (e) {
      const code = (e as { code?: number }).code;
      if (code === p.CKR_USER_ALREADY_LOGGED_IN) return;
      if (code === p.CKR_PIN_INCORRECT || code === p.CKR_PIN_LEN_RANGE) {
        throw new AgentError('local', 'TOKEN_HAS_PIN', `The token "${this.label}" is protected by a password, so browsers would ask for it (and headless ones hang).`,
          'Remove the password of the NSS database (certutil -W) or set up a token with an empty user PIN.');
      }
      // The token is there but will not open: for tpm2-pkcs11, its wrapping key cannot be unsealed by this TPM.
      throw new AgentError('local', 'TOKEN_LOGIN_FAILED', `The token "${this.label}" refused the log-in (${(e as Error).message}).`, undefined, { cause: e });
    }
  }

  private release(): void {
    const entry = modules.get(this.opts.library);
    if (!entry) return;
    if (--entry.users <= 0) {
      modules.delete(this.opts.library);
      try {
        entry.mod.C_Finalize();
        entry.mod.close();
      } catch {
        /* closing is best effort */
      }
    }
  }

  close(): void {
    if (!this.opened) return;
    this.opened = false;
    try {
      this.mod.C_CloseSession(this.session);
    } catch {
      /* already closed */
    }
    this.release();
  }

  private find(template: { type: number; value?: unknown }[]): Handle[] {
    this.mod.C_FindObjectsInit(this.session, template as never);
    const out: Handle[] = [];
    try {
      for (;;) {
        const batch = this.mod.C_FindObjects(this.session, 64);
        if (!batch.length) break;
        out.push(...batch);
      }
    } finally {
      this.mod.C_FindObjectsFinal(this.session);
    }
    return out;
  }

  private attr(h: Handle, type: number): Buffer | undefined {
    try {
      return this.mod.C_GetAttributeValue(this.session, h, [{ type }])[0]?.value as Buffer | undefined;
    } catch {
      return undefined;
    }
  }

  /** Runs one write to the token, retried while the store is busy (see BUSY_PAUSES_MS). */
  private write<T>(what: string, fn: () => T): T {
    for (let attempt = 0; ; attempt++) {
      try {
        return fn();
      } catch (e) {
        if ((e as { code?: number }).code !== this.p.CKR_GENERAL_ERROR) throw e;
        const pause = BUSY_PAUSES_MS[attempt];
        if (pause === undefined) {
          throw new AgentError('local', 'TOKEN_BUSY', `The token "${this.label}" failed to ${what} ${BUSY_PAUSES_MS.length + 1} times (${(e as Error).message}); another program was probably using it at the same moment. Nothing was changed.`,
            'Nothing to do at once: the next pass tries again. If this repeats, see which programs hold the token (lsof on its store) and close them.', { cause: e });
        }
        pauseSync(pause);
      }
    }
  }

  /** The key-pair generation's mechanism and templates (token objects, sensitive, never extractable). */
  private keyPairRequest(algorithm: KeyAlgorithmName, label: string): [{ mechanism: number; parameter: never }, { type: number; value: unknown }[], { type: number; value: unknown }[]] {
    const p = this.p;
    // The pair has an id from the moment it exists (a random one until its NSS-style id is known): a pass killed in
    // between leaves a key the orphan sweep can find and remove, never one without an id that stays for good.
    const provisional = crypto.randomBytes(20);
    const common = [{ type: p.CKA_TOKEN, value: true }, { type: p.CKA_LABEL, value: label }, { type: p.CKA_ID, value: provisional }];
    const priv = [...common, { type: p.CKA_PRIVATE, value: true }, { type: p.CKA_SENSITIVE, value: true }, { type: p.CKA_EXTRACTABLE, value: false }, { type: p.CKA_SIGN, value: true }];
    return algorithm === 'P-256'
      ? [{ mechanism: p.CKM_EC_KEY_PAIR_GEN, parameter: null as never }, [...common, { type: p.CKA_VERIFY, value: true }, { type: p.CKA_EC_PARAMS, value: P256_OID }], priv]
      // RSA keys also decrypt: a SCEP CA encrypts its answer to the device key.
      : [{ mechanism: p.CKM_RSA_PKCS_KEY_PAIR_GEN, parameter: null as never },
        [...common, { type: p.CKA_VERIFY, value: true }, { type: p.CKA_ENCRYPT, value: true }, { type: p.CKA_MODULUS_BITS, value: 2048 }, { type: p.CKA_PUBLIC_EXPONENT, value: Buffer.from([1, 0, 1]) }],
        [...priv, { type: p.CKA_DECRYPT, value: true }]];
  }

  generate(algorithm: KeyAlgorithmName, label: string): StoreKey {
    const [mechanism, pub, priv] = this.keyPairRequest(algorithm, label);
    const kp = this.write('make a key pair', () => this.mod.C_GenerateKeyPair(this.session, mechanism, pub as never, priv as never));
    return this.fileUnderId(kp, algorithm);
  }

  /** Files a new pair under NSS's id for it (SHA-1 of the public point or modulus), where NSS pairs certificates with keys. */
  private fileUnderId(kp: { publicKey: Handle; privateKey: Handle }, algorithm: KeyAlgorithmName): StoreKey {
    const p = this.p;
    testPausePoint('log:key pair made in the token, before its final CKA_ID');
    const { spki, idSource } = this.publicOf(kp.publicKey, algorithm);
    const id = crypto.createHash('sha1').update(idSource).digest();
    for (const h of [kp.publicKey, kp.privateKey]) this.write('file the key under its id', () => this.mod.C_SetAttributeValue(this.session, h, [{ type: p.CKA_ID, value: id }]));
    return { id: id.toString('hex'), algorithm, spki, protection: this.opts.protection };
  }

  /** SPKI and NSS's ID source: the raw EC point, or the RSA modulus. */
  private publicOf(pub: Handle, algorithm: KeyAlgorithmName): { spki: Buffer; idSource: Buffer } {
    const p = this.p;
    if (algorithm === 'P-256') {
      let point = this.attr(pub, p.CKA_EC_POINT)!;
      // CKA_EC_POINT is a DER OCTET STRING around the uncompressed point.
      if (point.length === 67 && point[0] === 0x04 && point[1] === 0x41) point = point.subarray(2);
      return { spki: Buffer.concat([P256_SPKI_PREFIX, point]), idSource: point };
    }
    const n = this.attr(pub, p.CKA_MODULUS)!;
    const e = this.attr(pub, p.CKA_PUBLIC_EXPONENT)!;
    const key = crypto.createPublicKey({ key: { kty: 'RSA', n: n.toString('base64url'), e: e.toString('base64url') }, format: 'jwk' });
    return { spki: key.export({ format: 'der', type: 'spki' }), idSource: n };
  }

  private objectsWithId(id: Buffer, cls?: number): Handle[] {
    const p = this.p;
    return this.find([{ type: p.CKA_ID, value: id }, ...(cls !== undefined ? [{ type: p.CKA_CLASS, value: cls }] : [])]);
  }

  findKey(idHex: string): StoreKey | undefined {
    const p = this.p;
    const id = Buffer.from(idHex, 'hex');
    if (!this.objectsWithId(id, p.CKO_PRIVATE_KEY).length) return undefined;
    const pub = this.objectsWithId(id, p.CKO_PUBLIC_KEY)[0];
    let spki: Buffer | undefined;
    let algorithm: KeyAlgorithmName = 'P-256';
    if (pub) {
      const type = this.attr(pub, p.CKA_KEY_TYPE)?.readUIntLE(0, 4);
      algorithm = type === p.CKK_RSA ? 'RSA-2048' : 'P-256';
      spki = this.publicOf(pub, algorithm).spki;
    } else {
      // Some tokens keep no public-key object: the certificate filed with the key carries the public key.
      const cert = this.objectsWithId(id, p.CKO_CERTIFICATE)[0];
      const der = cert && this.attr(cert, p.CKA_VALUE);
      if (!der) return undefined;
      const k = new crypto.X509Certificate(der).publicKey;
      algorithm = k.asymmetricKeyType === 'rsa' ? 'RSA-2048' : 'P-256';
      spki = k.export({ format: 'der', type: 'spki' });
    }
    return { id: idHex, algorithm, spki, protection: this.opts.protection };
  }

  private privateKey(idHex: string): Handle {
    const key = this.objectsWithId(Buffer.from(idHex, 'hex'), this.p.CKO_PRIVATE_KEY)[0];
    if (!key) throw new AgentError('local', 'KEY_MISSING', `The device key ${idHex} is no longer in the token "${this.label}".`, 'Run: device-trust-agent run --forceRenewal');
    return key;
  }

  sign(idHex: string, algorithm: KeyAlgorithmName, data: Buffer, hash: SignHash = 'sha256'): Buffer {
    const p = this.p;
    const key = this.privateKey(idHex);
    if (algorithm === 'P-256') {
      this.mod.C_SignInit(this.session, { mechanism: p.CKM_ECDSA, parameter: null as never }, key);
      return Buffer.from(this.mod.C_Sign(this.session, crypto.createHash('sha256').update(data).digest(), Buffer.alloc(132)));
    }
    if (hash !== 'sha256') {
      // Other digests (a SCEP CA offering only SHA-1 or SHA-512): the raw mechanism over DigestInfo, same signature.
      this.mod.C_SignInit(this.session, { mechanism: p.CKM_RSA_PKCS, parameter: null as never }, key);
      return Buffer.from(this.mod.C_Sign(this.session, Buffer.concat([DIGEST_INFO[hash], crypto.createHash(hash).update(data).digest()]), Buffer.alloc(512)));
    }
    this.mod.C_SignInit(this.session, { mechanism: p.CKM_SHA256_RSA_PKCS, parameter: null as never }, key);
    return Buffer.from(this.mod.C_Sign(this.session, data, Buffer.alloc(512)));
  }

  /** RSA PKCS#1 v1.5 decryption by the token (the padding is removed there); the key never leaves it. */
  decrypt(idHex: string, ciphertext: Buffer): Buffer {
    const p = this.p;
    const key = this.privateKey(idHex);
    this.mod.C_DecryptInit(this.session, { mechanism: p.CKM_RSA_PKCS, parameter: null as never }, key);
    return Buffer.from(this.mod.C_Decrypt(this.session, ciphertext, Buffer.alloc(512)));
  }

  /** Private keys whose label starts with `labelPrefix`, and whether a certificate shares each one's CKA_ID. */
  listOwnKeys(labelPrefix: string): OwnKeyEntry[] {
    const p = this.p;
    const out: OwnKeyEntry[] = [];
    for (const h of this.find([{ type: p.CKA_CLASS, value: p.CKO_PRIVATE_KEY }])) {
      const label = this.attr(h, p.CKA_LABEL)?.toString('utf8') ?? '';
      const id = this.attr(h, p.CKA_ID);
      if (!label.startsWith(labelPrefix) || !id?.length) continue;
      out.push({ id: id.toString('hex'), label, hasCertificate: this.objectsWithId(id, p.CKO_CERTIFICATE).length > 0 });
    }
    return out;
  }

  /**
   * Removes key objects labelled `labelPrefix…` that have no CKA_ID (made by versions that set the id only after
   * generation, and killed in between): nothing can reference them, so they would stay for good. Returns how many.
   */
  removeUnidentified(labelPrefix: string): number {
    const p = this.p;
    let n = 0;
    for (const cls of [p.CKO_PRIVATE_KEY, p.CKO_PUBLIC_KEY]) {
      for (const h of this.find([{ type: p.CKA_CLASS, value: cls }])) {
        const label = this.attr(h, p.CKA_LABEL)?.toString('utf8') ?? '';
        if (!label.startsWith(labelPrefix) || this.attr(h, p.CKA_ID)?.length) continue;
        this.write('remove a key object', () => this.mod.C_DestroyObject(this.session, h));
        if (cls === p.CKO_PRIVATE_KEY) n++;
      }
    }
    return n;
  }

  /** Writes a certificate object; `id` pairs it with its key (issuing CAs get their own id and no key). */
  private createCertificate(der: Buffer, id: Buffer, label: string): void {
    const p = this.p;
    const x = new crypto.X509Certificate(der);
    const parsed = parseCertificateDer(der);
    this.write('file a certificate', () => this.mod.C_CreateObject(this.session, [
      { type: p.CKA_CLASS, value: p.CKO_CERTIFICATE },
      { type: p.CKA_CERTIFICATE_TYPE, value: p.CKC_X_509 },
      { type: p.CKA_TOKEN, value: true },
      { type: p.CKA_PRIVATE, value: false },
      { type: p.CKA_ID, value: id },
      { type: p.CKA_LABEL, value: label },
      { type: p.CKA_SUBJECT, value: parsed.subject },
      { type: p.CKA_ISSUER, value: parsed.issuer },
      { type: p.CKA_SERIAL_NUMBER, value: parsed.serial },
      { type: p.CKA_VALUE, value: Buffer.from(x.raw) },
    ] as never));
  }

  attach(idHex: string, certPem: string, chainPem: string[], label: string): StoredCertificate {
    const p = this.p;
    const id = Buffer.from(idHex, 'hex');
    if (!this.objectsWithId(id, p.CKO_PRIVATE_KEY).length) {
      throw new AgentError('local', 'KEY_MISSING', `The device key ${idHex} is not in the token "${this.label}", so its certificate cannot be filed with it.`, 'Run: device-trust-agent run --forceRenewal');
    }
    const der = Buffer.from(new crypto.X509Certificate(certPem).raw);
    const existing = this.objectsWithId(id, p.CKO_CERTIFICATE).filter((h) => this.attr(h, p.CKA_VALUE)?.equals(der));
    if (!existing.length) this.createCertificate(der, id, label);
    for (const ca of chainPem) {
      // Issuing CAs help browsers send the whole chain; a failure to file one is not fatal.
      try {
        const caDer = Buffer.from(new crypto.X509Certificate(ca).raw);
        if (this.find([{ type: p.CKA_CLASS, value: p.CKO_CERTIFICATE }, { type: p.CKA_VALUE, value: caDer }]).length) continue;
        this.createCertificate(caDer, crypto.createHash('sha1').update(caDer).digest(), describeCertificate(parseCertificate(ca)).subjectCN || 'issuing CA');
      } catch {
        /* see above */
      }
    }
    return { id: `${this.opts.tag}:${idHex}`, pem: certPem, info: describeCertificate(parseCertificate(certPem)) };
  }

  /**
   * Imports a software key (SCEP only: its answers are encrypted to a key the agent must hold) with its
   * certificate. The key is marked sensitive and non-extractable in the token from then on.
   */
  importKeyAndCertificate(keyPem: string, certPem: string, chainPem: string[], label: string): StoredCertificate {
    const p = this.p;
    const priv = crypto.createPrivateKey(keyPem);
    const jwk = priv.export({ format: 'jwk' }) as Record<string, string>;
    const b = (v: string) => Buffer.from(v, 'base64url');
    const common = [
      { type: p.CKA_CLASS, value: p.CKO_PRIVATE_KEY }, { type: p.CKA_TOKEN, value: true }, { type: p.CKA_PRIVATE, value: true },
      { type: p.CKA_SENSITIVE, value: true }, { type: p.CKA_EXTRACTABLE, value: false }, { type: p.CKA_SIGN, value: true }, { type: p.CKA_LABEL, value: label },
    ];
    let id: Buffer;
    if (jwk.kty === 'EC') {
      const point = Buffer.concat([Buffer.from([4]), b(jwk.x!), b(jwk.y!)]);
      id = crypto.createHash('sha1').update(point).digest();
      this.mod.C_CreateObject(this.session, [...common, { type: p.CKA_KEY_TYPE, value: p.CKK_EC }, { type: p.CKA_ID, value: id }, { type: p.CKA_EC_PARAMS, value: P256_OID }, { type: p.CKA_VALUE, value: b(jwk.d!) }] as never);
    } else {
      id = crypto.createHash('sha1').update(b(jwk.n!)).digest();
      this.mod.C_CreateObject(this.session, [...common, { type: p.CKA_KEY_TYPE, value: p.CKK_RSA }, { type: p.CKA_ID, value: id }, { type: p.CKA_DECRYPT, value: true },
        { type: p.CKA_MODULUS, value: b(jwk.n!) }, { type: p.CKA_PUBLIC_EXPONENT, value: b(jwk.e!) }, { type: p.CKA_PRIVATE_EXPONENT, value: b(jwk.d!) },
        { type: p.CKA_PRIME_1, value: b(jwk.p!) }, { type: p.CKA_PRIME_2, value: b(jwk.q!) }, { type: p.CKA_EXPONENT_1, value: b(jwk.dp!) },
        { type: p.CKA_EXPONENT_2, value: b(jwk.dq!) }, { type: p.CKA_COEFFICIENT, value: b(jwk.qi!) }] as never);
    }
    return this.attach(id.toString('hex'), certPem, chainPem, label);
  }

  /** Certificates that have their private key in this token (NSS's "u" trust: personal certificates). */
  listPersonal(): StoredCertificate[] {
    const p = this.p;
    const out: StoredCertificate[] = [];
    for (const h of this.find([{ type: p.CKA_CLASS, value: p.CKO_CERTIFICATE }])) {
      const id = this.attr(h, p.CKA_ID);
      const der = this.attr(h, p.CKA_VALUE);
      if (!id?.length || !der || !this.objectsWithId(id, p.CKO_PRIVATE_KEY).length) continue;
      const pem = new crypto.X509Certificate(der).toString();
      out.push({ id: `${this.opts.tag}:${id.toString('hex')}`, pem, info: describeCertificate(parseCertificate(pem)) });
    }
    return out;
  }

  /** What the token says about each private key (tests and diagnostics): never its value. */
  privateKeyFacts(): { id: string; sensitive: boolean; extractable: boolean; valueReadable: boolean }[] {
    const p = this.p;
    return this.find([{ type: p.CKA_CLASS, value: p.CKO_PRIVATE_KEY }]).map((h) => {
      const flag = (t: number) => (this.attr(h, t)?.[0] ?? 0) !== 0;
      return { id: this.attr(h, p.CKA_ID)?.toString('hex') ?? '', sensitive: flag(p.CKA_SENSITIVE), extractable: flag(p.CKA_EXTRACTABLE), valueReadable: this.attr(h, p.CKA_VALUE) !== undefined };
    });
  }

  /** Destroys the key pair and every certificate filed under its id. */
  remove(idHex: string): void {
    for (const h of this.objectsWithId(Buffer.from(idHex, 'hex'))) this.write('remove a key object', () => this.mod.C_DestroyObject(this.session, h));
  }
}

/** Subject, issuer and serial (DER) for the certificate object's search attributes. */
function parseCertificateDer(der: Buffer): { subject: Buffer; issuer: Buffer; serial: Buffer } {
  // TBSCertificate: [0] version, serial INTEGER, signature AlgId, issuer Name, validity, subject Name, ...
  const tlv = (buf: Buffer, off: number) => {
    let len = buf[off + 1]!;
    let hdr = 2;
    if (len & 0x80) {
      const n = len & 0x7f;
      len = 0;
      for (let i = 0; i < n; i++) len = len * 256 + buf[off + 2 + i]!;
      hdr = 2 + n;
    }
    return { start: off, content: off + hdr, end: off + hdr + len };
  };
  const cert = tlv(der, 0);
  const tbs = tlv(der, cert.content);
  let off = tbs.content;
  if (der[off] === 0xa0) off = tlv(der, off).end;
  const serial = tlv(der, off);
  const sigAlg = tlv(der, serial.end);
  const issuer = tlv(der, sigAlg.end);
  const validity = tlv(der, issuer.end);
  const subject = tlv(der, validity.end);
  return { serial: der.subarray(serial.start, serial.end), issuer: der.subarray(issuer.start, issuer.end), subject: der.subarray(subject.start, subject.end) };
}
