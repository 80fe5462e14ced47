/**
 * Hostile and broken server answers, each at enrollment AND at renewal, through a hostile HTTPS front before the
 * real lab org (real TLS, the real agent command line, the real NSS database). Every case asserts the exit class,
 * the user-facing message (what happened, that nothing was installed, what to do), that nothing was installed
 * at enrollment, and at renewal that the previous certificate is intact and still accepted by the lab's mTLS
 * endpoint. Then every output sink is scanned for planted secrets and raw control characters.
 *
 * Fast: the device enrolls once; each renewal case starts from a copy of that profile.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { randomUUID, webcrypto } from 'node:crypto';
import { createRootCa, LabPki, randomSerial, x509 } from '../../lab/ca.js';
import { startLabOrg, type LabOrg } from '../../lab/org.js';
import { makeProfile, runAgent, tempDir, writeRootCa, type AgentResult, type Profile } from '../support/agent.js';
import { forge, lookalikeCa, rolloverCa, startFront, weakRsaCa, type FrontBehaviour, type Reply } from '../support/hostile-front.js';
import { nssUserCerts } from '../support/nss.js';
import { eventsText, readState, stateText } from '../support/state.js';

const DAY = 86_400_000;
const CHALLENGE = 'planted-Challenge-7Qx93';
const PROXY_PASSWORD = 'planted-ProxyPw-51kd';
const SERVER_JWT = 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJwbGFudGVkLWp3dCJ9.c2lnbmF0dXJlLXBsYW50ZWQtand0';
const BEARER = 'Bearer plantedBearerToken0123456789';
const URL_PW = 'planted-UrlPassword-88';
const HOSTILE_TEXT = `\x1b[2J\x1b]0;pwned\x07ring\x07 \x1b[31mred\x1b[0m \u202eevil`;
const SECRETS = [CHALLENGE, PROXY_PASSWORD, SERVER_JWT, 'plantedBearerToken0123456789', URL_PW];
// eslint-disable-next-line no-control-regex
const RAW_CONTROL = /[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e]/;

type Phase = 'enroll' | 'renew';
interface Expect {
  exit: number;
  message: RegExp;
  /** The certificate changes (host-pattern cases: the answer is fine, only patterns are dropped). */
  changes?: boolean;
}
interface Case {
  name: string;
  behaviour: FrontBehaviour;
  enroll: Expect;
  renew?: Expect;
  /** Renewal-phase arguments (IWA cases: a forced renewal goes through IWA again). */
  renewArgs?: string[];
  tls?: 'wrong-name';
  check?: (r: AgentResult, p: Profile, phase: Phase) => void;
}

const json = (status: number, body: unknown): Reply => ({ status, json: body });
const orgError = (status: number, summary: string, code = 'E0000_HOSTILE'): Reply => json(status, { errorCode: code, errorSummary: summary });
const html = (status: number): Reply => ({ status, headers: { 'content-type': 'text/html' }, body: '<html><body><h1>Sign in to the Wi-Fi</h1></body></html>' });

