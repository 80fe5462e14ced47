import assert from 'node:assert/strict';
import { createPrivateKey, webcrypto, X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { calculateJwkThumbprint, createLocalJWKSet, decodeJwt, exportJWK, jwtVerify, SignJWT } from 'jose';
import { Agent, request } from 'undici';
import { PKI_FILES, privateKeyPem, x509 } from '../../lab/ca.js';
import { startLabOrg, type Authenticator, type LabOrg } from '../../lab/org.js';
import { DeviceTokenAnswerSchema, IssuedAnswerSchema, MtlsCheckAnswerSchema, OrgConfigSchema, UserTokenAnswerSchema } from '../../src-main/core/enrollment/protocol.js';
import { tempDir } from '../support/agent.js';

const EKU_CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';
const DEVICE = 'Negotiate ZGV2aWNl';
const USER = 'Negotiate dXNlcg==';

/** Stands in for Kerberos: two fixed "tickets", one for the machine and one for the user. */
const fakeKerberos: Authenticator = async (header) => {
  if (header === DEVICE) return { ok: true, principal: 'WS01$@LAB.TEST', mutualToken: 'bXV0dWFs' };
  if (header === USER) return { ok: true, principal: 'alice@LAB.TEST' };
  return { ok: false, reason: 'not a ticket this fake knows' };
};

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  raw: Buffer;
  json: () => unknown;
}

const agents: Agent[] = [];

async function call(lab: LabOrg, url: string, init: { method?: 'GET' | 'POST'; json?: unknown; body?: string; headers?: Record<string, string>; cert?: { cert: string; key: string } } = {}): Promise<Answer> {
  const dispatcher = new Agent({ connect: { ca: lab.rootCaPem, ...(init.cert ?? {}) } });
  agents.push(dispatcher);
  const body = init.json !== undefined ? JSON.stringify(init.json) : init.body;
  const res = await request(url, {
    method: init.method ?? (body !== undefined ? 'POST' : 'GET'),
    headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...init.headers },
    body,
    dispatcher,
  });
  const raw = Buffer.from(await res.body.arrayBuffer());
  const text = raw.toString('utf8');
  return { status: res.statusCode, headers: res.headers, text, raw, json: () => JSON.parse(text) };
}

interface DeviceKey {
  keys: webcrypto.CryptoKeyPair;
  thumbprint: string;
  pem: string;
}

async function newKey(): Promise<DeviceKey> {
  const keys = (await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  return { keys, thumbprint: await calculateJwkThumbprint(await exportJWK(keys.publicKey), 'sha256'), pem: await privateKeyPem(keys.privateKey) };
}

async function csrFor(key: DeviceKey): Promise<string> {
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: 'CN=device',
    keys: key.keys,
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
  });
  return csr.toString('pem');
}

async function userToken(lab: LabOrg, key: DeviceKey, deviceId: string): Promise<string> {
  const dev = await call(lab, `${lab.iwaPrimaryUrl}/device-token`, { json: { deviceId, deviceName: 'ws01', keyThumbprint: key.thumbprint }, headers: { authorization: DEVICE } });
  assert.equal(dev.status, 200, dev.text);
  const { deviceToken } = DeviceTokenAnswerSchema.parse(dev.json());
  const user = await call(lab, `${lab.iwaPrimaryUrl}/user-token`, { json: { deviceToken }, headers: { authorization: USER } });
  assert.equal(user.status, 200, user.text);
  return UserTokenAnswerSchema.parse(user.json()).userToken;
}

async function enroll(lab: LabOrg, key: DeviceKey, deviceId = webcrypto.randomUUID()) {
  const res = await call(lab, `${lab.orgUrl}/api/v1/device-trust/enroll`, { json: { userToken: await userToken(lab, key, deviceId), csr: await csrFor(key) } });
  assert.equal(res.status, 200, res.text);
  const { certificate, chainPem, serialNumber } = IssuedAnswerSchema.parse(res.json());
  assert.ok(chainPem && serialNumber);
  return { deviceId, certificate, chainPem, serialNumber };
}

