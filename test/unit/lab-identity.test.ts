// The lab org binds identity (docs/PROTOCOL.md §13.4): a deviceId belongs to the machine principal that first
// enrolled it; a device token buys one user token; an attested certificate is renewed only onto an attested key,
// only inside its renewal window, and the renewal revokes it. Real HTTPS to the lab; Kerberos is a fixed fake here
// (test/integration/device-service.test.ts has the real KDC), the TPM is a stand-in verifier (the real one is in
// test/integration/tpm-attest-lab.test.ts).
import assert from 'node:assert/strict';
import { webcrypto, X509Certificate } from 'node:crypto';
import { after, before, test } from 'node:test';
import { calculateJwkThumbprint, exportJWK, SignJWT } from 'jose';
import { Agent, request } from 'undici';
import { x509 } from '../../lab/ca.js';
import { ATTESTED_KEY_POLICY_OID } from '../../lab/attestation.js';
import { startLabOrg, type Authenticator, type LabOrg } from '../../lab/org.js';
import { DeviceTokenAnswerSchema, IssuedAnswerSchema, UserTokenAnswerSchema } from '../../src-main/core/enrollment/protocol.js';
import { identityRefusal } from '../../src-main/core/enrollment/refusal.js';
import { AgentError, exitCodeFor } from '../../src-main/base/errors.js';

const WS01 = 'Negotiate d3MwMQ==';
const WS02 = 'Negotiate d3MwMg==';
const USER = 'Negotiate dXNlcg==';
const fakeKerberos: Authenticator = async (header) => {
  if (header === WS01) return { ok: true, principal: 'WS01$@LAB.TEST' };
  if (header === WS02) return { ok: true, principal: 'WS02$@LAB.TEST' };
  if (header === USER) return { ok: true, principal: 'alice@LAB.TEST' };
  return { ok: false, reason: 'unknown' };
};

const dispatchers: Agent[] = [];
let lab: LabOrg;
before(async () => {
  lab = await startLabOrg({ authenticate: fakeKerberos });
});
after(async () => {
  await Promise.all(dispatchers.map((d) => d.close()));
  await lab.close();
});

async function post(url: string, json: unknown, authorization?: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const dispatcher = new Agent({ connect: { ca: lab.rootCaPem } });
  dispatchers.push(dispatcher);
  const res = await request(url, { method: 'POST', headers: { 'content-type': 'application/json', ...(authorization ? { authorization } : {}) }, body: JSON.stringify(json), dispatcher });
  return { status: res.statusCode, body: (await res.body.json()) as Record<string, unknown> };
}