describe('hostile server answers: nothing installed, previous certificate intact, clean messages', { concurrency: 3 }, () => {
  let lab: LabOrg;
  let pki: LabPki;
  let rootCaFile: string;
  let tls: { cert: string; key: string };
  let wrongNameTls: { cert: string; key: string };
  let snapshot: Profile;
  let shimDir: string;
  const fronts: { close(): Promise<void> }[] = [];
  const outputs: { where: string; text: string }[] = [];
  const profiles: Profile[] = [];
  let swapped: { chainPem: string[] };
  const weak = {} as Record<'rsa1024' | 'sha1', Awaited<ReturnType<typeof weakRsaCa>>>;

  const profileEnv = (p: Profile, orgUrl: string, syslog: string) => ({
    ...p.env,
    DTA_ORG_URL: orgUrl,
    DTA_SCEP_CHALLENGE: CHALLENGE,
    // A proxy the environment names (with a password) that NO_PROXY bypasses for the lab: its password is a secret.
    HTTPS_PROXY: `http://agent:${PROXY_PASSWORD}@127.0.0.1:9`,
    NO_PROXY: 'localhost,127.0.0.1',
    PATH: `${shimDir}:${process.env.PATH ?? '/usr/bin:/bin'}`,
    DTA_TEST_SYSLOG_FILE: syslog,
  });

  before(async () => {
    const dir = tempDir('hostile-lab');
    pki = await LabPki.loadOrCreate(dir);
    lab = await startLabOrg({ allowLabSignIn: true, dataDir: dir });
    rootCaFile = writeRootCa(lab.rootCaPem);
    tls = await pki.serverTlsCredentials();
    swapped = await lookalikeCa();
    weak.rsa1024 = await weakRsaCa(pki);
    weak.sha1 = await weakRsaCa(pki, 'SHA-1', 2048);
    wrongNameTls = await serverCredentials(pki, 'wrong-name.example');
    // The platform log (syslog) is captured by a `logger` first on PATH: it records its arguments and the line
    // it was given on standard input.
    shimDir = tempDir('shim');
    fs.writeFileSync(path.join(shimDir, 'logger'), '#!/bin/sh\n{ printf \'%s \' "$*"; cat; } >> "$DTA_TEST_SYSLOG_FILE"\n', { mode: 0o755 });
    const front = await startFront({ labOrgUrl: lab.orgUrl, rootCaPem: lab.rootCaPem, tls, behaviour: {} });
    fronts.push(front);
    snapshot = makeProfile({ orgUrl: front.url, rootCaFile, extraEnv: { DTA_LAB_SIGN_IN: 'true' } });
    const r = await runAgent(['run'], profileEnv(snapshot, front.url, path.join(snapshot.home, 'syslog.txt')), { timeoutMs: 180_000 });
    assert.equal(r.code, 0, r.stderr);
  });

  after(async () => {
    await Promise.all(fronts.map((f) => f.close()));
    await lab?.close();
  });

  /** A copy of the enrolled profile (HOME with its NSS database, state, credentials, policy). */
  function copyOfSnapshot(): Profile {
    const home = tempDir('home');
    fs.cpSync(snapshot.home, home, { recursive: true });
    const swap = (s: string) => s.split(snapshot.home).join(home);
    return {
      home, stateDir: swap(snapshot.stateDir), nssDb: swap(snapshot.nssDb), chromiumEtc: swap(snapshot.chromiumEtc), policyDir: swap(snapshot.policyDir),
      env: Object.fromEntries(Object.entries(snapshot.env).map(([k, v]) => [k, swap(v)])),
    };
  }

  const certFiles = (p: Profile) => {
    const root = path.join(p.stateDir, 'credentials');
    return fs.existsSync(root) ? fs.readdirSync(root).filter((d) => fs.existsSync(path.join(root, d, 'cert.pem'))) : [];
  };

  /**
   * The lab mTLS endpoint's verdict on the installed certificate. The key lives in a PKCS#11 token that Node's TLS
   * cannot use, so the endpoint's own rules are asked directly; that the key is still paired with the certificate
   * is what NSS's user-certificate listing (u,u,u) above proves.
   */
  async function mtlsCheck(p: Profile, thumbprint: string): Promise<{ trusted: boolean; serialNumber?: string; reason?: string }> {
    return lab.judgeClientCertificate(fs.readFileSync(path.join(p.stateDir, 'credentials', thumbprint, 'cert.pem'), 'utf8'));
  }

  /** Discovery at renewal: the renewal window covers the whole validity, so the pass renews. */
  function inPhase(b: FrontBehaviour, phase: Phase): FrontBehaviour {
    if (phase === 'enroll') return b;
    return {
      ...b,
      discovery: (d, front) => {
        const renewing = { ...d, certificate: { ...d.certificate, renewalWindowSeconds: 400 * 86_400 } };
        return b.discovery ? b.discovery(renewing, front) : renewing;
      },
    };
  }

  async function runCase(c: Case, phase: Phase): Promise<void> {
    const expect = phase === 'enroll' ? c.enroll : (c.renew ?? c.enroll);
    const front = await startFront({ labOrgUrl: lab.orgUrl, rootCaPem: lab.rootCaPem, tls: c.tls === 'wrong-name' ? wrongNameTls : tls, behaviour: inPhase(c.behaviour, phase) });
    fronts.push(front);
    const p = phase === 'enroll' ? makeProfile({ orgUrl: front.url, rootCaFile, extraEnv: { DTA_LAB_SIGN_IN: 'true' } }) : copyOfSnapshot();
    profiles.push(p);
    const before = phase === 'renew' ? readState(p).current : undefined;
    const args = phase === 'renew' && c.renewArgs ? c.renewArgs : ['run'];
    const r = await runAgent(args, profileEnv(p, front.url, path.join(p.home, 'syslog.txt')), { timeoutMs: 180_000 });
    outputs.push({ where: `${c.name}/${phase} stdout`, text: r.stdout }, { where: `${c.name}/${phase} stderr`, text: r.stderr });
    const said = r.stdout + r.stderr;
    assert.equal(r.code, expect.exit, `exit code\n${said}`);
    assert.match(said, expect.message);
    assert.doesNotMatch(said, RAW_CONTROL, 'no raw control character reaches the terminal');
    assert.ok(said.split('\n').every((l) => l.length < 10_000), 'no runaway line');
    assert.doesNotMatch(said, /PEM routines|bad base64|ERR_OSSL/, 'no raw OpenSSL text');
    for (const s of SECRETS) assert.ok(!said.includes(s), `secret ${s.slice(0, 12)}… printed`);
    if (!expect.changes && expect.exit !== 10) {
      assert.match(r.stderr, /Nothing was (installed|requested|changed)|previous certificate|nothing was changed|Nothing to do on this device/i, 'says nothing was installed');
      assert.match(r.stderr, /What to do: \S/, 'says what to do');
    }
    if (phase === 'enroll' && !expect.changes) {
      assert.deepEqual(nssUserCerts(p.nssDb), [], 'nothing installed in the NSS database');
      assert.deepEqual(certFiles(p), [], 'no credential written');
      assert.equal(fs.existsSync(path.join(p.stateDir, 'state.json')) ? readState(p).current : undefined, undefined);
    }
    if (phase === 'renew') {
      const now = readState(p).current;
      if (!expect.changes) {
        assert.equal(now.sha256, before.sha256, 'the previous certificate is still the current one');
        assert.deepEqual(nssUserCerts(p.nssDb).map((x) => x.serial), [before.serialNumber], 'the previous certificate is still installed');
      }
      const check = await mtlsCheck(p, now.thumbprint);
      assert.equal(check.trusted, true, `the lab's mTLS endpoint accepts the certificate (${check.reason})`);
    }
    c.check?.(r, p, phase);
  }

  const CASES: Case[] = [
    // --- the issued certificate ---
    { name: 'certificate for another key', behaviour: { issue: async (x) => json(200, { certificate: await forge(pki, x.csrPem, { otherKey: true }) }) }, enroll: { exit: 30, message: /different key than the one this device generated/ } },
    { name: 'certificate from another issuer', behaviour: { issue: async (x) => json(200, { certificate: await forge(pki, x.csrPem, { signer: await createRootCa('Rogue Certificate Authority', 30) }) }) }, enroll: { exit: 30, message: /issued by "Rogue Certificate Authority"/ } },
    { name: 'same issuer name, another key', behaviour: { issue: async (x) => json(200, { certificate: await forge(pki, x.csrPem, { signer: (await lookalikeCa()).issuing }) }) }, enroll: { exit: 30, message: /does not chain to the org's certificate authority/ } },
    { name: 'expired certificate', behaviour: { issue: async (x) => json(200, { certificate: await forge(pki, x.csrPem, { notBefore: new Date(Date.now() - 3 * DAY), notAfter: new Date(Date.now() - DAY) }) }) }, enroll: { exit: 30, message: /it expired on/ } },
    { name: 'certificate not yet valid', behaviour: { issue: async (x) => json(200, { certificate: await forge(pki, x.csrPem, { notBefore: new Date(Date.now() + 2 * DAY) }) }) }, enroll: { exit: 30, message: /valid only from .*clock/ } },
    { name: 'no clientAuth', behaviour: { issue: async (x) => json(200, { certificate: await forge(pki, x.csrPem, { eku: [x509.ExtendedKeyUsage.serverAuth] }) }) }, enroll: { exit: 30, message: /no clientAuth/ } },
    { name: 'a CA as leaf', behaviour: { issue: async (x) => json(200, { certificate: await forge(pki, x.csrPem, { ca: true, keyUsage: x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyCertSign }) }) }, enroll: { exit: 30, message: /certificate authority \(basicConstraints CA:TRUE\)/ } },
    { name: 'keyCertSign leaf', behaviour: { issue: async (x) => json(200, { certificate: await forge(pki, x.csrPem, { keyUsage: x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyCertSign }) }) }, enroll: { exit: 30, message: /keyCertSign/ } },
    { name: 'cRLSign leaf', behaviour: { issue: async (x) => json(200, { certificate: await forge(pki, x.csrPem, { keyUsage: x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.cRLSign }) }) }, enroll: { exit: 30, message: /cRLSign/ } },
    { name: 'no digitalSignature', behaviour: { issue: async (x) => json(200, { certificate: await forge(pki, x.csrPem, { keyUsage: x509.KeyUsageFlags.keyEncipherment }) }) }, enroll: { exit: 30, message: /lacks digitalSignature/ } },
    // --- identity, lifetime and strength (README "Issued certificates"): refused with their own codes, exit 30 ---
    {
      name: 'CN of another valid device ID', behaviour: { issue: async (x) => json(200, { certificate: await forge(pki, x.csrPem, { subject: `CN=${randomUUID()}` }) }) },
      enroll: { exit: 30, message: /CERT_WRONG_IDENTITY|names the subject CN "[0-9a-f-]{36}", but this device asked for a certificate for its own ID/ },
      check: (r, p) => {
        assert.match(r.stderr, /names the subject CN "[0-9a-f-]{36}", but this device asked for a certificate for its own ID/);
        if (fs.existsSync(path.join(p.stateDir, 'state.json'))) assert.equal(readState(p).deviceId, readState(p).deviceId.toLowerCase());
        assert.ok(eventsText(p).includes('"code":"CERT_WRONG_IDENTITY"'), 'its own code');
      },
    },
    { name: 'a CN that is not a device ID', behaviour: { issue: async (x) => json(200, { certificate: await forge(pki, x.csrPem, { subject: 'CN=0123456789abcdef0123456789abcdef0123' }) }) }, enroll: { exit: 30, message: /names the subject CN "0123456789abcdef0123456789abcdef0123"/ } },
    { name: 'a SAN naming another host', behaviour: { issue: async (x) => json(200, { certificate: await forge(pki, x.csrPem, { san: [{ type: 'dns', value: 'login.other-org.example' }] }) }) }, enroll: { exit: 30, message: /subject alternative name dns:"login\.other-org\.example"/ } },
    {
      name: 'valid for 20 years', behaviour: { issue: async (x) => json(200, { certificate: await forge(pki, x.csrPem, { notAfter: new Date(Date.now() + 20 * 365 * DAY) }) }) },
      enroll: { exit: 30, message: /valid for 7300 days .*longer than the 365 days the org advertises/ },
      check: (_r, p) => assert.ok(eventsText(p).includes('"code":"CERT_LIFETIME_TOO_LONG"'), 'its own code'),
    },
    { name: 'leaf signed with SHA-1', behaviour: { issue: async (x) => json(200, { certificate: await forge(pki, x.csrPem, { hash: 'SHA-1' }) }) }, enroll: { exit: 30, message: /ECDSA with SHA-1 signature/ } },
    {
      name: 'an RSA-1024 CA in discovery, the certificate signed by it',
      behaviour: { discovery: (d) => ({ ...d, ca: { ...d.ca, chainPem: weak.rsa1024.chainPem } }), issue: async (x) => json(200, { certificate: await forge(pki, x.csrPem, { signer: weak.rsa1024.issuing }) }) },
      enroll: { exit: 30, message: /names a certificate authority below the agent's floor .*an RSA key of 1024 bits/ },
      check: (_r, p) => assert.ok(eventsText(p).includes('"code":"CA_WEAK_CRYPTO"'), 'its own code'),
    },
    {
      name: 'a CA signed with SHA-1 in discovery',
      behaviour: { discovery: (d) => ({ ...d, ca: { ...d.ca, chainPem: weak.sha1.chainPem } }), issue: async (x) => json(200, { certificate: await forge(pki, x.csrPem, { signer: weak.sha1.issuing }) }) },
      enroll: { exit: 30, message: /names a certificate authority below the agent's floor .*ECDSA with SHA-1 signature/ },
    },
    { name: 'garbage PEM', behaviour: { issue: () => json(200, { certificate: '-----BEGIN CERTIFICATE-----\nM!!garbage@@not*base64\n-----END CERTIFICATE-----' }) }, enroll: { exit: 30, message: /does not hold a readable certificate/ } },
    { name: 'no certificate field', behaviour: { issue: () => json(200, { serialNumber: '01' }) }, enroll: { exit: 30, message: /unexpected shape \(certificate/ } },
    { name: 'wrong types', behaviour: { issue: () => json(200, { certificate: 42, chainPem: 'x' }) }, enroll: { exit: 30, message: /unexpected shape/ } },
    { name: 'truncated JSON', behaviour: { issue: () => ({ status: 200, headers: { 'content-type': 'application/json' }, body: '{"certificate": "-----BEGIN CERTIFICATE-----\\nMIIB' }) }, enroll: { exit: 30, message: /not JSON/ } },
    { name: 'empty body', behaviour: { issue: () => ({ status: 200, headers: { 'content-type': 'application/json' }, body: '' }) }, enroll: { exit: 30, message: /not JSON/ } },
    { name: 'HTML page with 200', behaviour: { issue: () => html(200) }, enroll: { exit: 30, message: /not JSON/ } },
    { name: 'HTML page with 500', behaviour: { issue: () => html(500) }, enroll: { exit: 20, message: /unavailable \(HTTP 500\)/ } },
    { name: 'huge body', behaviour: { issue: () => ({ status: 200, headers: { 'content-type': 'application/json' }, body: `{"certificate":"${'A'.repeat(3 * 1024 * 1024)}"}` }) }, enroll: { exit: 30, message: /larger than/ } },
    { name: 'streamed huge body', behaviour: { issue: () => ({ status: 200, headers: { 'content-type': 'application/json' }, stream: { chunk: Buffer.alloc(64 * 1024, 0x41), count: 256 } }) }, enroll: { exit: 30, message: /larger than/ } },
    { name: 'error text with control characters', behaviour: { issue: () => orgError(400, `Denied ${HOSTILE_TEXT}`) }, enroll: { exit: 30, message: /refused the request \(HTTP 400\): "Denied .*ring.*red/ } },
    { name: 'error text of 100 KB', behaviour: { issue: () => orgError(500, 'overload '.repeat(12_000)) }, enroll: { exit: 20, message: /unavailable \(HTTP 500\): "overload .*more characters cut/ } },
    { name: 'error text with secrets', behaviour: { issue: () => orgError(403, `token ${SERVER_JWT} header ${BEARER} via https://admin:${URL_PW}@idp.example challenge ${CHALLENGE} proxy ${PROXY_PASSWORD}`) }, enroll: { exit: 30, message: /refused the request \(HTTP 403\).*\[redacted\]/ } },
    { name: 'error code with control characters', behaviour: { issue: () => json(400, { errorCode: '\x1b[2J\x07E1', errorSummary: 'x' }) }, enroll: { exit: 30, message: /HTTP 400/ } },
    { name: 'redirect loop', behaviour: { issue: (x) => ({ status: 302, headers: { location: `${x.front}/api/v1/device-trust/${x.path}` } }) }, enroll: { exit: 30, message: /HTTP 302/ } },
    { name: 'redirect to http', behaviour: { issue: () => ({ status: 301, headers: { location: 'http://localhost:9/api/v1/device-trust/enroll' } }) }, enroll: { exit: 30, message: /HTTP 301/ } },
    { name: 'read-only org at issuance', behaviour: { issue: () => ({ ...orgError(503, 'The org is in read-only mode (maintenance).', 'E0000_READ_ONLY'), headers: { 'retry-after': '60' } }) }, enroll: { exit: 20, message: /read-only/ } },
    // --- discovery ---
    { name: 'read-only org in discovery', behaviour: { discovery: (d) => ({ ...d, readOnly: true }) }, enroll: { exit: 20, message: /read-only mode/ } },
    {
      name: 'CA swap in discovery', behaviour: { discovery: (d) => ({ ...d, ca: { ...d.ca, chainPem: swapped.chainPem } }) },
      enroll: { exit: 30, message: /does not chain to the org's certificate authority/ },
      renew: { exit: 30, message: /publishes a different certificate authority .*not signed or cross-signed/ },
      check: (_r, p, phase) => {
        if (phase === 'renew') assert.ok(eventsText(p).includes('"id":1151'), 'event 1151 (CA_CHANGED)');
      },
    },
    { name: 'garbage CA chain in discovery', behaviour: { discovery: (d) => ({ ...d, ca: { ...d.ca, chainPem: ['-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----'] } }) }, enroll: { exit: 30, message: /CA chain the org publishes cannot be read/ } },
    { name: 'missing CA chain in discovery', behaviour: { discovery: (d) => ({ ...d, ca: { issuerCN: d.ca.issuerCN } }) }, enroll: { exit: 30, message: /unexpected shape \(ca\.chainPem/ } },
    { name: 'discovery not JSON', behaviour: { discovery: () => html(200) }, enroll: { exit: 30, message: /not JSON/ } },
    { name: 'discovery HTML with 500', behaviour: { discovery: () => html(500) }, enroll: { exit: 20, message: /unavailable \(HTTP 500\)/ }, renew: { exit: 10, message: /not reachable/ } },
    { name: 'discovery wrong types', behaviour: { discovery: (d) => ({ ...d, readOnly: 'no', iwa: 7 }) }, enroll: { exit: 30, message: /unexpected shape/ } },
    { name: 'discovery redirect to http', behaviour: { discovery: () => ({ status: 302, headers: { location: 'http://localhost:9/api/v1/device-trust/config' } }) }, enroll: { exit: 30, message: /HTTP 302/ } },
    { name: 'wrong TLS host name', tls: 'wrong-name', behaviour: {}, enroll: { exit: 30, message: /could not be verified|certificate/i } },
    // --- the IWA web app (a forced renewal goes through it again) ---
    { name: 'IWA error with control characters', renewArgs: ['run', '--forceRenewal'], behaviour: { iwa: () => orgError(500, `Kerberos broke ${HOSTILE_TEXT}`) }, enroll: { exit: 20, message: /refused the device token request \(HTTP 500\): "Kerberos broke ring\\x07 red <U\+202E>evil"/ } },
    { name: 'IWA error text of 100 KB', renewArgs: ['run', '--forceRenewal'], behaviour: { iwa: () => orgError(400, 'nope '.repeat(20_000)) }, enroll: { exit: 30, message: /refused the device token request \(HTTP 400\).*more characters cut/ } },
    { name: 'IWA error with secrets', renewArgs: ['run', '--forceRenewal'], behaviour: { iwa: () => orgError(403, `got ${BEARER} and ${SERVER_JWT} for challenge ${CHALLENGE}`) }, enroll: { exit: 30, message: /HTTP 403/ } },
    { name: 'IWA HTML with 200', renewArgs: ['run', '--forceRenewal'], behaviour: { iwa: () => html(200) }, enroll: { exit: 30, message: /not JSON/ } },
    { name: 'IWA wrong types', renewArgs: ['run', '--forceRenewal'], behaviour: { iwa: () => json(200, { deviceToken: 5 }) }, enroll: { exit: 30, message: /unexpected shape/ } },
    // --- host patterns: the answer is usable, the hostile patterns are dropped and reported ---
    ...([
      ['a bare *', '*'],
      ['https://*', 'https://*'],
      ['a wildcard over a TLD', 'https://[*.]com'],
      ['an http:// pattern', 'http://localhost'],
      ['a host outside the org', 'https://evil.example.net'],
    ] as const).map(([what, pattern]): Case => ({
      name: `host pattern ${what}`,
      behaviour: { discovery: (d) => ({ ...d, mtls: { ...d.mtls, hostPatterns: [pattern, ...d.mtls.hostPatterns] } }) },
      enroll: { exit: 0, message: /host patterns that were refused/, changes: true },
      check: (_r, p) => {
        const policy = fs.readFileSync(path.join(p.policyDir, fs.readdirSync(p.policyDir)[0]!), 'utf8');
        assert.ok(!policy.includes(JSON.stringify(pattern).slice(1, -1) + '"') && !policy.includes(`"pattern":"${pattern}"`), `${pattern} is not in the browser policy`);
        assert.match(policy, /localhost:\d+/, 'the org\'s own pattern is written');
        assert.ok(eventsText(p).includes('"id":1150'), 'event 1150 (HOST_PATTERNS_REFUSED)');
      },
    })),
  ];

  for (const c of CASES) {
    for (const phase of ['enroll', 'renew'] as const) {
      test(`${c.name} — at ${phase === 'enroll' ? 'enrollment' : 'renewal'}`, () => runCase(c, phase));
    }
  }

  test('a CA rollover the old CA signed is accepted at renewal; the mTLS endpoint is not asked to trust it', async () => {
    const roll = await rolloverCa(pki);
    const front = await startFront({
      labOrgUrl: lab.orgUrl, rootCaPem: lab.rootCaPem, tls,
      behaviour: inPhase({ discovery: (d) => ({ ...d, ca: { ...d.ca, chainPem: roll.chainPem } }), issue: async (x) => json(200, { certificate: await forge(pki, x.csrPem, { signer: roll.issuing }) }) }, 'renew'),
    });
    fronts.push(front);
    const p = copyOfSnapshot();
    const before = readState(p).current;
    const r = await runAgent(['run', '--debug'], profileEnv(p, front.url, path.join(p.home, 'syslog.txt')), { timeoutMs: 180_000 });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /CA continuity: .*accepted as a rollover/);
    assert.notEqual(readState(p).current.sha256, before.sha256, 'renewed under the new CA');
  });

  test('a CA an admin pinned in managed configuration is accepted; the same pin from the user config is not', async () => {
    const other = await lookalikeCa();
    const fp = new (await import('node:crypto')).X509Certificate(other.chainPem[0]!).fingerprint256;
    const behaviour = inPhase({ discovery: (d) => ({ ...d, ca: { ...d.ca, chainPem: other.chainPem } }), issue: async (x) => json(200, { certificate: await forge(pki, x.csrPem, { signer: other.issuing }) }) }, 'renew');
    const front = await startFront({ labOrgUrl: lab.orgUrl, rootCaPem: lab.rootCaPem, tls, behaviour });
    fronts.push(front);
    const user = copyOfSnapshot();
    const r1 = await runAgent(['run', `caRolloverFingerprints=${fp}`], profileEnv(user, front.url, path.join(user.home, 'syslog.txt')), { timeoutMs: 180_000 });
    assert.equal(r1.code, 30, r1.stderr);
    assert.match(r1.stderr, /caRolloverFingerprints in the managed configuration/);
    const managed = copyOfSnapshot();
    const dir = managed.env.DTA_MANAGED_CONFIG_DIR!;
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'ca.json'), JSON.stringify({ caRolloverFingerprints: [fp] }));
    const r2 = await runAgent(['run', '--debug'], profileEnv(managed, front.url, path.join(managed.home, 'syslog.txt')), { timeoutMs: 180_000 });
    assert.equal(r2.code, 0, r2.stderr);
    assert.match(r2.stderr, /accepted as a CA pinned in managed configuration/);
  });

  test('every output sink is free of planted secrets and raw control characters', async () => {
    // A profile whose last run quoted a hostile server: status, events, diagnose and the support bundle read it back.
    const hostile = await startFront({ labOrgUrl: lab.orgUrl, rootCaPem: lab.rootCaPem, tls, behaviour: inPhase({ issue: () => orgError(403, `${HOSTILE_TEXT} ${SERVER_JWT} ${BEARER} https://u:${URL_PW}@x.example ${CHALLENGE}`) }, 'renew') });
    fronts.push(hostile);
    const p = copyOfSnapshot();
    const syslog = path.join(p.home, 'syslog.txt');
    const env = profileEnv(p, hostile.url, syslog);
    const runs: [string, AgentResult][] = [];
    for (const args of [['run'], ['run', '--json'], ['status'], ['status', '--json'], ['events'], ['events', '--json'], ['diagnose', '--json'], ['support-bundle', path.join(p.home, 'bundle.zip'), '--no-diagnose']]) {
      runs.push([args.join(' '), await runAgent(args, env, { timeoutMs: 120_000 })]);
    }
    assert.equal(runs[0]![1].code, 30, runs[0]![1].stderr);
    assert.match(runs[0]![1].stderr, /HTTP 403/);
    assert.equal(runs[7]![1].code, 0, runs[7]![1].stderr);
    const unzip = execFileSync('unzip', ['-p', path.join(p.home, 'bundle.zip')], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
    const sinks: { where: string; text: string }[] = [
      ...runs.flatMap(([a, r]) => [{ where: `${a} stdout`, text: r.stdout }, { where: `${a} stderr`, text: r.stderr }]),
      { where: 'state.json', text: stateText(p) },
      { where: 'events.jsonl', text: eventsText(p) },
      { where: 'support bundle', text: unzip },
      ...(fs.existsSync(syslog) ? [{ where: 'syslog', text: fs.readFileSync(syslog, 'utf8') }] : []),
      ...outputs,
      ...profiles.flatMap((q) => ['state.json', 'events.jsonl', '../../../syslog.txt'].map((f) => path.join(q.stateDir, f)).filter((f) => fs.existsSync(f)).map((f) => ({ where: f, text: fs.readFileSync(f, 'utf8') }))),
    ];
    assert.ok(fs.existsSync(syslog) && fs.readFileSync(syslog, 'utf8').includes('device-trust-agent'), 'the platform log received the events');
    for (const s of sinks) {
      for (const secret of SECRETS) assert.ok(!s.text.includes(secret), `${s.where} contains the planted secret ${secret.slice(0, 14)}…`);
      assert.doesNotMatch(s.text, RAW_CONTROL, `${s.where} contains a raw control character`);
      // Parsed JSON must not hand a control character back either.
      for (const line of s.text.split('\n')) {
        if (!/^\s*[{[]/.test(line)) continue;
        try {
          assert.doesNotMatch(JSON.stringify(JSON.parse(line)).replace(/\\\\/g, ''), /\\u00(1b|07|9b)/i, `${s.where}: a parsed value holds a control character`);
        } catch (e) {
          if (e instanceof assert.AssertionError) throw e;
        }
      }
    }
    const diag = JSON.parse(runs[6]![1].stdout);
    assert.ok(JSON.stringify(diag).includes('HTTP 403'), 'diagnose --json still reports the last run');
  });
});

/** A TLS server certificate from the lab root for a name that is not the one the agent connects to. */
async function serverCredentials(pki: LabPki, name: string): Promise<{ cert: string; key: string }> {
  const keys = (await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(), subject: `CN=${name}`, issuer: pki.root.cert.subject,
    notBefore: new Date(Date.now() - 60_000), notAfter: new Date(Date.now() + 30 * DAY),
    publicKey: keys.publicKey, signingKey: pki.root.privateKey, signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
    extensions: [new x509.BasicConstraintsExtension(false, undefined, true), new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]), new x509.SubjectAlternativeNameExtension([{ type: 'dns', value: name }])],
  });
  const der = await webcrypto.subtle.exportKey('pkcs8', keys.privateKey);
  return { cert: cert.toString('pem'), key: x509.PemConverter.encode(der, 'PRIVATE KEY') };
}
