/**
 * TPM key attestation without a TPM: what the agent does when the org has no attestation endpoint, answers a
 * hostile challenge or refuses, and the lab's refusals that need no TPM (an untrusted EK, an AK that is not a
 * restricted signing key). The whole exchange with a real TPM: test/integration/tpm-attest*.test.ts.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { AttestationVerifier, EK_CERTIFICATE_EKU, TPMA, kdfa, parseTpmtPublic, tpmName } from '../../lab/attestation.js';
import { createRootCa, issueCertificate } from '../../lab/ca.js';
import { isAgentError } from '../../src-main/base/errors.js';
import { attestKey } from '../../src-main/core/keys/attestation.js';
import { HttpClient } from '../../src-main/core/net/http.js';
import { AttestationChallengeSchema } from '../../src-main/core/enrollment/protocol.js';
import { generateLocalKey, type LocalKey } from '../../src-main/core/keys/keys.js';
import { Trace } from '../../src-main/base/trace.js';
import { tempDir } from '../support/agent.js';
import { listenOnLoopback } from '../support/net.js';

let server: http.Server;
let base = '';
let answer: { status: number; body: unknown } = { status: 404, body: { errorCode: 'E0000_NOT_FOUND', errorSummary: 'Not found' } };

before(async () => {
  server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(answer.status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(answer.body));
    });
  });
  const port = await listenOnLoopback(server);
  base = `http://127.0.0.1:${port}`;
});
after(() => new Promise<void>((r) => server.close(() => r())));

/** A TPMT_PUBLIC of an ECC P-256 signing key with these attributes (what a TPM marshals). */
function tpmtPublic(attributes: number): Buffer {
  const jwk = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'jwk' });
  const x = Buffer.from(jwk.x!, 'base64url');
  const y = Buffer.from(jwk.y!, 'base64url');
  const b = Buffer.alloc(2 + 2 + 4 + 2 + 2 + 4 + 2 + 2 + 2 + 32 + 2 + 32);
  let o = 0;
  o = b.writeUInt16BE(0x0023, o); // ECC
  o = b.writeUInt16BE(0x000b, o); // SHA-256
  o = b.writeUInt32BE(attributes, o);
  o = b.writeUInt16BE(0, o); // authPolicy
  o = b.writeUInt16BE(0x0010, o); // symmetric NULL
  o = b.writeUInt16BE(0x0018, o); // ECDSA
  o = b.writeUInt16BE(0x000b, o); // SHA-256
  o = b.writeUInt16BE(0x0003, o); // NIST P-256
  o = b.writeUInt16BE(0x0010, o); // kdf NULL
  o = b.writeUInt16BE(32, o);
  o += x.copy(b, o);
  o = b.writeUInt16BE(32, o);
  y.copy(b, o);
  return b;
}

async function tpmKey(attest: LocalKey['attest']): Promise<LocalKey> {
  const k = await generateLocalKey('P-256');
  return { ...k, privateKey: undefined, protection: 'tpm', attest };
}

const deps = () => ({ http: new HttpClient({ timeoutMs: 3000 }), orgUrl: base, trace: new Trace(undefined) });

test('a software key or a key file is sent unattested, with the reason', async () => {
  assert.deepEqual(await attestKey({ ...(await generateLocalKey('P-256')), protection: 'software' }, deps()), { unattested: 'the key is in the software token, not in a TPM' });
  assert.match((await attestKey(await generateLocalKey('P-256'), deps())).unattested!, /key file/);
  assert.match((await attestKey(await tpmKey(undefined), deps())).unattested!, /cannot attest/);
});

test('an org without the attestation endpoint (404) gets an unattested request, not a failure', async () => {
  answer = { status: 404, body: { errorCode: 'E0000_NOT_FOUND', errorSummary: 'Not found' } };
  const key = await tpmKey((ask) => ask({ ekCert: 'AAAA', akPublic: 'AAAA' }).then(() => assert.fail('no challenge expected')));
  assert.deepEqual(await attestKey(key, deps()), { unattested: 'the org does not offer TPM attestation' });
});

test('a hostile challenge answer is refused by the schema before it reaches the TPM', async () => {
  let reachedTpm = false;
  const key = await tpmKey(async (ask) => {
    await ask({ ekCert: 'AAAA', akPublic: 'AAAA' });
    reachedTpm = true;
    throw new Error('unreachable');
  });
  for (const body of [
    { challengeId: '../../etc', nonce: 'AAAAAAAAAAAAAAAAAAAAAA==', credentialBlob: 'AA==', encryptedSecret: 'AA==' },
    { challengeId: 'ab'.repeat(16), nonce: 'AA==', credentialBlob: 'AA==', encryptedSecret: 'AA==' },
    { challengeId: 'ab'.repeat(16), nonce: 'AAAAAAAAAAAAAAAAAAAAAA==', credentialBlob: 'A'.repeat(5000), encryptedSecret: 'AA==' },
  ]) {
    answer = { status: 200, body };
    await assert.rejects(attestKey(key, deps()), (e: unknown) => isAgentError(e) && e.failure === 'bad-answer');
  }
  assert.equal(reachedTpm, false);
});

