/**
 * The SCEP client's parts without a server: configuration, the algorithm policy, GetCACert parsing and the pin
 * (with an RA chain made by OpenSSL), and CertRep checks (signer, nonce, transaction, failInfo in words).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import crypto, { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { createBackend } from '../../src-main/core/backends/index.js';
import { checkIssuedCertificate } from '../../src-main/core/certificates/certificate.js';
import { SCEP_REJECTION_HOLD_SECONDS } from '../../src-main/core/backends/scep.js';
import { loadConfig, printableSetting } from '../../src-main/core/config.js';
import { isAgentError } from '../../src-main/base/errors.js';
import { HttpClient } from '../../src-main/core/net/http.js';
import { generateLocalKey } from '../../src-main/core/keys/keys.js';
import { parseGetCaCert, pinCaBundle } from '../../src-main/core/scep/ca.js';
import { chooseAlgorithms, parseCapabilities } from '../../src-main/core/scep/capabilities.js';
import { attrValue, attribute, openEnvelope, parseSignedData, signData } from '../../src-main/core/scep/cms.js';
import { lastOutcomeFindings } from '../../src-main/core/scep/diagnose.js';
import { buildRequest, parseCertRep, SCEP_OID, transactionIdFor } from '../../src-main/core/scep/message.js';
import { Trace } from '../../src-main/base/trace.js';
import { x509 } from '../../src-main/core/certificates/x509.js';
import { autoSelectEntries } from '../../src-main/platform/browser-policy.js';
import { tempDir } from '../support/agent.js';

const RSA = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256', publicExponent: new Uint8Array([1, 0, 1]), modulusLength: 2048 };

/**
 * RSA key generation is what this file spends its time on (up to a second a key on a loaded machine): each named
 * key is made once and shared by the tests that need it. Distinct names are distinct keys.
 */
const pairs = new Map<string, Promise<crypto.webcrypto.CryptoKeyPair>>();
function rsaPair(name: string): Promise<crypto.webcrypto.CryptoKeyPair> {
  if (!pairs.has(name)) pairs.set(name, crypto.webcrypto.subtle.generateKey(RSA, true, ['sign', 'verify']) as Promise<crypto.webcrypto.CryptoKeyPair>);
  return pairs.get(name)!;
}
let device: ReturnType<typeof generateLocalKey> | undefined;
/** The device's RSA key (made by the agent's own code), one for the file. */
const deviceKey = () => (device ??= generateLocalKey('RSA-2048'));

/** A CA (its key named `name`; same subject and serial number whatever the name) and an RA certificate it issued. */
async function caAndRa(name = 'ca') {
  const caKeys = await rsaPair(name);
  const ca = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: '01', name: 'CN=Unit SCEP CA', notBefore: new Date(Date.now() - 60_000), notAfter: new Date(Date.now() + 86400_000), keys: caKeys as never, signingAlgorithm: RSA,
    extensions: [new x509.BasicConstraintsExtension(true, 0, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign, true)],
  });
  const raKeys = await rsaPair('ra');
  const ra = await x509.X509CertificateGenerator.create({
    serialNumber: '02', subject: 'CN=Unit SCEP RA', issuer: ca.subject, notBefore: new Date(Date.now() - 60_000), notAfter: new Date(Date.now() + 86400_000),
    publicKey: raKeys.publicKey, signingKey: caKeys.privateKey, signingAlgorithm: RSA,
    extensions: [new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyEncipherment | x509.KeyUsageFlags.digitalSignature, true)],
  });
  return {
    ca: new X509Certificate(Buffer.from(ca.rawData)), caKey: crypto.KeyObject.from(caKeys.privateKey),
    ra: new X509Certificate(Buffer.from(ra.rawData)), raKey: crypto.KeyObject.from(raKeys.privateKey),
  };
}

const fp = (c: X509Certificate) => c.fingerprint256.replace(/:/g, '').toLowerCase();

