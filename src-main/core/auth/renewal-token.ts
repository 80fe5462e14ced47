import { X509Certificate } from 'node:crypto';
import { jwsAlgorithm, type LocalKey } from '../keys/keys.js';

/** Five minutes back-dated, as the vendor's macOS task does, so a slightly slow clock is still accepted. */
export const RENEWAL_NBF_SKEW_S = 5 * 60;
export const RENEWAL_TOKEN_LIFETIME_S = 60 * 60;

/**
 * A short-lived proof of possession of the *current* certificate's key: the org renews without IWA because
 * only this device can sign for the certificate it already holds. The certificate travels in `x5c`.
 */
export async function signRenewalToken(opts: { currentKey: LocalKey; currentCertPem: string; deviceId: string; newKeyThumbprint: string; now?: Date }): Promise<string> {
  const iat = Math.floor((opts.now ?? new Date()).getTime() / 1000);
  const der = new X509Certificate(opts.currentCertPem).raw.toString('base64');
  return signCompactJws(opts.currentKey, { alg: jwsAlgorithm(opts.currentKey), typ: 'JWT', x5c: [der] },
    { device: opts.deviceId, cnf: { jkt: opts.newKeyThumbprint }, iat, nbf: iat - RENEWAL_NBF_SKEW_S, exp: iat + RENEWAL_TOKEN_LIFETIME_S });
}

/**
 * A compact JWS (RFC 7515) signed wherever the key lives: jose signs only with key objects it holds, and a key
 * in a TPM or token never is one. ES256 signatures are raw r‖s, which is what key stores return.
 */
export async function signCompactJws(key: LocalKey, header: Record<string, unknown>, payload: Record<string, unknown>): Promise<string> {
  const enc = (o: Record<string, unknown>) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const input = `${enc(header)}.${enc(payload)}`;
  const sig = await key.sign(Buffer.from(input, 'ascii'));
  return `${input}.${sig.toString('base64url')}`;
}