interface Key {
  keys: webcrypto.CryptoKeyPair;
  thumbprint: string;
}
async function newKey(): Promise<Key> {
  const keys = (await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  return { keys, thumbprint: await calculateJwkThumbprint(await exportJWK(keys.publicKey), 'sha256') };
}
const csrFor = async (k: Key) => (await x509.Pkcs10CertificateRequestGenerator.create({ name: 'CN=device', keys: k.keys, signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' } })).toString('pem');

async function deviceToken(machine: string, deviceId: string, key: Key) {
  return post(`${lab.iwaPrimaryUrl}/device-token`, { deviceId, deviceName: 'ws', keyThumbprint: key.thumbprint }, machine);
}
async function enroll(machine: string, deviceId: string, key: Key, attestation?: unknown) {
  const dev = await deviceToken(machine, deviceId, key);
  assert.equal(dev.status, 200, JSON.stringify(dev.body));
  const user = await post(`${lab.iwaPrimaryUrl}/user-token`, { deviceToken: DeviceTokenAnswerSchema.parse(dev.body).deviceToken }, USER);
  assert.equal(user.status, 200, JSON.stringify(user.body));
  return post(`${lab.orgUrl}/api/v1/device-trust/enroll`, { userToken: UserTokenAnswerSchema.parse(user.body).userToken, csr: await csrFor(key), ...(attestation ? { attestation } : {}) });
}
async function renewalToken(certificate: string, deviceId: string, signWith: Key, next: Key): Promise<string> {
  const iat = Math.floor(Date.now() / 1000);
  return new SignJWT({ device: deviceId, cnf: { jkt: next.thumbprint } })
    .setProtectedHeader({ alg: 'ES256', typ: 'JWT', x5c: [new X509Certificate(certificate).raw.toString('base64')] })
    .setIssuedAt(iat).setNotBefore(iat - 60).setExpirationTime(iat + 600)
    .sign(signWith.keys.privateKey);
}

/** Evidence of the right shape; the stand-in verifier below accepts it as a TPM's (the real check is the TPM tests'). */
const FAKE_EVIDENCE = { challengeId: '0'.repeat(32), secret: 'AA==', tpmtPublic: 'AA==', certifyInfo: 'AA==', signature: 'AA==' };
function acceptAttestation(): () => void {
  const original = lab.attestation.verify.bind(lab.attestation);
  lab.attestation.verify = (() => ({ attributes: ['fixedTPM', 'fixedParent', 'sensitiveDataOrigin'] })) as unknown as typeof lab.attestation.verify;
  return () => {
    lab.attestation.verify = original;
  };
}
const attested = (pem: string) => new x509.X509Certificate(pem).getExtension(x509.CertificatePolicyExtension)?.policies.includes(ATTESTED_KEY_POLICY_OID) ?? false;

test('a deviceId enrolled by one machine principal is refused to another, at the IWA and at the org (E0000_DEVICE_ID_BOUND)', async () => {
  const deviceId = webcrypto.randomUUID();
  const first = await enroll(WS01, deviceId, await newKey());
  assert.equal(first.status, 200);
  // The same machine may enroll it again (a new key, a forced renewal).
  assert.equal((await enroll(WS01, deviceId, await newKey())).status, 200);
  // A clone on another machine: its state.json carries WS01's deviceId.
  const clone = await deviceToken(WS02, deviceId, await newKey());
  assert.equal(clone.status, 403);
  assert.equal(clone.body.errorCode, 'E0000_DEVICE_ID_BOUND');
  assert.match(String(clone.body.errorSummary), /registered to another machine \(ws01\$@lab\.test\); WS02\$@LAB\.TEST cannot claim it/);
  // Other deviceIds stay free for WS02.
  assert.equal((await enroll(WS02, webcrypto.randomUUID(), await newKey())).status, 200);
  assert.ok(lab.issued().filter((r) => r.deviceId === deviceId).length === 2);
});

test('a device token buys exactly one user token (E0000_TOKEN_REPLAYED)', async () => {
  const dev = await deviceToken(WS01, webcrypto.randomUUID(), await newKey());
  const token = DeviceTokenAnswerSchema.parse(dev.body).deviceToken;
  assert.equal((await post(`${lab.iwaPrimaryUrl}/user-token`, { deviceToken: token }, USER)).status, 200);
  const again = await post(`${lab.iwaPrimaryUrl}/user-token`, { deviceToken: token }, USER);
  assert.equal(again.status, 400);
  assert.equal(again.body.errorCode, 'E0000_TOKEN_REPLAYED');
});

test('an attested certificate: software-key renewal refused, early renewal refused, attested renewal inside the window revokes it', async () => {
  const restore = acceptAttestation();
  try {
    const deviceId = webcrypto.randomUUID();
    const key = await newKey();
    const enrolled = await enroll(WS01, deviceId, key, FAKE_EVIDENCE);
    assert.equal(enrolled.status, 200, JSON.stringify(enrolled.body));
    const current = IssuedAnswerSchema.parse(enrolled.body);
    assert.equal(current.keyAttested, true);
    assert.ok(attested(current.certificate));
    const renewUrl = `${lab.orgUrl}/api/v1/device-trust/renew`;

    // Outside the window (a fresh one-year certificate, 30-day window): refused even with attestation.
    const next = await newKey();
    const early = await post(renewUrl, { renewalToken: await renewalToken(current.certificate, deviceId, key, next), csr: await csrFor(next), attestation: FAKE_EVIDENCE });
    assert.equal(early.status, 403);
    assert.equal(early.body.errorCode, 'E0000_OUTSIDE_RENEWAL_WINDOW');

    lab.switches.renewalWindowSeconds = 400 * 24 * 3600;
    try {
      // Inside the window, onto a software key (no attestation): refused, the certificate stays valid.
      const soft = await post(renewUrl, { renewalToken: await renewalToken(current.certificate, deviceId, key, next), csr: await csrFor(next) });
      assert.equal(soft.status, 403);
      assert.equal(soft.body.errorCode, 'E0000_ATTESTED_RENEWAL_REQUIRED');
      assert.match(String(soft.body.errorSummary), /software key is refused/);
      assert.equal(lab.judgeClientCertificate(current.certificate).trusted, true);

      // Attested, inside the window: renewed, and the renewed certificate is revoked (superseded).
      const ok = await post(renewUrl, { renewalToken: await renewalToken(current.certificate, deviceId, key, next), csr: await csrFor(next), attestation: FAKE_EVIDENCE });
      assert.equal(ok.status, 200, JSON.stringify(ok.body));
      const renewed = IssuedAnswerSchema.parse(ok.body);
      assert.equal(renewed.keyAttested, true);
      assert.equal(lab.judgeClientCertificate(current.certificate).reason, 'revoked');
      assert.equal(lab.issued().find((r) => r.serialNumber === current.serialNumber)?.revoked, true);
    } finally {
      lab.switches.renewalWindowSeconds = 30 * 24 * 3600;
    }
  } finally {
    restore();
  }
});

test('a software certificate renews as before (any time, no attestation needed, not revoked by the lab)', async () => {
  const deviceId = webcrypto.randomUUID();
  const key = await newKey();
  const current = IssuedAnswerSchema.parse((await enroll(WS01, deviceId, key)).body);
  const next = await newKey();
  const ok = await post(`${lab.orgUrl}/api/v1/device-trust/renew`, { renewalToken: await renewalToken(current.certificate, deviceId, key, next), csr: await csrFor(next) });
  assert.equal(ok.status, 200);
  assert.equal(lab.judgeClientCertificate(current.certificate).trusted, true);
});

test('the agent says these refusals plainly, as needing a person (exit 30)', () => {
  const raw = (code: string) => new AgentError('rejected', code, `the org at lab refused the request (HTTP 403): "…". Nothing was installed; the previous certificate (if any) is kept.`);
  for (const [server, ours, words] of [
    ['E0000_DEVICE_ID_BOUND', 'DEVICE_ID_BOUND', /registered to another machine/],
    ['E0000_ATTESTED_RENEWAL_REQUIRED', 'ATTESTED_RENEWAL_REQUIRED', /new key was not attested/],
    ['E0000_OUTSIDE_RENEWAL_WINDOW', 'RENEWAL_TOO_EARLY', /renewal window/],
  ] as const) {
    const e = identityRefusal(raw(server)) as AgentError;
    assert.equal(e.code, ours);
    assert.match(e.message, words);
    assert.ok(e.remedy);
    assert.equal(exitCodeFor(e), 30);
    // The IWA's refusals carry the server's code separately (their own code is IWA_HTTP_403).
    assert.equal((identityRefusal(new AgentError('rejected', 'IWA_HTTP_403', 'x'), server) as AgentError).code, ours);
  }
});