async function renewalToken(current: { certificate: string; deviceId: string }, signWith: DeviceKey, newKey: DeviceKey): Promise<string> {
  const iat = Math.floor(Date.now() / 1000);
  return new SignJWT({ device: current.deviceId, cnf: { jkt: newKey.thumbprint } })
    .setProtectedHeader({ alg: 'ES256', typ: 'JWT', x5c: [new X509Certificate(current.certificate).raw.toString('base64')] })
    .setIssuedAt(iat)
    .setNotBefore(iat - 300)
    .setExpirationTime(iat + 3600)
    .sign(signWith.keys.privateKey);
}

function errorCode(res: Answer): string {
  return (res.json() as { errorCode: string }).errorCode;
}

let lab: LabOrg;
before(async () => {
  lab = await startLabOrg({ authenticate: fakeKerberos, orgName: 'Lab Org' });
});
after(async () => {
  await Promise.all(agents.map((a) => a.close()));
  await lab.close();
});

test('discovery answers the PROTOCOL §1 shape the agent accepts', async () => {
  const res = await call(lab, `${lab.orgUrl}/api/v1/device-trust/config`);
  assert.equal(res.status, 200);
  const cfg = OrgConfigSchema.parse(res.json());
  assert.equal(cfg.lab, true);
  assert.equal(cfg.readOnly, false);
  assert.equal(cfg.iwa.primary, lab.iwaPrimaryUrl);
  assert.deepEqual(cfg.iwa.backups, [lab.iwaBackupUrl]);
  assert.equal(cfg.iwa.failoverMode, 'REDIRECT_TO_BACKUP');
  assert.equal(cfg.mtls.url, lab.mtlsUrl);
  assert.deepEqual(cfg.mtls.hostPatterns, [new URL(lab.mtlsUrl).origin]);
  assert.equal(cfg.ca.issuerCN, 'MTLS Certificate Authority');
  assert.deepEqual(cfg.ca.chainPem, [lab.issuingCaPem, lab.rootCaPem]);
  assert.equal(cfg.crlUrl, lab.crlUrl);
  assert.deepEqual(cfg.certificate, { validitySeconds: 31536000, renewalWindowSeconds: 2592000 });
  assert.equal(cfg.iwaJwksUrl, `${lab.iwaPrimaryUrl}/jwks.json`);
  for (const u of [lab.orgUrl, lab.iwaPrimaryUrl, lab.iwaBackupUrl, lab.mtlsUrl]) assert.equal(new URL(u).hostname, 'localhost');
});

test('IWA: 401 Negotiate without credentials, and machine/user principals are kept apart', async () => {
  const key = await newKey();
  const body = { deviceId: webcrypto.randomUUID(), deviceName: 'ws01', keyThumbprint: key.thumbprint };
  const none = await call(lab, `${lab.iwaPrimaryUrl}/device-token`, { json: body });
  assert.equal(none.status, 401);
  assert.equal(none.headers['www-authenticate'], 'Negotiate');
  const bad = await call(lab, `${lab.iwaPrimaryUrl}/device-token`, { json: body, headers: { authorization: 'Negotiate Zm9v' } });
  assert.equal(bad.status, 401);
  assert.equal(errorCode(bad), 'E0000_AUTHENTICATION_FAILED');
  const lab1 = await call(lab, `${lab.iwaPrimaryUrl}/device-token`, { json: body, headers: { authorization: `LabSignIn ${Buffer.from('{"principal":"host/ws01@LAB.TEST"}').toString('base64')}` } });
  assert.equal(lab1.status, 401, 'lab-only sign-in is off unless allowLabSignIn');
  const asUser = await call(lab, `${lab.iwaPrimaryUrl}/device-token`, { json: body, headers: { authorization: USER } });
  assert.equal(asUser.status, 403);
  const dev = await call(lab, `${lab.iwaPrimaryUrl}/device-token`, { json: body, headers: { authorization: DEVICE } });
  assert.equal(dev.status, 200);
  assert.equal(dev.headers['www-authenticate'], 'Negotiate bXV0dWFs');
  const { deviceToken } = DeviceTokenAnswerSchema.parse(dev.json());
  const asMachine = await call(lab, `${lab.iwaPrimaryUrl}/user-token`, { json: { deviceToken }, headers: { authorization: DEVICE } });
  assert.equal(asMachine.status, 403);
  const page = await call(lab, `${lab.iwaPrimaryUrl}/authenticated.aspx`, { headers: { authorization: USER } });
  assert.equal(page.status, 200);
  assert.match(page.text, /alice@LAB\.TEST/);
});

