import crypto, { X509Certificate } from 'node:crypto';
import type { LocalKey } from '../keys/keys.js';
import { monotonicMs } from '../../base/trace.js';

/**
 * The one place the live signing test reaches the device key: through the key's own `sign` (a PKCS#11 token,
 * the TPM, or — for keys from older versions and SCEP — the agent's software key); never by reading the key.
 */
export interface DeviceSigner {
  /** "software key (P-256)", "PKCS#11 token …": shown as evidence. */
  describe: string;
  /** Signs `data` with SHA-256, as JWS does: ECDSA as raw r‖s (IEEE P1363), RSA as PKCS#1 v1.5. */
  sign(data: Buffer): Promise<Buffer>;
}

export function signerFromLocalKey(key: LocalKey): DeviceSigner {
  return {
    describe: `${key.protection === 'tpm' ? 'TPM' : key.protection === 'software' ? 'software-token' : 'software'} key (${key.algorithm})`,
    sign: (data) => key.sign(data),
  };
}

export interface SigningTestResult {
  ok: boolean;
  /** What was done and seen: for the doctor's evidence and the event log. */
  evidence: string;
  ms: number;
}

/**
 * Signs a fresh random nonce with the device key and verifies the signature with the certificate's public
 * key: proves the key is present, usable, and the one the certificate was issued for.
 */
export async function signingTest(opts: { key: LocalKey | DeviceSigner; certificatePem: string }): Promise<SigningTestResult> {
  const signer = 'describe' in opts.key ? opts.key : signerFromLocalKey(opts.key);
  const t0 = monotonicMs();
  const nonce = crypto.randomBytes(32);
  const done = (ok: boolean, evidence: string): SigningTestResult => ({ ok, evidence, ms: Math.round((monotonicMs() - t0) * 10) / 10 });
  let signature: Buffer;
  try {
    signature = await signer.sign(nonce);
  } catch (e) {
    return done(false, `${signer.describe} could not sign: ${(e as Error).message}`);
  }
  try {
    const publicKey = new X509Certificate(opts.certificatePem).publicKey;
    const verified = crypto.verify('sha256', nonce, publicKey.asymmetricKeyType === 'ec' ? { key: publicKey, dsaEncoding: 'ieee-p1363' } : publicKey, signature);
    return verified
      ? done(true, `${signer.describe} signed a 32-byte nonce; the signature verifies with the certificate's public key`)
      : done(false, `${signer.describe} signed, but the signature does not verify with the certificate's public key (the key does not belong to the certificate)`);
  } catch (e) {
    return done(false, `the signature could not be verified: ${(e as Error).message}`);
  }
}