test("the org's refusal of the EK reaches the user with the org's reason and what to do", async () => {
  answer = { status: 403, body: { errorCode: 'E0000_ATTESTATION_EK_UNTRUSTED', errorSummary: 'The TPM attestation was refused: not a trusted TPM vendor.' } };
  const key = await tpmKey((ask) => ask({ ekCert: 'AAAA', akPublic: 'AAAA' }).then(() => assert.fail('refused')));
  await assert.rejects(attestKey(key, deps()), (e: unknown) => isAgentError(e) && e.code === 'E0000_ATTESTATION_EK_UNTRUSTED' && /not a trusted TPM vendor/.test(e.message) && /TPM vendor's CA/.test(e.remedy ?? ''));
});

test('the lab refuses an EK certificate outside its trusted TPM vendor CAs, and an AK that could sign anything or leave its TPM', async () => {
  const vendor = await createRootCa('TPM Vendor Root', 30);
  const rogue = await createRootCa('Rogue TPM Vendor', 30);
  const ekKeys = await crypto.webcrypto.subtle.generateKey({ name: 'RSASSA-PKCS1-v1_5', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' }, true, ['sign', 'verify']);
  const ek = (ca: typeof vendor) => issueCertificate(ca, { publicKey: ekKeys.publicKey, subject: 'CN=ek', crlUrl: 'http://crl.invalid/', validitySeconds: 3600, extendedKeyUsages: [EK_CERTIFICATE_EKU] })
    .then((c) => Buffer.from(c.rawData).toString('base64'));
  const v = new AttestationVerifier({ trustedEkCaPem: [vendor.cert.toString('pem')] });
  const goodAk = tpmtPublic(TPMA.fixedTPM | TPMA.fixedParent | TPMA.sensitiveDataOrigin | TPMA.restricted | TPMA.sign | 0x40);
  const c = v.challenge({ ekCert: await ek(vendor), akPublic: goodAk.toString('base64') });
  assert.match(c.challengeId, /^[0-9a-f]{32}$/);
  assert.equal(Buffer.from(c.nonce, 'base64').length, 32);
  assert.throws(() => v.challenge({ ekCert: notACertificate(), akPublic: goodAk.toString('base64') }), /cannot be parsed/);
  const rogueEk = await ek(rogue);
  assert.throws(() => v.challenge({ ekCert: rogueEk, akPublic: goodAk.toString('base64') }), (e: Error & { code?: string }) => e.code === 'E0000_ATTESTATION_EK_UNTRUSTED' && /Rogue TPM Vendor/.test(e.message));
  const vendorEk = await ek(vendor);
  for (const attrs of [TPMA.fixedTPM | TPMA.fixedParent | TPMA.sensitiveDataOrigin | TPMA.sign, TPMA.fixedParent | TPMA.sensitiveDataOrigin | TPMA.restricted | TPMA.sign]) {
    assert.throws(() => v.challenge({ ekCert: vendorEk, akPublic: tpmtPublic(attrs).toString('base64') }), (e: Error & { code?: string }) => e.code === 'E0000_ATTESTATION_AK_INVALID');
  }
  // A challenge is short-lived: answered too late, it is refused (and used up).
  const brief = new AttestationVerifier({ trustedEkCaPem: [vendor.cert.toString('pem')], challengeTtlMs: 1 });
  const late = brief.challenge({ ekCert: vendorEk, akPublic: goodAk.toString('base64') });
  await new Promise((r) => setTimeout(r, 20));
  const junk = { secret: 'AA==', tpmtPublic: 'AA==', certifyInfo: 'AA==', signature: 'AA==' };
  assert.throws(() => brief.verify({ challengeId: late.challengeId, ...junk }, Buffer.alloc(0)), (e: Error & { code?: string }) => e.code === 'E0000_ATTESTATION_NONCE' && /expired/.test(e.message));
  assert.throws(() => brief.verify({ challengeId: late.challengeId, ...junk }, Buffer.alloc(0)), (e: Error & { code?: string }) => e.code === 'E0000_ATTESTATION_REPLAYED');
  // An answer to a challenge that was never issued.
  assert.throws(() => v.verify({ challengeId: 'cd'.repeat(16), secret: 'AA==', tpmtPublic: 'AA==', certifyInfo: 'AA==', signature: 'AA==' }, Buffer.alloc(0)), (e: Error & { code?: string }) => e.code === 'E0000_ATTESTATION_NONCE');
});

test('the lab accepts only an end-entity EK certificate with the EK EKU, valid now, and a few open challenges per EK', async () => {
  const vendor = await createRootCa('TPM Vendor Root', 30);
  const rsa = () => crypto.webcrypto.subtle.generateKey({ name: 'RSASSA-PKCS1-v1_5', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' }, true, ['sign', 'verify']);
  const ekKeys = await rsa();
  const make = (o: { eku?: string[]; now?: Date } = {}) => issueCertificate(vendor, { publicKey: ekKeys.publicKey, subject: 'CN=ek', crlUrl: 'http://crl.invalid/', validitySeconds: 3600,
    extendedKeyUsages: o.eku ?? [EK_CERTIFICATE_EKU], ...(o.now ? { now: o.now } : {}) }).then((c) => Buffer.from(c.rawData).toString('base64'));
  const v = new AttestationVerifier({ trustedEkCaPem: [vendor.cert.toString('pem')] });
  const ak = tpmtPublic(TPMA.fixedTPM | TPMA.fixedParent | TPMA.sensitiveDataOrigin | TPMA.restricted | TPMA.sign | 0x40).toString('base64');
  const refusedAs = (re: RegExp) => (e: Error & { code?: string }) => e.code === 'E0000_ATTESTATION_EK_UNTRUSTED' && re.test(e.message);
  // A client certificate of the vendor CA, the vendor CA itself, an expired EK certificate: none is an EK certificate now.
  await make({ eku: ['1.3.6.1.5.5.7.3.2'] }).then((c) => assert.throws(() => v.challenge({ ekCert: c, akPublic: ak }), refusedAs(/lacks the EK extended key usage \(2\.23\.133\.8\.1\)/)));
  assert.throws(() => v.challenge({ ekCert: Buffer.from(vendor.cert.rawData).toString('base64'), akPublic: ak }), refusedAs(/is a CA certificate/));
  await make({ now: new Date(Date.now() - 3 * 3600_000) }).then((c) => assert.throws(() => v.challenge({ ekCert: c, akPublic: ak }), refusedAs(/not valid now/)));
  // Five open challenges per EK; the sixth is refused, another EK is not affected.
  const good = await make();
  for (let i = 0; i < 5; i++) v.challenge({ ekCert: good, akPublic: ak });
  assert.throws(() => v.challenge({ ekCert: good, akPublic: ak }), (e: Error & { code?: string }) => e.code === 'E0000_ATTESTATION_TOO_MANY' && /5 unanswered challenges/.test(e.message));
  const otherKeys = await rsa();
  const other = await issueCertificate(vendor, { publicKey: otherKeys.publicKey, subject: 'CN=ek2', crlUrl: 'http://crl.invalid/', validitySeconds: 3600, extendedKeyUsages: [EK_CERTIFICATE_EKU] });
  assert.match(v.challenge({ ekCert: Buffer.from(other.rawData).toString('base64'), akPublic: ak }).challengeId, /^[0-9a-f]{32}$/);
});

test('TPM names and KDFa follow the TPM 2.0 specification', () => {
  const pub = tpmtPublic(TPMA.fixedTPM);
  assert.deepEqual(tpmName(pub), Buffer.concat([Buffer.from('000b', 'hex'), crypto.createHash('sha256').update(pub).digest()]));
  assert.equal(parseTpmtPublic(pub).attributes, TPMA.fixedTPM);
  // KDFa's first block is HMAC(key, 00000001 ‖ label ‖ 00 ‖ contextU ‖ contextV ‖ bits).
  const key = Buffer.alloc(32, 7);
  const expected = crypto.createHmac('sha256', key).update(Buffer.concat([Buffer.from('00000001', 'hex'), Buffer.from('STORAGE'), Buffer.from([0]), Buffer.from('name'), Buffer.from('00000080', 'hex')])).digest().subarray(0, 16);
  assert.deepEqual(kdfa(key, 'STORAGE', Buffer.from('name'), Buffer.alloc(0), 128), expected);
});

function notACertificate(): string {
  return Buffer.from('not a certificate').toString('base64');
}

test('the lab offers attestation only once it trusts a TPM vendor CA (404 otherwise, so devices enroll unattested)', async () => {
  const { startLabOrg } = await import('../../lab/org.js');
  const lab = await startLabOrg({ authenticate: async () => ({ ok: false }) as never });
  try {
    const client = new HttpClient({ timeoutMs: 5000, tlsCaFile: writeTemp(lab.rootCaPem) });
    await assert.rejects(client.json(AttestationChallengeSchema, { url: `${lab.orgUrl}/api/v1/attestation/challenge`, method: 'POST', json: { ekCert: 'AAAA', akPublic: 'AAAA' }, what: 'the org' }),
      (e: unknown) => isAgentError(e) && e.code === 'E0000_ATTESTATION_NOT_CONFIGURED' && /HTTP 404/.test(e.message));
    lab.attestation.trustedEkCaPem = [lab.rootCaPem];
    await assert.rejects(client.json(AttestationChallengeSchema, { url: `${lab.orgUrl}/api/v1/attestation/challenge`, method: 'POST', json: { ekCert: 'AAAA', akPublic: 'AAAA' }, what: 'the org' }),
      (e: unknown) => isAgentError(e) && e.code === 'E0000_ATTESTATION_EK_UNTRUSTED' && /HTTP 403/.test(e.message));
  } finally {
    await lab.close();
  }
});

function writeTemp(pem: string): string {
  const file = path.join(tempDir('attest'), 'root.pem');
  fs.writeFileSync(file, pem);
  return file;
}