test('device token → user token → enrollment issues a clientAuth certificate from the MTLS CA', async () => {
  const key = await newKey();
  const deviceId = webcrypto.randomUUID();
  const jwks = (await call(lab, `${lab.iwaPrimaryUrl}/jwks.json`)).json() as { keys: object[] };
  const token = await userToken(lab, key, deviceId);
  const { payload, protectedHeader } = await jwtVerify(token, createLocalJWKSet(jwks as never), { audience: 'lab-org', issuer: lab.iwaPrimaryUrl });
  assert.ok(protectedHeader.kid);
  assert.equal(payload.typ, 'user');
  assert.equal(payload.sub, 'alice@LAB.TEST');
  assert.equal(payload.deviceId, deviceId);
  assert.equal(payload.devicePrincipal, 'WS01$@LAB.TEST');
  assert.deepEqual(payload.cnf, { jkt: key.thumbprint });
  assert.equal(payload.exp! - payload.iat!, 300);

  const issued = await enroll(lab, key, deviceId);
  const leaf = new X509Certificate(issued.certificate);
  const issuing = new X509Certificate(lab.issuingCaPem);
  const root = new X509Certificate(lab.rootCaPem);
  assert.equal(leaf.issuer, 'CN=MTLS Certificate Authority');
  assert.equal(leaf.subject, `CN=${deviceId}\nOU=Device Trust\nO=Lab Org`);
  assert.deepEqual(leaf.keyUsage, [EKU_CLIENT_AUTH]);
  assert.ok(leaf.checkIssued(issuing) && leaf.verify(issuing.publicKey), 'signed by the issuing CA');
  assert.ok(issuing.checkIssued(root) && issuing.verify(root.publicKey), 'issuing CA signed by the root');
  assert.equal(root.subject, 'CN=Device Trust Lab Root CA');
  assert.ok(leaf.checkPrivateKey(createPrivateKey(key.pem)));
  assert.deepEqual(issued.chainPem, [lab.issuingCaPem, lab.rootCaPem]);
  assert.equal(issued.serialNumber, leaf.serialNumber.toLowerCase());
  assert.equal(issued.serialNumber.length, 32);
  const px = new x509.X509Certificate(issued.certificate);
  assert.deepEqual(px.getExtension(x509.CRLDistributionPointsExtension)?.distributionPoints[0]?.distributionPoint?.fullName?.[0]?.uniformResourceIdentifier, lab.crlUrl);
  assert.equal(px.getExtension(x509.KeyUsagesExtension)?.usages, x509.KeyUsageFlags.digitalSignature);
  const days = (px.notAfter.getTime() - Date.now()) / 86400_000;
  assert.ok(days > 364.9 && days <= 365, `valid for a year (${days} days)`);
  assert.ok(lab.issued().some((r) => r.serialNumber === issued.serialNumber && r.deviceId === deviceId && !r.revoked));
});

