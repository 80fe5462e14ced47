/**
 * The Linux key store over the real NSS software token (libsoftokn3 in-process through PKCS#11): keys are made
 * inside the token and cannot be read back, signatures verify with the public key, the certificate is filed
 * under the key's CKA_ID so NSS (certutil) lists it as a user certificate, and removal takes both.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { createCsr, keyInStore, storeCrypto, webCryptoKeyPair } from '../../src-main/core/keys/keys.js';
import { x509 } from '../../src-main/core/certificates/x509.js';
import { LinuxKeyStore, SOFTOKN_LIBRARIES, tpmAvailability } from '../../src-main/platform/linux-keys.js';
import { tempDir } from '../support/agent.js';
import { filesWithPrivateKeys, nssPrivateKeyFacts } from '../support/keyscan.js';

const skip = SOFTOKN_LIBRARIES.some((l) => fs.existsSync(l)) ? undefined : 'skipped: NSS (libsoftokn3) is not installed';
if (skip) console.log(`# linux-keystore ${skip}`);

test('SkipTPM and a missing TPM are reasons status can show', () => {
  assert.deepEqual(tpmAvailability({ nssDbDir: '/x', home: '/h', skipTpm: true, env: {} }), { usable: false, reason: 'SkipTPM=true' });
  const none = tpmAvailability({ nssDbDir: '/x', home: '/h', skipTpm: false, env: {} });
  if (!none.usable && !fs.existsSync('/dev/tpmrm0')) assert.match(none.reason, /no TPM|not installed|resource manager/);
});

test('software token: generate inside, sign, CSR, attach, list, remove — and no key in any file', { skip }, async () => {
  const home = tempDir('ks');
  const nssDb = path.join(home, '.pki', 'nssdb');
  const ks = new LinuxKeyStore({ nssDbDir: nssDb, home, skipTpm: true, env: {} });
  try {
    const info = await ks.info();
    assert.equal(info.protection, 'software');
    assert.equal(info.reason, 'SkipTPM=true');
    const sk = await ks.generate('P-256', 'device-trust-key');
    const key = await keyInStore(ks, sk);
    assert.equal(key.privateKey, undefined, 'the agent holds no private key');
    const sig = await key.sign(Buffer.from('payload'));
    assert.ok(crypto.verify('sha256', Buffer.from('payload'), { key: key.publicKey, dsaEncoding: 'ieee-p1363' }, sig));
    const csr = new x509.Pkcs10CertificateRequest(await createCsr(key, 'CN=unit-device'));
    assert.ok(await csr.verify(), 'the CSR signed by the token verifies');
    const { keys, signingAlgorithm } = await webCryptoKeyPair(key);
    const cert = await x509.X509CertificateGenerator.createSelfSigned({ name: 'CN=unit-device', keys, signingAlgorithm, notBefore: new Date(), notAfter: new Date(Date.now() + 86_400_000) }, storeCrypto);
    const stored = await ks.attach(sk.id, { certPem: cert.toString('pem'), chainPem: [], label: 'device-trust-unit' });
    assert.equal(stored.id, `nss:${sk.id}`);
    assert.deepEqual((await ks.list()).map((c) => c.id), [stored.id]);
    assert.equal(ks.keyIdOf(stored.id), sk.id);
    await ks.close();
    const listed = execFileSync('certutil', ['-L', '-d', `sql:${nssDb}`], { encoding: 'utf8' });
    assert.match(listed, /device-trust-unit\s+u,u,u/, 'NSS pairs the certificate with its key');
    assert.deepEqual(nssPrivateKeyFacts(nssDb).map((f) => [f.sensitive, f.extractable, f.valueReadable]), [[true, false, false]]);
    assert.deepEqual(filesWithPrivateKeys([home]), []);
    await ks.remove(stored.id);
    assert.deepEqual(await ks.list(), []);
    assert.equal(await ks.find(sk.id), undefined);
  } finally {
    await ks.close();
  }
});
