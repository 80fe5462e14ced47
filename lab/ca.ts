// The lab PKI. @peculiar/x509 needs reflect-metadata loaded first and a WebCrypto provider.
import 'reflect-metadata';
import crypto, { webcrypto } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as never);

export { x509 };

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;

export const ROOT_CA_CN = 'Device Trust Lab Root CA';
export const ISSUING_CA_CN = 'MTLS Certificate Authority';
/** Files `LabPki.save` writes; the TLS server certificate is not among them (see `LabPki.load`). */
export const PKI_FILES = {
  rootCert: 'root-ca.pem',
  rootKey: 'root-ca.key',
  issuingCert: 'issuing-ca.pem',
  issuingKey: 'issuing-ca.key',
} as const;

const EC_PARAMS: webcrypto.EcKeyGenParams = { name: 'ECDSA', namedCurve: 'P-256' };
const SIGNING: webcrypto.EcdsaParams = { name: 'ECDSA', hash: 'SHA-256' };
const DAY_S = 24 * 60 * 60;
/** Browsers refuse TLS server certificates valid for longer than 398 days. */
const SERVER_VALIDITY_S = 397 * DAY_S;
const BACKDATE_S = 60;

export interface KeyedCertificate {
  cert: x509.X509Certificate;
  privateKey: CryptoKey;
}

export interface IssueOptions {
  /** The subject's public key, usually `Pkcs10CertificateRequest.publicKey`. */
  publicKey: x509.PublicKey | CryptoKey;
  subject: string | x509.JsonName;
  crlUrl: string;
  validitySeconds: number;
  now?: Date;
  /** Defaults to clientAuth only. */
  extendedKeyUsages?: string[];
  /** Added after the standard ones (e.g. the attested-key certificate policy, lab/attestation.ts). */
  extraExtensions?: x509.Extension[];
  /** Hostile answers (lab/org.ts tamper switch): a weak signature hash, e.g. 'SHA-1'. */
  signingHash?: 'SHA-1' | 'SHA-256';
}

export interface RevokedEntry {
  serialNumber: string;
  revokedAt: Date;
}

/** 16 random bytes, high bit clear (a positive INTEGER) and the first byte non-zero (no shorter DER form). */
export function randomSerial(): string {
  const bytes = crypto.randomBytes(16);
  bytes[0] = (bytes[0]! & 0x7f) | 0x40;
  return bytes.toString('hex');
}

/** Lower-case hex without leading zeros, the form used in records and answers. */
export function normalizeSerial(serial: string): string {
  return serial.toLowerCase().replace(/^0+(?=.)/, '');
}

function generateKeyPair(): Promise<CryptoKeyPair> {
  return webcrypto.subtle.generateKey(EC_PARAMS, true, ['sign', 'verify']) as Promise<CryptoKeyPair>;
}

function after(from: Date, seconds: number): Date {
  return new Date(from.getTime() + seconds * 1000);
}

export async function privateKeyPem(key: CryptoKey): Promise<string> {
  const der = await webcrypto.subtle.exportKey('pkcs8', key);
  return x509.PemConverter.encode(der, 'PRIVATE KEY');
}

async function importPrivateKeyPem(pem: string): Promise<CryptoKey> {
  const der = x509.PemConverter.decodeFirst(pem);
  return webcrypto.subtle.importKey('pkcs8', der, EC_PARAMS, true, ['sign']);
}

async function caExtensions(publicKey: CryptoKey, issuer: KeyedCertificate | undefined, pathLength: number): Promise<x509.Extension[]> {
  return [
    new x509.BasicConstraintsExtension(true, pathLength, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
    await x509.SubjectKeyIdentifierExtension.create(publicKey),
    ...(issuer ? [await x509.AuthorityKeyIdentifierExtension.create(issuer.cert.publicKey)] : []),
  ];
}

/** A self-signed CA; also used for the hostile "wrong issuer" answers of the lab. */
export async function createRootCa(commonName: string, validityDays: number, now = new Date()): Promise<KeyedCertificate> {
  const keys = await generateKeyPair();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: [{ CN: [commonName] }],
    notBefore: after(now, -BACKDATE_S),
    notAfter: after(now, validityDays * DAY_S),
    keys,
    signingAlgorithm: SIGNING,
    extensions: await caExtensions(keys.publicKey, undefined, 1),
  });
  return { cert, privateKey: keys.privateKey };
}

async function createIssuingCa(root: KeyedCertificate, now = new Date()): Promise<KeyedCertificate> {
  const keys = await generateKeyPair();
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: [{ CN: [ISSUING_CA_CN] }],
    issuer: root.cert.subjectName,
    notBefore: after(now, -BACKDATE_S),
    notAfter: after(now, 5 * 365 * DAY_S),
    publicKey: keys.publicKey,
    signingKey: root.privateKey,
    signingAlgorithm: SIGNING,
    extensions: await caExtensions(keys.publicKey, root, 0),
  });
  return { cert, privateKey: keys.privateKey };
}

async function createServerCertificate(root: KeyedCertificate, now = new Date()): Promise<KeyedCertificate> {
  const keys = await generateKeyPair();
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: [{ CN: ['localhost'] }],
    issuer: root.cert.subjectName,
    notBefore: after(now, -BACKDATE_S),
    notAfter: after(now, SERVER_VALIDITY_S),
    publicKey: keys.publicKey,
    signingKey: root.privateKey,
    signingAlgorithm: SIGNING,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension([
        { type: 'dns', value: 'localhost' },
        { type: 'ip', value: '127.0.0.1' },
        { type: 'ip', value: '::1' },
      ]),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(root.cert.publicKey),
    ],
  });
  return { cert, privateKey: keys.privateKey };
}