test('enrollment refuses a CSR for another key, a bad token, a deactivated user, and bad input', async () => {
  const key = await newKey();
  const token = await userToken(lab, key, webcrypto.randomUUID());
  const enrollUrl = `${lab.orgUrl}/api/v1/device-trust/enroll`;
  const mismatch = await call(lab, enrollUrl, { json: { userToken: token, csr: await csrFor(await newKey()) } });
  assert.equal(mismatch.status, 400);
  assert.equal(errorCode(mismatch), 'E0000_KEY_MISMATCH');
  const garbageCsr = await call(lab, enrollUrl, { json: { userToken: token, csr: '-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----' } });
  assert.equal(errorCode(garbageCsr), 'E0000_INVALID_CSR');
  const [h, p] = token.split('.');
  const forged = await call(lab, enrollUrl, { json: { userToken: `${h}.${p}.${'A'.repeat(86)}`, csr: await csrFor(key) } });
  assert.equal(forged.status, 401);
  assert.equal(errorCode(forged), 'E0000_INVALID_TOKEN');
  for (const body of ['{not json', JSON.stringify({ userToken: 42 }), JSON.stringify([])]) {
    const res = await call(lab, enrollUrl, { body });
    assert.equal(res.status, 400, body);
    assert.equal(errorCode(res), 'E0000_INVALID_REQUEST');
  }
  assert.equal((await call(lab, `${lab.orgUrl}/nope`)).status, 404);

  const other = await startLabOrg({ authenticate: fakeKerberos });
  try {
    other.deactivateUser('alice@LAB.TEST');
    const t = await userToken(other, key, webcrypto.randomUUID());
    const res = await call(other, `${other.orgUrl}/api/v1/device-trust/enroll`, { json: { userToken: t, csr: await csrFor(key) } });
    assert.equal(res.status, 403);
    assert.equal(errorCode(res), 'E0000_USER_NOT_ACTIVE');
    const foreign = await call(lab, enrollUrl, { json: { userToken: await userToken(other, key, webcrypto.randomUUID()), csr: await csrFor(key) } });
    assert.equal(foreign.status, 401, "another IWA's token is not accepted");
  } finally {
    await other.close();
  }
});

test('read-only: enroll and renew answer 503 E0000_READ_ONLY, discovery says readOnly', async () => {
  const key = await newKey();
  const token = await userToken(lab, key, webcrypto.randomUUID());
  lab.switches.readOnly = true;
  try {
    const cfg = OrgConfigSchema.parse((await call(lab, `${lab.orgUrl}/api/v1/device-trust/config`)).json());
    assert.equal(cfg.readOnly, true);
    for (const p of ['enroll', 'renew']) {
      const res = await call(lab, `${lab.orgUrl}/api/v1/device-trust/${p}`, { json: { userToken: token, csr: await csrFor(key) } });
      assert.equal(res.status, 503);
      assert.deepEqual(res.json(), { errorCode: 'E0000_READ_ONLY', errorSummary: 'The org is in read-only mode (maintenance); enrollment is paused. Try again later.' });
    }
  } finally {
    lab.switches.readOnly = false;
  }
});

test('renewal: a token signed by the current key works; another key, or a revoked certificate, is refused', async () => {
  const key = await newKey();
  const current = await enroll(lab, key);
  const next = await newKey();
  const renewUrl = `${lab.orgUrl}/api/v1/device-trust/renew`;

  const stranger = await newKey();
  const wrongSigner = await call(lab, renewUrl, { json: { renewalToken: await renewalToken(current, stranger, next), csr: await csrFor(next) } });
  assert.equal(wrongSigner.status, 401);
  assert.equal(errorCode(wrongSigner), 'E0000_INVALID_TOKEN');
  const wrongCsr = await call(lab, renewUrl, { json: { renewalToken: await renewalToken(current, key, next), csr: await csrFor(stranger) } });
  assert.equal(errorCode(wrongCsr), 'E0000_KEY_MISMATCH');

  const ok = await call(lab, renewUrl, { json: { renewalToken: await renewalToken(current, key, next), csr: await csrFor(next) } });
  assert.equal(ok.status, 200, ok.text);
  const renewed = IssuedAnswerSchema.parse(ok.json());
  assert.equal(renewed.deviceId, current.deviceId);
  assert.notEqual(renewed.serialNumber, current.serialNumber);
  assert.ok(new X509Certificate(renewed.certificate).checkPrivateKey(createPrivateKey(next.pem)));
  assert.ok(!lab.issued().find((r) => r.serialNumber === current.serialNumber)!.revoked, 'the old certificate is not revoked');

  lab.revoke(current.serialNumber);
  const revoked = await call(lab, renewUrl, { json: { renewalToken: await renewalToken(current, key, next), csr: await csrFor(next) } });
  assert.equal(revoked.status, 401);
  assert.match((revoked.json() as { errorSummary: string }).errorSummary, /revoked/);
});

