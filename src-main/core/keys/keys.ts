import crypto, { type KeyObject } from 'node:crypto';
// The thumbprint module alone (not jose's whole index), and @peculiar/x509 only when a CSR is made: `status` and
// the daemon use store keys without loading either library whole.
import { calculateJwkThumbprint } from 'jose/jwk/thumbprint';
import type { JWK } from 'jose';
import type { AskChallenge, DeviceKeyStore, KeyAttestationEvidence, SignHash, StoreKey } from '../../platform/keystore.js';

export type KeyAlgorithm = 'P-256' | 'RSA-2048';

export interface LocalKey {
  algorithm: KeyAlgorithm;
  publicKey: KeyObject;
  /** RFC 7638 SHA-256 thumbprint of the public key: binds tokens to this key without revealing it. */
  thumbprint: string;
  /**
   * Only for a key the agent made in software (platforms whose key store does not make keys yet, and SCEP,
   * whose answers are encrypted to the key). A key in a key store has none: it signs through `sign`.
   */
  privateKey?: KeyObject;
  /** The key store's handle of a key that lives in it (see platform/keystore.ts). */
  storeId?: string;
  /** How the key is protected: in a TPM, in a software token, or (legacy) the agent's own file. */
  protection: 'tpm' | 'software' | 'file';
  /** ES256 (raw r‖s) or RS256 signature over `data` (RSA: over `hash` if given), made wherever the key lives. */
  sign(data: Buffer, hash?: SignHash): Promise<Buffer>;
  /**
   * RSA only: PKCS#1 v1.5 decryption where the key lives, returning the unpadded plaintext (SCEP's answer key).
   * Absent for a key in a store that cannot decrypt.
   */
  decrypt?(ciphertext: Buffer): Promise<Buffer>;
  /** Proof that the key is TPM-resident (core/keys/attestation.ts), when its store can give one. */
  attest?: (ask: AskChallenge) => Promise<KeyAttestationEvidence>;
}

function softwareSigner(algorithm: KeyAlgorithm, privateKey: KeyObject): (data: Buffer, hash?: SignHash) => Promise<Buffer> {
  return async (data, hash) => crypto.sign(algorithm === 'P-256' ? 'sha256' : hash ?? 'sha256', data, algorithm === 'P-256' ? { key: privateKey, dsaEncoding: 'ieee-p1363' } : privateKey);
}

/** A key that lives in a key store: the agent holds its public half and a way to ask the store to sign (and decrypt). */
export async function keyInStore(store: DeviceKeyStore, k: StoreKey): Promise<LocalKey> {
  const publicKey = crypto.createPublicKey({ key: k.spki, format: 'der', type: 'spki' });
  return {
    algorithm: k.algorithm, publicKey, thumbprint: await keyThumbprint(publicKey), storeId: k.id, protection: k.protection,
    sign: (data, hash) => store.sign(k.id, data, hash),
    ...(store.decrypt && k.algorithm === 'RSA-2048' ? { decrypt: (c: Buffer) => store.decrypt!(k.id, c) } : {}),
    ...(store.attest && k.protection === 'tpm' ? { attest: (ask: AskChallenge) => store.attest!(k.id, ask) } : {}),
  };
}

/** Generates the device key with Node's native crypto (see `npm run bench` for why not node-forge). */
/** A key made in software by the agent (it holds the private half). */
export type SoftwareKey = LocalKey & { privateKey: KeyObject };

export async function generateLocalKey(algorithm: KeyAlgorithm): Promise<SoftwareKey> {
  const { privateKey, publicKey } = await new Promise<{ privateKey: KeyObject; publicKey: KeyObject }>((resolve, reject) => {
    const cb = (err: Error | null, publicKey: KeyObject, privateKey: KeyObject) => (err ? reject(err) : resolve({ publicKey, privateKey }));
    if (algorithm === 'P-256') crypto.generateKeyPair('ec', { namedCurve: 'P-256' }, cb);
    else crypto.generateKeyPair('rsa', { modulusLength: 2048 }, cb);
  });
  return { algorithm, privateKey, publicKey, thumbprint: await keyThumbprint(publicKey), protection: 'file', sign: softwareSigner(algorithm, privateKey) };
}