test('configuration: the SCEP settings, a fingerprint in any usual spelling, the challenge never printed', () => {
  const home = tempDir('scep-cfg');
  const hex = 'ab'.repeat(32);
  const env = { HOME: home, DTA_MANAGED_CONFIG_DIR: path.join(home, 'm'), DTA_BACKEND: 'scep', DTA_SCEP_URL: 'http://ca.example.com/scep', DTA_SCEP_CHALLENGE: 's3cret', DTA_SCEP_HOST_PATTERNS: 'https://a.example.com, https://[*.]b.example.com' };
  for (const spelling of [hex, hex.toUpperCase().match(/../g)!.join(':'), `SHA256:${hex}`, `sha-256=${hex.toUpperCase()}`]) {
    assert.equal(loadConfig({ env: { ...env, DTA_SCEP_CA_FINGERPRINT: spelling } }).config.scepCaFingerprint, hex, spelling);
  }
  const { config } = loadConfig({ env: { ...env, DTA_SCEP_CA_FINGERPRINT: hex } });
  assert.deepEqual(config.scepHostPatterns, ['https://a.example.com', 'https://[*.]b.example.com']);
  assert.equal(printableSetting('scepChallenge', config.scepChallenge), '"[redacted]"');
  assert.equal(printableSetting('scepUrl', config.scepUrl), '"http://ca.example.com/scep"');
  assert.throws(() => loadConfig({ env: { ...env, DTA_SCEP_CA_FINGERPRINT: 'abcd' } }), (e: unknown) => isAgentError(e) && /scepCaFingerprint.*64 hex digits/.test(e.message));
  assert.throws(() => loadConfig({ env: { ...env, DTA_BACKEND: 'acme' } }), (e: unknown) => isAgentError(e) && /backend/.test(e.message));
});

test('the SCEP backend refuses to start without a URL or a pin, and with an explicit non-RSA key', () => {
  const home = tempDir('scep-cfg2');
  const base = { HOME: home, DTA_MANAGED_CONFIG_DIR: path.join(home, 'm'), DTA_BACKEND: 'scep' };
  const deps = { http: new HttpClient({ timeoutMs: 1000 }), trace: new Trace(undefined), now: () => new Date() };
  const make = (env: Record<string, string>) => createBackend(loadConfig({ env: { ...base, ...env } }), deps);
  assert.throws(() => make({}), (e: unknown) => isAgentError(e) && e.failure === 'config' && /scepUrl/.test(e.message));
  assert.throws(() => make({ DTA_SCEP_URL: 'http://ca/scep' }), (e: unknown) => isAgentError(e) && e.code === 'SCEP_PIN_MISSING');
  assert.throws(() => make({ DTA_SCEP_URL: 'http://ca/scep', DTA_SCEP_CA_FINGERPRINT: 'ab'.repeat(32), DTA_KEY_ALGORITHM: 'P-256' }), (e: unknown) => isAgentError(e) && e.code === 'SCEP_KEY_ALGORITHM');
  const backend = make({ DTA_SCEP_URL: 'http://ca/scep', DTA_SCEP_CA_FINGERPRINT: 'ab'.repeat(32) });
  assert.equal(backend.kind, 'scep');
  assert.equal(backend.keyAlgorithm, 'RSA-2048', 'the default key becomes RSA for SCEP');
  assert.equal(backend.holdAfterRejectionSeconds, SCEP_REJECTION_HOLD_SECONDS);
  const other = make({ DTA_SCEP_URL: 'http://ca/scep', DTA_SCEP_CA_FINGERPRINT: 'ab'.repeat(32), DTA_SCEP_CHALLENGE: 'x' });
  assert.notEqual(other.requestIdentity, backend.requestIdentity, 'a changed challenge is a different request');
  assert.match(other.requestIdentity, /^hmac-sha256:[0-9a-f]{64}$/, 'only a keyed hash of the settings is kept');
  // Keyed per install: the same settings hash differently on another install (the challenge cannot be guessed
  // offline from state.json), and the same on this one.
  const stateDir = loadConfig({ env: { ...base } }).config.stateDir;
  const keyFile = path.join(stateDir, 'settings-hash.key');
  assert.equal(fs.statSync(keyFile).mode & 0o777, 0o600);
  const unkeyed = crypto.createHash('sha256').update(['scep', 'http://ca/scep', 'ab'.repeat(32), 'x'].join('\n')).digest('hex');
  assert.notEqual(other.requestIdentity.slice('hmac-sha256:'.length), unkeyed);
  assert.equal(other.legacyRequestIdentity, unkeyed, 'the old hash is still recognised, for migration');
  assert.equal(make({ DTA_SCEP_URL: 'http://ca/scep', DTA_SCEP_CA_FINGERPRINT: 'ab'.repeat(32), DTA_SCEP_CHALLENGE: 'x' }).requestIdentity, other.requestIdentity);
  fs.rmSync(keyFile);
  assert.notEqual(make({ DTA_SCEP_URL: 'http://ca/scep', DTA_SCEP_CA_FINGERPRINT: 'ab'.repeat(32), DTA_SCEP_CHALLENGE: 'x' }).requestIdentity, other.requestIdentity, 'a new key, another hash');
});

