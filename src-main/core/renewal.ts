import { SignJWT } from 'jose';
import { X509Certificate } from 'node:crypto';
import { jwsAlgorithm, type LocalKey } from './keys.js';

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
  return new SignJWT({ device: opts.deviceId, cnf: { jkt: opts.newKeyThumbprint } })
    .setProtectedHeader({ alg: jwsAlgorithm(opts.currentKey), typ: 'JWT', x5c: [der] })
    .setIssuedAt(iat)
    .setNotBefore(iat - RENEWAL_NBF_SKEW_S)
    .setExpirationTime(iat + RENEWAL_TOKEN_LIFETIME_S)
    .sign(opts.currentKey.privateKey);
}
