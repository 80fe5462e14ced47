import type { KeyObject } from 'node:crypto';

/**
 * The PKCS#8 PEM of a software key (the legacy key file, without the PKCS#11 binding or for SCEP where the store
 * cannot decrypt). Kept apart from keys.ts so that writing the file does not load the X.509 and JWT libraries.
 */
export function privateKeyPem(key: { privateKey?: KeyObject }): string {
  if (!key.privateKey) throw new Error('this operation needs a software key, but the device key lives in a key store');
  return key.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
}