test('algorithms: the strongest advertised; SHA-1/3DES only with scepAllowWeak; MD5 and single DES never', () => {
  const micromdm = parseCapabilities('Renewal\nSHA-1\nSHA-256\nAES\nDES3\nSCEPStandard\nPOSTPKIOperation\n');
  assert.deepEqual(chooseAlgorithms(micromdm, false), { digest: 'sha256', cipher: 'aes-128-cbc', weak: [] });
  assert.equal(micromdm.postPkiOperation && micromdm.renewal, true);
  assert.equal(chooseAlgorithms(parseCapabilities('SHA-512\nSHA-256\nAES'), false).digest, 'sha512');
  const std = parseCapabilities('scepstandard');
  assert.equal(std.aes && std.sha256 && std.postPkiOperation, true, 'SCEPStandard implies AES, SHA-256 and POST (case-insensitive)');
  const old = parseCapabilities('SHA-1\r\nDES3\r\n');
  assert.throws(() => chooseAlgorithms(old, false), (e: unknown) => isAgentError(e) && e.code === 'SCEP_WEAK_ALGORITHMS' && /scepAllowWeak/.test(e.message));
  assert.deepEqual(chooseAlgorithms(old, true), { digest: 'sha1', cipher: 'des-ede3-cbc', weak: ['SHA-1', '3DES'] });
  assert.throws(() => chooseAlgorithms(parseCapabilities(''), true), (e: unknown) => isAgentError(e) && /MD5 always/.test(e.message));
  assert.throws(() => chooseAlgorithms(parseCapabilities('SHA-256'), true), (e: unknown) => isAgentError(e) && /single DES always/.test(e.message));
});

test('GetCACert: an RA/CA chain as PKCS#7 (made by OpenSSL); the pin picks the CA, requests go to the RA, strangers are ignored', async () => {
  const { ca, ra } = await caAndRa();
  const { ca: stranger } = await caAndRa('stranger');
  const dir = tempDir('p7');
  fs.writeFileSync(path.join(dir, 'certs.pem'), [ca, ra, stranger].map((c) => c.toString()).join('\n'));
  execFileSync('openssl', ['crl2pkcs7', '-nocrl', '-certfile', path.join(dir, 'certs.pem'), '-outform', 'DER', '-out', path.join(dir, 'chain.p7')]);
  const certs = parseGetCaCert(fs.readFileSync(path.join(dir, 'chain.p7')), 'application/x-x509-ca-ra-cert');
  assert.equal(certs.length, 3);
  const bundle = pinCaBundle(certs, fp(ca), 'ca.example');
  assert.equal(bundle.pinned.fingerprint256, ca.fingerprint256);
  assert.equal(bundle.issuingCa.fingerprint256, ca.fingerprint256);
  assert.equal(bundle.recipient.fingerprint256, ra.fingerprint256, 'requests are encrypted to the RA');
  assert.deepEqual(bundle.signers.map((c) => c.subject).sort(), [ca.subject, ra.subject].sort());
  assert.deepEqual(bundle.ignored.map((c) => c.fingerprint256), [stranger.fingerprint256]);
  // A single DER certificate (x-x509-ca-cert), and a mismatch that names both fingerprints.
  assert.equal(parseGetCaCert(ca.raw, 'application/x-x509-ca-cert')[0]!.fingerprint256, ca.fingerprint256);
  assert.throws(() => pinCaBundle([stranger], fp(ca), 'ca.example'), (e: unknown) => isAgentError(e) && e.code === 'SCEP_CA_MISMATCH'
    && e.message.includes(ca.fingerprint256) && e.message.includes(stranger.fingerprint256) && /before any request was sent/.test(e.message));
  assert.throws(() => parseGetCaCert(Buffer.from('<html>captive portal</html>'), 'text/html'), /neither a certificate nor/);
});

