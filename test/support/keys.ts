import crypto from 'node:crypto';

const rsaPool: crypto.KeyPairKeyObjectResult[] = [];

/**
 * The RSA-2048 key pairs the stand-ins of platform key stores (Windows CNG, the macOS keychain) make: an RSA key
 * costs up to a second on a loaded machine, and every test makes its own stand-in. The n-th key one stand-in makes
 * is the n-th of this pool, so the keys of one stand-in (one machine) are distinct, and each is made once a file.
 */
export function rsaKeyPair(n: number): crypto.KeyPairKeyObjectResult {
  while (rsaPool.length <= n) rsaPool.push(crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }));
  return rsaPool[n]!;
}
