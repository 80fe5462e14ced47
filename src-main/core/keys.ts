import crypto, { type KeyObject } from 'node:crypto';
import { calculateJwkThumbprint, type JWK } from 'jose';
import { x509 } from './x509.js';

export type KeyAlgorithm = 'P-256' | 'RSA-2048';

export interface LocalKey {
  algorithm: KeyAlgorithm;
  privateKey: KeyObject;
  publicKey: KeyObject;
  /** RFC 7638 SHA-256 thumbprint of the public key: binds tokens to this key without revealing it. */
  thumbprint: string;
}

/** Generates the device key with Node's native crypto (see `npm run bench` for why not node-forge). */
export async function generateLocalKey(algorithm: KeyAlgorithm): Promise<LocalKey> {
  const { privateKey, publicKey } = await new Promise<{ privateKey: KeyObject; publicKey: KeyObject }>((resolve, reject) => {
    const cb = (err: Error | null, publicKey: KeyObject, privateKey: KeyObject) => (err ? reject(err) : resolve({ publicKey, privateKey }));
    if (algorithm === 'P-256') crypto.generateKeyPair('ec', { namedCurve: 'P-256' }, cb);
    else crypto.generateKeyPair('rsa', { modulusLength: 2048 }, cb);
  });
  return { algorithm, privateKey, publicKey, thumbprint: await keyThumbprint(publicKey) };
}

export async function keyThumbprint(publicKey: KeyObject): Promise<string> {
  return calculateJwkThumbprint(publicKey.export({ format: 'jwk' }) as JWK, 'sha256');
}

/** Reads a PKCS#8 PEM key back; undefined when it is not a usable key (corrupt file). */
export async function keyFromPem(pem: string): Promise<LocalKey | undefined> {
  let privateKey: KeyObject;
  try {
    privateKey = crypto.createPrivateKey(pem);
  } catch {
    return undefined;
  }
  const publicKey = crypto.createPublicKey(privateKey);
  const algorithm: KeyAlgorithm = privateKey.asymmetricKeyType === 'ec' ? 'P-256' : 'RSA-2048';
  return { algorithm, privateKey, publicKey, thumbprint: await keyThumbprint(publicKey) };
}

export function privateKeyPem(key: LocalKey): string {
  return key.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
}

/** The JWS algorithm this key signs with. */
export function jwsAlgorithm(key: Pick<LocalKey, 'algorithm'>): 'ES256' | 'RS256' {
  return key.algorithm === 'P-256' ? 'ES256' : 'RS256';
}

function webCryptoParams(algorithm: KeyAlgorithm) {
  return algorithm === 'P-256'
    ? { importParams: { name: 'ECDSA', namedCurve: 'P-256' }, signing: { name: 'ECDSA', hash: 'SHA-256' } }
    : { importParams: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' }, signing: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' } };
}

type WebCryptoPair = { keys: crypto.webcrypto.CryptoKeyPair; signingAlgorithm: { name: string; hash: string } };
/** One import per key: a SCEP request signs both a CSR and a self-signed certificate with it. */
const imported = new WeakMap<LocalKey, Promise<WebCryptoPair>>();

/** The key pair as WebCrypto keys for @peculiar/x509; the private half is imported non-extractable, for signing only. */
export function webCryptoKeyPair(key: LocalKey): Promise<WebCryptoPair> {
  let p = imported.get(key);
  if (!p) {
    p = importPair(key);
    imported.set(key, p);
  }
  return p;
}

async function importPair(key: LocalKey): Promise<WebCryptoPair> {
  const { importParams, signing } = webCryptoParams(key.algorithm);
  const subtle = crypto.webcrypto.subtle;
  const privateKey = await subtle.importKey('pkcs8', key.privateKey.export({ format: 'der', type: 'pkcs8' }), importParams, false, ['sign']);
  const publicKey = await subtle.importKey('spki', key.publicKey.export({ format: 'der', type: 'spki' }), importParams, true, ['verify']);
  return { keys: { privateKey, publicKey } as crypto.webcrypto.CryptoKeyPair, signingAlgorithm: signing };
}

export interface CsrOptions {
  /** PKCS#9 challengePassword attribute (SCEP's shared secret); it travels encrypted to the CA. */
  challengePassword?: string | undefined;
}

/** A PKCS#10 request signed by the local key. */
export async function createCsr(key: LocalKey, subject: string, opts: CsrOptions = {}): Promise<string> {
  const { keys, signingAlgorithm } = await webCryptoKeyPair(key);
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: subject,
    keys: keys as never,
    signingAlgorithm,
    extensions: [new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true)],
    ...(opts.challengePassword !== undefined ? { attributes: [new x509.ChallengePasswordAttribute(opts.challengePassword)] } : {}),
  });
  return csr.toString('pem');
}