test('a request decrypts for the CA only, and carries our signed SCEP attributes', async () => {
  const { ca, caKey } = await caAndRa();
  const key = await deviceKey();
  const selfSigned = await selfSignedFor(key);
  const csr = Buffer.from('not really a CSR, any bytes will do');
  const nonce = crypto.randomBytes(16);
  const tid = transactionIdFor(key.publicKey);
  const der = buildRequest({ type: 'PKCSReq', content: csr, transactionId: tid, senderNonce: nonce, recipient: ca, signerCert: selfSigned, signerKey: key.privateKey, digest: 'sha256', cipher: 'aes-128-cbc' });
  // OpenSSL, an independent implementation, verifies the signature and finds the signer certificate.
  const dir = tempDir('req');
  fs.writeFileSync(path.join(dir, 'req.der'), der);
  execFileSync('openssl', ['cms', '-verify', '-noverify', '-inform', 'DER', '-in', path.join(dir, 'req.der'), '-out', path.join(dir, 'env.der')], { stdio: 'ignore' });
  // …and decrypts the envelope with the CA key: the CSR comes back.
  fs.writeFileSync(path.join(dir, 'ca.key'), caKey.export({ format: 'pem', type: 'pkcs8' }));
  fs.writeFileSync(path.join(dir, 'ca.pem'), ca.toString());
  const plain = execFileSync('openssl', ['cms', '-decrypt', '-inform', 'DER', '-in', path.join(dir, 'env.der'), '-inkey', path.join(dir, 'ca.key'), '-recip', path.join(dir, 'ca.pem')]);
  assert.deepEqual(plain, csr);
  assert.equal(tid, transactionIdFor(key.publicKey), 'the transaction ID is stable for a key (a later run can poll)');
  const parsed = parseSignedData(der, 'req');
  assert.deepEqual(openEnvelope(parsed.content!, ca, caKey, 'env').content, csr);
});

test('CertRep: only the pinned CA may sign, for our transaction and nonce; FAILURE comes back in words', async () => {
  const { ca, caKey } = await caAndRa();
  const { ca: impostor, caKey: impostorKey } = await caAndRa('stranger');
  const key = await deviceKey();
  const me = await selfSignedFor(key);
  const nonce = crypto.randomBytes(16);
  const tid = transactionIdFor(key.publicKey);
  const rep = (signer: X509Certificate, signerKey: crypto.KeyObject, o: { tid?: string; nonce?: Buffer; status: string; failInfo?: string; text?: string }) => signData({
    content: Buffer.alloc(0), signerCert: signer, signerKey, digest: 'sha256',
    attributes: [
      attribute(SCEP_OID.messageType, attrValue.printable('3')),
      attribute(SCEP_OID.transactionID, attrValue.printable(o.tid ?? tid)),
      attribute(SCEP_OID.pkiStatus, attrValue.printable(o.status)),
      attribute(SCEP_OID.recipientNonce, attrValue.octets(o.nonce ?? nonce)),
      ...(o.failInfo ? [attribute(SCEP_OID.failInfo, attrValue.printable(o.failInfo))] : []),
      ...(o.text ? [attribute(SCEP_OID.failInfoText, attrValue.printable(o.text))] : []),
    ],
  });
  const expect = { signers: [ca], transactionId: tid, senderNonce: nonce, recipientCert: me, recipientKey: key.privateKey };
  assert.deepEqual(parseCertRep(rep(ca, caKey, { status: '3' }), expect), { status: 'PENDING' });
  const failure = parseCertRep(rep(ca, caKey, { status: '2', failInfo: '3', text: 'clock is off' }), expect);
  assert.equal(failure.status, 'FAILURE');
  assert.ok(failure.status === 'FAILURE' && failure.failInfoName === 'badTime' && /clock/.test(failure.failInfoWords) && failure.failInfoText === 'clock is off');
  // An impostor CA with the same name and serial number: only the signature check can tell, and it does.
  assert.throws(() => parseCertRep(rep(impostor, impostorKey, { status: '3' }), expect), /does not verify with the CA's key/);
  assert.throws(() => parseCertRep(rep(ca, caKey, { status: '3' }), { ...expect, signers: [impostor] }), /does not verify/);
  assert.throws(() => parseCertRep(rep(me, key.privateKey, { status: '3' }), expect), /not signed by the pinned CA/);
  assert.throws(() => parseCertRep(rep(ca, caKey, { status: '3', nonce: crypto.randomBytes(16) }), expect), /nonce/);
  assert.throws(() => parseCertRep(rep(ca, caKey, { status: '3', tid: 'other' }), expect), /another transaction/);
  // A CertRep whose signature was made by the CA key over other attributes: the signature check catches it.
  const good = rep(ca, caKey, { status: '3' });
  const tampered = Buffer.from(good);
  const at = tampered.indexOf(Buffer.from(tid));
  tampered[at] = tampered[at] === 0x41 ? 0x42 : 0x41;
  assert.throws(() => parseCertRep(tampered, expect), /does not verify|another transaction/);
  assert.throws(() => parseCertRep(rep(ca, caKey, { status: '0' }), expect), /carries no certificate|could not be decrypted|not a CMS/);
});

test('a pinned subordinate CA is enough: an NDES-style answer without the root still verifies the issued certificate', async () => {
  const { caKey: rootKey } = await caAndRa();
  const subKeys = await rsaPair('sub');
  const sub = await x509.X509CertificateGenerator.create({
    serialNumber: '03', subject: 'CN=Unit Issuing CA', issuer: 'CN=Unit SCEP CA', notBefore: new Date(Date.now() - 60_000), notAfter: new Date(Date.now() + 86400_000),
    publicKey: subKeys.publicKey, signingKey: await crypto.webcrypto.subtle.importKey('pkcs8', rootKey.export({ format: 'der', type: 'pkcs8' }), RSA, false, ['sign']), signingAlgorithm: RSA,
    extensions: [new x509.BasicConstraintsExtension(true, 0, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign, true)],
  });
  const device = await deviceKey();
  const { keys } = await (await import('../../src-main/core/keys/keys.js')).webCryptoKeyPair(device);
  const leaf = await x509.X509CertificateGenerator.create({
    serialNumber: '04', subject: 'CN=device', issuer: sub.subject, notBefore: new Date(Date.now() - 60_000), notAfter: new Date(Date.now() + 86400_000),
    publicKey: keys.publicKey, signingKey: subKeys.privateKey, signingAlgorithm: RSA,
    extensions: [new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth])],
  });
  const subPem = sub.toString('pem');
  const opts = { key: device, caChainPem: [subPem], issuerCN: 'Unit Issuing CA', identity: 'device', maxValiditySeconds: 86_400 };
  await assert.rejects(checkIssuedCertificate(leaf.toString('pem'), opts), /does not chain/, 'without the pin, a chain without its root is refused');
  assert.equal((await checkIssuedCertificate(leaf.toString('pem'), { ...opts, pinnedPem: subPem })).subjectCN, 'device');
});