test('revocation puts the serial in the CRL signed by the issuing CA', async () => {
  const issued = await enroll(lab, await newKey());
  const before = new x509.X509Crl((await call(lab, lab.crlUrl)).raw);
  assert.equal(before.findRevoked(issued.serialNumber), null);
  lab.revoke(issued.serialNumber.toUpperCase());
  const res = await call(lab, lab.crlUrl);
  assert.equal(res.headers['content-type'], 'application/pkix-crl');
  const crl = new x509.X509Crl(res.raw);
  assert.equal(crl.issuer, 'CN=MTLS Certificate Authority');
  assert.ok(await crl.verify({ publicKey: new x509.X509Certificate(lab.issuingCaPem) }));
  assert.ok(crl.findRevoked(issued.serialNumber));
  assert.ok(lab.issued().find((r) => r.serialNumber === issued.serialNumber)!.revoked);
});

test('mTLS endpoint: trusted with the issued certificate, not without, not when revoked', async () => {
  const key = await newKey();
  const issued = await enroll(lab, key);
  const cert = { cert: issued.certificate, key: key.pem };
  const yes = MtlsCheckAnswerSchema.parse((await call(lab, lab.mtlsUrl, { cert })).json());
  assert.deepEqual(yes, { trusted: true, deviceId: issued.deviceId, serialNumber: issued.serialNumber, subject: `CN=${issued.deviceId}, OU=Device Trust, O=Lab Org` });
  assert.deepEqual((await call(lab, lab.mtlsUrl)).json(), { trusted: false, reason: 'no-certificate' });

  const rogue = await startLabOrg({ authenticate: fakeKerberos });
  try {
    const foreign = await enroll(rogue, key);
    assert.deepEqual((await call(lab, lab.mtlsUrl, { cert: { cert: foreign.certificate, key: key.pem } })).json(), { trusted: false, reason: 'untrusted-issuer' });
  } finally {
    await rogue.close();
  }
  lab.revoke(issued.serialNumber);
  assert.deepEqual((await call(lab, lab.mtlsUrl, { cert })).json(), { trusted: false, reason: 'revoked' });
});

test('mTLS endpoint: a certificate of the org\'s CA without the clientAuth extended key usage is not trusted', async () => {
  const key = await newKey();
  lab.switches.tamper = 'no-client-auth';
  const serverOnly = await enroll(lab, key);
  assert.deepEqual((await call(lab, lab.mtlsUrl, { cert: { cert: serverOnly.certificate, key: key.pem } })).json(), { trusted: false, reason: 'not-client-auth' });
  assert.equal(lab.judgeClientCertificate(serverOnly.certificate).reason, 'not-client-auth');
});

test('switches: tamper forges one answer, down servers drop connections, admin endpoints need the token', async () => {
  const key = await newKey();
  lab.switches.tamper = 'other-key';
  const forged = await enroll(lab, key);
  assert.ok(!new X509Certificate(forged.certificate).checkPrivateKey(createPrivateKey(key.pem)));
  assert.equal(lab.switches.tamper, null, 'one answer only');
  assert.ok(!lab.issued().some((r) => r.serialNumber === forged.serialNumber), 'forgeries are not records');

  lab.switches.tamper = 'malformed-json';
  const res = await call(lab, `${lab.orgUrl}/api/v1/device-trust/enroll`, { json: { userToken: await userToken(lab, key, webcrypto.randomUUID()), csr: await csrFor(key) } });
  assert.equal(res.status, 200);
  assert.throws(() => res.json());

  const admin = (what: string, json: unknown, token = lab.adminToken) => call(lab, `${lab.orgUrl}/lab/admin/${what}`, { json, headers: { authorization: `Bearer ${token}` } });
  assert.equal((await admin('switches', { orgDown: true }, 'wrong')).status, 401);
  assert.equal((await admin('switches', { orgDown: 'yes' })).status, 400);
  assert.equal((await admin('switches', { orgDown: true, iwaPrimaryDown: true })).status, 200);
  await assert.rejects(call(lab, `${lab.orgUrl}/api/v1/device-trust/config`));
  await assert.rejects(call(lab, `${lab.iwaPrimaryUrl}/jwks.json`));
  assert.equal((await call(lab, `${lab.iwaBackupUrl}/jwks.json`)).status, 200);
  await admin('switches', { orgDown: false });
  assert.equal((await call(lab, `${lab.orgUrl}/api/v1/agentPools`)).status, 401, 'agent pools need the admin API token');
  const pools = (await call(lab, `${lab.orgUrl}/api/v1/agentPools`, { headers: { authorization: `SSWS ${lab.apiToken}` } })).json() as Array<{ type: string; operationalStatus: string }>;
  assert.equal(pools.find((p) => p.type === 'IWA')?.operationalStatus, 'DEGRADED');
  await admin('switches', { iwaPrimaryDown: false });
  assert.equal((await call(lab, `${lab.orgUrl}/api/v1/device-trust/config`)).status, 200);
  assert.equal((await admin('deactivate', { principal: 'bob@LAB.TEST' })).status, 200);
  assert.equal((await admin('revoke', { serialNumber: 'zz' })).status, 400);
  const health = (await call(lab, `${lab.orgUrl}/api/v1/gateway/health`)).json() as { status: string; lastChecked: string };
  assert.equal(health.status, 'HEALTHY');
  assert.ok(Math.abs(Date.parse(health.lastChecked) - Date.now()) < 60_000);
});