/** A client (device) certificate signed by `ca`: clientAuth, digitalSignature, a CRL distribution point. */
export async function issueCertificate(ca: KeyedCertificate, opts: IssueOptions): Promise<x509.X509Certificate> {
  const now = opts.now ?? new Date();
  return x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: opts.subject,
    issuer: ca.cert.subjectName,
    notBefore: after(now, -BACKDATE_S),
    notAfter: after(now, opts.validitySeconds),
    publicKey: opts.publicKey,
    signingKey: ca.privateKey,
    signingAlgorithm: opts.signingHash ? { ...SIGNING, hash: opts.signingHash } : SIGNING,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension(opts.extendedKeyUsages ?? [x509.ExtendedKeyUsage.clientAuth]),
      new x509.CRLDistributionPointsExtension([opts.crlUrl]),
      await x509.SubjectKeyIdentifierExtension.create(opts.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(ca.cert.publicKey),
      ...(opts.extraExtensions ?? []),
    ],
  });
}

/** A DER CRL signed by `ca`, valid for a day. */
export async function createCrl(ca: KeyedCertificate, revoked: RevokedEntry[], now = new Date()): Promise<ArrayBuffer> {
  const crl = await x509.X509CrlGenerator.create({
    issuer: ca.cert.subjectName,
    thisUpdate: now,
    nextUpdate: after(now, DAY_S),
    signingKey: ca.privateKey,
    signingAlgorithm: SIGNING,
    extensions: [await x509.AuthorityKeyIdentifierExtension.create(ca.cert.publicKey)],
    entries: revoked.map((r) => ({ serialNumber: normalizeSerial(r.serialNumber), revocationDate: r.revokedAt, reason: x509.X509CrlReason.unspecified })),
  });
  return crl.rawData;
}

/** Root CA, issuing CA ("MTLS Certificate Authority", signed by the root) and a localhost TLS certificate. */
export class LabPki {
  private constructor(
    readonly root: KeyedCertificate,
    readonly issuing: KeyedCertificate,
    readonly server: KeyedCertificate,
  ) {}

  static async create(): Promise<LabPki> {
    const root = await createRootCa(ROOT_CA_CN, 10 * 365);
    return new LabPki(root, await createIssuingCa(root), await createServerCertificate(root));
  }

  /**
   * Reads the CAs `save` wrote. The TLS server certificate is made afresh on every load, so a long-lived
   * lab never serves an expired one; clients trust the root, which stays the same.
   */
  static async load(dir: string): Promise<LabPki> {
    const read = (name: string) => fs.readFile(path.join(dir, name), 'utf8');
    const root = { cert: new x509.X509Certificate(await read(PKI_FILES.rootCert)), privateKey: await importPrivateKeyPem(await read(PKI_FILES.rootKey)) };
    const issuing = { cert: new x509.X509Certificate(await read(PKI_FILES.issuingCert)), privateKey: await importPrivateKeyPem(await read(PKI_FILES.issuingKey)) };
    return new LabPki(root, issuing, await createServerCertificate(root));
  }

  /** `load` if `dir` holds a saved PKI, otherwise `create` and `save` there. */
  static async loadOrCreate(dir: string): Promise<LabPki> {
    try {
      await fs.access(path.join(dir, PKI_FILES.rootCert));
    } catch {
      const pki = await LabPki.create();
      await pki.save(dir);
      return pki;
    }
    return LabPki.load(dir);
  }

  async save(dir: string): Promise<void> {
    await fs.mkdir(dir, { recursive: true, mode: 0o700 });
    const writeKey = async (name: string, key: CryptoKey) => {
      const file = path.join(dir, name);
      await fs.writeFile(file, await privateKeyPem(key), { mode: 0o600 });
      await fs.chmod(file, 0o600); // mode applies only when the file is created
    };
    await fs.writeFile(path.join(dir, PKI_FILES.rootCert), this.rootCaPem);
    await fs.writeFile(path.join(dir, PKI_FILES.issuingCert), this.issuingCaPem);
    await writeKey(PKI_FILES.rootKey, this.root.privateKey);
    await writeKey(PKI_FILES.issuingKey, this.issuing.privateKey);
  }

  get rootCaPem(): string {
    return this.root.cert.toString('pem');
  }

  get issuingCaPem(): string {
    return this.issuing.cert.toString('pem');
  }

  /** Issuing CA first, then the root, as PROTOCOL §1 and §4 publish it. */
  get chainPem(): string[] {
    return [this.issuingCaPem, this.rootCaPem];
  }

  async serverTlsCredentials(): Promise<{ cert: string; key: string }> {
    return { cert: this.server.cert.toString('pem'), key: await privateKeyPem(this.server.privateKey) };
  }

  issueClientCertificate(opts: IssueOptions): Promise<x509.X509Certificate> {
    return issueCertificate(this.issuing, opts);
  }

  createCrl(revoked: RevokedEntry[], now?: Date): Promise<ArrayBuffer> {
    return createCrl(this.issuing, revoked, now);
  }
}