export async function keyThumbprint(publicKey: KeyObject): Promise<string> {
  return calculateJwkThumbprint(publicKey.export({ format: 'jwk' }) as JWK, 'sha256');
}

/** Reads a PKCS#8 PEM key back; undefined when it is not a usable key (corrupt file). */
export async function keyFromPem(pem: string): Promise<SoftwareKey | undefined> {
  let privateKey: KeyObject;
  try {
    privateKey = crypto.createPrivateKey(pem);
  } catch {
    return undefined;
  }
  const publicKey = crypto.createPublicKey(privateKey);
  const algorithm: KeyAlgorithm = privateKey.asymmetricKeyType === 'ec' ? 'P-256' : 'RSA-2048';
  return { algorithm, privateKey, publicKey, thumbprint: await keyThumbprint(publicKey), protection: 'file', sign: softwareSigner(algorithm, privateKey) };
}

export { privateKeyPem } from './key-pem.js';

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
  const publicKey = await subtle.importKey('spki', key.publicKey.export({ format: 'der', type: 'spki' }), importParams, true, ['verify']);
  if (!key.privateKey) {
    // A key in a store: @peculiar/x509 reads only `algorithm` from the private key and hands it to `subtle.sign` (storeCrypto).
    const privateKey = { algorithm: importParams, type: 'private', extractable: false, usages: ['sign'], [STORE_KEY]: key } as unknown as crypto.webcrypto.CryptoKey;
    return { keys: { privateKey, publicKey } as crypto.webcrypto.CryptoKeyPair, signingAlgorithm: signing };
  }
  const privateKey = await subtle.importKey('pkcs8', key.privateKey.export({ format: 'der', type: 'pkcs8' }), importParams, false, ['sign']);
  return { keys: { privateKey, publicKey } as crypto.webcrypto.CryptoKeyPair, signingAlgorithm: signing };
}

export interface CsrOptions {
  /** PKCS#9 challengePassword attribute (SCEP's shared secret); it travels encrypted to the CA. */
  challengePassword?: string | undefined;
}

const STORE_KEY = Symbol('store key');

/** Node's WebCrypto, except that signing with a key-store key is done by the store. */
export const storeCrypto = {
  getRandomValues: <T extends ArrayBufferView>(a: T) => crypto.webcrypto.getRandomValues(a as never) as T,
  subtle: new Proxy(crypto.webcrypto.subtle, {
    get(target, prop) {
      if (prop === 'sign') {
        return async (alg: unknown, key: crypto.webcrypto.CryptoKey, data: ArrayBuffer | ArrayBufferView) => {
          const k = (key as unknown as Record<symbol, LocalKey | undefined>)[STORE_KEY];
          if (!k) return target.sign(alg as never, key, data);
          const bytes = ArrayBuffer.isView(data) ? Buffer.from(data.buffer, data.byteOffset, data.byteLength) : Buffer.from(data as ArrayBuffer);
          const sig = await k.sign(bytes);
          return sig.buffer.slice(sig.byteOffset, sig.byteOffset + sig.byteLength);
        };
      }
      const v = Reflect.get(target, prop, target);
      return typeof v === 'function' ? v.bind(target) : v;
    },
  }),
} as unknown as crypto.webcrypto.Crypto;

/** A PKCS#10 request signed by the local key. */
export async function createCsr(key: LocalKey, subject: string, opts: CsrOptions = {}): Promise<string> {
  const [{ keys, signingAlgorithm }, { x509 }] = await Promise.all([webCryptoKeyPair(key), import('../certificates/x509.js')]);
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: subject,
    keys: keys as never,
    signingAlgorithm,
    extensions: [new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true)],
    ...(opts.challengePassword !== undefined ? { attributes: [new x509.ChallengePasswordAttribute(opts.challengePassword)] } : {}),
  }, storeCrypto);
  return csr.toString('pem');
}