test('every request body is recorded raw', async () => {
  const mark = lab.received.length;
  await call(lab, `${lab.orgUrl}/api/v1/device-trust/enroll`, { body: '{"raw":1}' });
  const got = lab.received.slice(mark);
  assert.equal(got.length, 1);
  assert.equal(got[0]!.method, 'POST');
  assert.equal(got[0]!.url, `${lab.orgUrl}/api/v1/device-trust/enroll`);
  assert.equal(got[0]!.body, '{"raw":1}');
  assert.equal(got[0]!.headers['content-type'], 'application/json');
});

test('lab-only sign-in is accepted when allowLabSignIn is set', async () => {
  const signedIn = await startLabOrg({ allowLabSignIn: true, authenticate: fakeKerberos });
  try {
    const labSignIn = (principal: string) => `LabSignIn ${Buffer.from(JSON.stringify({ principal })).toString('base64')}`;
    const key = await newKey();
    const dev = await call(signedIn, `${signedIn.iwaBackupUrl}/device-token`, {
      json: { deviceId: webcrypto.randomUUID(), deviceName: 'ws01', keyThumbprint: key.thumbprint },
      headers: { authorization: labSignIn('host/ws01.lab.test@LAB.TEST') },
    });
    assert.equal(dev.status, 200, dev.text);
    const { deviceToken } = DeviceTokenAnswerSchema.parse(dev.json());
    assert.equal(decodeJwt(deviceToken).iss, signedIn.iwaBackupUrl);
    assert.equal(decodeJwt(deviceToken).principal, 'host/ws01.lab.test@LAB.TEST');
    const user = await call(signedIn, `${signedIn.iwaBackupUrl}/user-token`, { json: { deviceToken }, headers: { authorization: labSignIn('alice@LAB.TEST') } });
    assert.equal(user.status, 200, user.text);
    const bad = await call(signedIn, `${signedIn.iwaBackupUrl}/user-token`, { json: { deviceToken }, headers: { authorization: 'LabSignIn !!!' } });
    assert.equal(bad.status, 401);
  } finally {
    await signedIn.close();
  }
});

test('with a data dir the CA, issued and revoked records survive a restart; key files are 0600', async () => {
  const dir = tempDir('lab-org');
  try {
    const first = await startLabOrg({ dataDir: dir, authenticate: fakeKerberos });
    let serial: string;
    try {
      serial = (await enroll(first, await newKey())).serialNumber;
      first.revoke(serial);
    } finally {
      await first.close();
    }
    for (const f of [PKI_FILES.rootKey, PKI_FILES.issuingKey]) assert.equal(fs.statSync(path.join(dir, f)).mode & 0o777, 0o600, f);
    const second = await startLabOrg({ dataDir: dir, authenticate: fakeKerberos });
    try {
      assert.equal(second.rootCaPem, first.rootCaPem);
      assert.equal(second.issuingCaPem, first.issuingCaPem);
      assert.deepEqual(second.issued().map((r) => [r.serialNumber, r.revoked]), [[serial, true]]);
      const crl = new x509.X509Crl((await call(second, second.crlUrl)).raw);
      assert.ok(crl.findRevoked(serial));
    } finally {
      await second.close();
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