test('browser policy: a CA without a CN is named by O and OU', () => {
  assert.deepEqual(JSON.parse(autoSelectEntries(['https://x.example'], { O: 'scep-ca', OU: 'SCEP CA' })[0]!), { pattern: 'https://x.example', filter: { ISSUER: { O: 'scep-ca', OU: 'SCEP CA' } } });
  assert.equal(autoSelectEntries(['https://x.example'], 'MTLS Certificate Authority')[0], '{"pattern":"https://x.example","filter":{"ISSUER":{"CN":"MTLS Certificate Authority"}}}');
});

test('diagnostics: a held rejection reads as a likely wrong challenge; a pending request as waiting for approval', () => {
  const now = Date.now();
  const base = { version: 1 as const, deviceId: crypto.randomUUID(), createdAt: new Date(now).toISOString() };
  const held = lastOutcomeFindings({ ...base, hold: { backend: 'scep', requestIdentity: 'x', code: 'SCEP_REJECTED', message: 'The SCEP CA rejected the PKCSReq request: … (failInfo badRequest).', at: new Date(now).toISOString(), until: new Date(now + 3600_000).toISOString() } }, now);
  assert.equal(held.length, 1);
  assert.equal(held[0]!.severity, 'error');
  assert.match(held[0]!.title, /wrong or expired challenge/);
  assert.ok(held[0]!.cause && held[0]!.remedy);
  const pending = lastOutcomeFindings({ ...base, pending: { thumbprint: 't', backend: 'scep', requestIdentity: 'x', since: new Date(now).toISOString(), how: 'enrolled', message: 'PENDING' } }, now);
  assert.match(pending[0]!.title, /waiting for the CA administrator's approval/);
  assert.deepEqual(lastOutcomeFindings(base, now), []);
});

async function selfSignedFor(key: Awaited<ReturnType<typeof generateLocalKey>>): Promise<X509Certificate> {
  const { webCryptoKeyPair } = await import('../../src-main/core/keys/keys.js');
  const { keys, signingAlgorithm } = await webCryptoKeyPair(key);
  const c = await x509.X509CertificateGenerator.createSelfSigned({ serialNumber: '05', name: 'CN=device', notBefore: new Date(Date.now() - 60_000), notAfter: new Date(Date.now() + 3600_000), keys: keys as never, signingAlgorithm });
  return new X509Certificate(Buffer.from(c.rawData));
}
