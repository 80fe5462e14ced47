/**
 * The SCEP backend against a real, independent SCEP CA: Debian's scepserver (micromdm), started on loopback.
 * The agent's real command line enrolls, the certificate lands in a real NSS database, and headless Chromium
 * presents it to an mTLS server that trusts only the SCEP CA.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { LabPki } from '../../lab/ca.js';
import { loadConfig } from '../../src-main/core/config.js';
import { diagnoseScep } from '../../src-main/core/scep/diagnose.js';
import { makeProfile, type Profile, runAgent, tempDir, writeRootCa } from '../support/agent.js';
import { chromiumPageText, chromiumUnavailable } from '../support/chromium.js';
import { failingPk12util, nssKeyCount, nssTrustRoot, nssUserCerts } from '../support/nss.js';
import { filesWithPrivateKeys, nssPrivateKeyFacts } from '../support/keyscan.js';
import { faketimeEnv } from '../support/faketime.js';
import { initDepot, scepUnavailable, startMtlsServer, startRecordingProxy, startScepServer, type MtlsServer, type ScepServer } from '../support/scep.js';
import { eventsText, readEvents, readState } from '../support/state.js';

const skipReason = scepUnavailable();
if (skipReason) console.log(`# scep ${skipReason}`);

const CHALLENGE = 'correct-horse-battery-staple';

describe('SCEP backend against a real scepserver (micromdm), NSS and Chromium', { skip: skipReason }, () => {
  let server: ScepServer;
  let mtls: MtlsServer;
  let tlsRootFile: string;
  let profile: Profile;

  const credentialDirs = (p: Profile) => (fs.existsSync(path.join(p.stateDir, 'credentials')) ? fs.readdirSync(path.join(p.stateDir, 'credentials')) : []);
  /** A fresh user profile configured for SCEP through the environment. */
  const scepProfile = (env: Record<string, string>) => makeProfile({
    orgUrl: 'https://unused.invalid', rootCaFile: tlsRootFile,
    extraEnv: { DTA_BACKEND: 'scep', DTA_SCEP_URL: server.url, DTA_SCEP_CA_FINGERPRINT: server.caFingerprint, DTA_SCEP_CHALLENGE: CHALLENGE, ...env },
  });

  before(async () => {
    server = await startScepServer({ challenge: CHALLENGE });
    const pki = await LabPki.create();
    tlsRootFile = writeRootCa(pki.rootCaPem);
    mtls = await startMtlsServer({ tls: await pki.serverTlsCredentials(), clientCaPem: server.caPem });
    profile = makeProfile({ orgUrl: 'https://unused.invalid', rootCaFile: tlsRootFile });
    // Configured through the user's config file (owner-only: it holds the challenge), fingerprint as admins write it.
    const configDir = path.join(profile.home, '.config', 'device-trust-agent');
    fs.mkdirSync(configDir, { recursive: true });
    fs.writeFileSync(path.join(configDir, 'config.json'), JSON.stringify({
      backend: 'scep',
      scepUrl: server.url,
      scepChallenge: CHALLENGE,
      scepCaFingerprint: server.caFingerprint.toUpperCase().match(/../g)!.join(':'),
      scepHostPatterns: [new URL(mtls.url).origin],
    }), { mode: 0o600 });
  });

  after(async () => {
    await mtls?.close();
    await server?.close();
  });

  test('run enrolls over SCEP: one certificate from the SCEP CA in NSS, event 1000, browser policy naming the CA', async () => {
    const r = await runAgent(['run', '--debug'], profile.env);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.match(r.stdout, /Certificate enrolled/);
    assert.ok(!r.stderr.includes(CHALLENGE) && !r.stdout.includes(CHALLENGE), 'the challenge password never appears in the output');
    assert.match(r.stderr, /scepChallenge = "\[redacted\]"/);
    assert.match(r.stderr, /SCEP algorithms: SHA256, AES-128-CBC, POST/);
    const certs = nssUserCerts(profile.nssDb);
    assert.equal(certs.length, 1);
    assert.match(certs[0]!.issuer, /O=scep-ca/);
    assert.equal(nssKeyCount(profile.nssDb), 1);
    const state = readState(profile);
    assert.equal(state.current.serialNumber, certs[0]!.serial);
    assert.match(certs[0]!.subject, new RegExp(`CN=${state.deviceId}`));
    assert.ok(readEvents(profile).some((e) => e.id === 1000));
    // The RSA key was made in the NSS software token and signs and decrypts there: no key file, nothing readable.
    const cred = path.join(profile.stateDir, 'credentials', state.current.thumbprint);
    assert.ok(!fs.existsSync(path.join(cred, 'key.pem')), 'no key.pem for SCEP');
    assert.match(JSON.parse(fs.readFileSync(path.join(cred, 'key-ref.json'), 'utf8')).storeId, /^[0-9a-f]{40}$/);
    assert.deepEqual(nssPrivateKeyFacts(profile.nssDb).map((f) => [f.sensitive, f.extractable, f.valueReadable]), [[true, false, false]]);
    assert.deepEqual(filesWithPrivateKeys([profile.home]), []);
    // The CA's own records: scepserver filed the certificate under the device's CN.
    assert.match(fs.readFileSync(path.join(server.depot, 'index.txt'), 'utf8'), new RegExp(`CN=${state.deviceId}`));
    assert.match(server.log(), /PKCSReq \(19\)/);
    // micromdm's CA has no CN: the policy names it by O and OU, and the host patterns come from the configuration.
    const policy = JSON.parse(fs.readFileSync(path.join(profile.policyDir, 'device-trust-agent.json'), 'utf8'));
    assert.deepEqual(policy.AutoSelectCertificateForUrls.map((e: string) => JSON.parse(e)),
      [{ pattern: new URL(mtls.url).origin, filter: { ISSUER: { O: 'scep-ca', OU: 'SCEP CA' } } }]);
  });

  test('headless Chromium presents the SCEP certificate to an mTLS server that trusts only the SCEP CA', async (t) => {
    const why = chromiumUnavailable();
    if (why) {
      t.diagnostic(why);
      t.skip(why);
      return;
    }
    nssTrustRoot(profile.nssDb, tlsRootFile);
    const verdict = JSON.parse(await chromiumPageText(mtls.url, { home: profile.home, chromiumEtc: profile.chromiumEtc }));
    assert.equal(verdict.trusted, true, JSON.stringify(verdict));
    assert.equal(verdict.subject, readState(profile).deviceId);
    assert.equal(verdict.serialNumber, readState(profile).current.serialNumber);
  });

  test('negative control: a policy naming another issuer O makes Chromium withhold the certificate', async (t) => {
    const why = chromiumUnavailable();
    if (why) {
      t.skip(why);
      return;
    }
    const otherEtc = path.join(tempDir('etc'), 'chromium');
    fs.mkdirSync(path.join(otherEtc, 'policies', 'managed'), { recursive: true });
    fs.writeFileSync(path.join(otherEtc, 'policies', 'managed', 'device-trust-agent.json'), JSON.stringify({
      AutoSelectCertificateForUrls: [JSON.stringify({ pattern: new URL(mtls.url).origin, filter: { ISSUER: { O: 'another-ca', OU: 'SCEP CA' } } })],
    }));
    const text = await chromiumPageText(mtls.url, { home: profile.home, chromiumEtc: otherEtc, timeoutMs: 10_000 }).catch((e: Error) => e.message);
    assert.ok(!/"trusted":\s*true/.test(text), `certificate was presented to a filter naming another issuer: ${text}`);
  });

  test('a second run asks the CA nothing but GetCACert/GetCACaps and says the device is enrolled', async () => {
    const before = server.count('PKIOperation');
    const r = await runAgent(['run'], profile.env);
    assert.equal(r.code, 10, r.stderr + r.stdout);
    assert.equal(server.count('PKIOperation'), before);
    const s = JSON.parse((await runAgent(['status', '--check', '--json'], profile.env)).stdout);
    assert.equal(s.state, 'ENROLLED');
    assert.equal(s.backend, 'scep');
    assert.equal(s.checks.ca.ok, true, s.checks.ca.detail);
    assert.match(s.checks.ca.detail, /matches the pinned fingerprint/);
    assert.equal(server.count('PKIOperation'), before, 'status --check sends no request');
  });

  test('a wrong challenge: the CA\'s failure in words, exit 30, nothing installed and no key left behind', async () => {
    const p = scepProfile({ DTA_SCEP_CHALLENGE: 'wrong-challenge' });
    const r = await runAgent(['run'], p.env);
    assert.equal(r.code, 30, r.stderr + r.stdout);
    assert.match(r.stderr, /rejected the PKCSReq request/);
    assert.match(r.stderr, /badRequest/);
    assert.match(r.stderr, /wrong or expired challenge password/);
    assert.match(r.stderr, /What to do: Check scepChallenge/);
    assert.ok(!r.stderr.includes('wrong-challenge'));
    assert.deepEqual(nssUserCerts(p.nssDb), []);
    assert.deepEqual(credentialDirs(p), []);
    assert.equal(readState(p).current, undefined);
    assert.match(server.log(), /invalid challenge/);

    // Diagnostics read the CA live (without sending a request) and the last answer from the state.
    const pki = server.count('PKIOperation');
    const d = await diagnoseScep(loadConfig({ env: p.env }), {});
    const titles = d.findings.map((f) => `${f.severity}: ${f.title}`);
    assert.ok(titles.includes('ok: The SCEP CA is reachable'), titles.join('\n'));
    assert.ok(titles.includes('ok: The CA certificate matches the pinned fingerprint'), titles.join('\n'));
    assert.ok(titles.includes('ok: The SCEP CA offers strong algorithms'), titles.join('\n'));
    assert.ok(titles.some((t) => /^error: The CA rejected the last request \(badRequest\): most often a wrong or expired challenge/.test(t)), titles.join('\n'));
    assert.equal(d.ca?.sha256, server.caFingerprint);
    assert.ok(d.capabilities?.includes('POSTPKIOperation'));
    assert.equal(server.count('PKIOperation'), pki, 'diagnostics never send a PKIOperation');
  });

  test('a CA issuing 20-year certificates: refused (CERT_LIFETIME_TOO_LONG, exit 30, nothing installed); accepted once scepMaxValidityDays allows it', async () => {
    const longLived = await startScepServer({ challenge: CHALLENGE, validityDays: 7300 });
    try {
      const p = scepProfile({ DTA_SCEP_URL: longLived.url, DTA_SCEP_CA_FINGERPRINT: longLived.caFingerprint });
      const r = await runAgent(['run'], p.env);
      assert.equal(r.code, 30, r.stderr + r.stdout);
      assert.match(r.stderr, /valid for 730\d days .*longer than the 366 days scepMaxValidityDays allows/);
      assert.match(r.stderr, /Nothing was installed/);
      assert.match(r.stderr, /What to do: \S/);
      assert.deepEqual(nssUserCerts(p.nssDb), []);
      assert.deepEqual(credentialDirs(p), []);
      assert.ok(eventsText(p).includes('"code":"CERT_LIFETIME_TOO_LONG"'));
      // Another device (the CA keeps one certificate per name): the admin's setting lets the long certificate in.
      const q = scepProfile({ DTA_SCEP_URL: longLived.url, DTA_SCEP_CA_FINGERPRINT: longLived.caFingerprint, DTA_SCEP_MAX_VALIDITY_DAYS: '7305' });
      const allowed = await runAgent(['run'], q.env);
      assert.equal(allowed.code, 0, allowed.stderr + allowed.stdout);
      assert.equal(nssUserCerts(q.nssDb).length, 1);
    } finally {
      await longLived.close();
    }
  });

  test('an RSA-1024 SCEP CA is refused before any PKIOperation (CA_WEAK_CRYPTO, exit 30)', async () => {
    const weak = await startScepServer({ challenge: CHALLENGE, depot: initDepot(undefined, 1024).depot });
    try {
      const p = scepProfile({ DTA_SCEP_URL: weak.url, DTA_SCEP_CA_FINGERPRINT: weak.caFingerprint });
      const r = await runAgent(['run'], p.env);
      assert.equal(r.code, 30, r.stderr + r.stdout);
      assert.match(r.stderr, /names a certificate authority below the agent's floor .*an RSA key of 1024 bits/);
      assert.match(r.stderr, /Nothing was requested or installed/);
      assert.equal(weak.count('PKIOperation'), 0, 'no request was sent');
      assert.deepEqual(nssUserCerts(p.nssDb), []);
    } finally {
      await weak.close();
    }
  });

  test('a CA whose fingerprint does not match the pin is refused before any other request reaches it', async () => {
    const other = initDepot();
    const p = scepProfile({ DTA_SCEP_CA_FINGERPRINT: other.caFingerprint });
    const counts = () => ({ cert: server.count('GetCACert'), caps: server.count('GetCACaps'), pki: server.count('PKIOperation') });
    const before = counts();
    const r = await runAgent(['run'], p.env);
    assert.equal(r.code, 30, r.stderr + r.stdout);
    assert.match(r.stderr, /does not match the configured scepCaFingerprint/);
    assert.match(r.stderr, new RegExp(server.caFingerprint.slice(0, 2).toUpperCase()));
    const after = counts();
    assert.deepEqual({ cert: after.cert - before.cert, caps: after.caps - before.caps, pki: after.pki - before.pki }, { cert: 1, caps: 0, pki: 0 },
      'only GetCACert was sent');
    assert.deepEqual(nssUserCerts(p.nssDb), []);
    assert.deepEqual(credentialDirs(p), []);
    const d = await diagnoseScep(loadConfig({ env: p.env }), {});
    const mismatch = d.findings.find((f) => /CA certificate mismatch/.test(f.title));
    assert.ok(mismatch && mismatch.severity === 'error', JSON.stringify(d.findings));
    assert.match(mismatch.evidence, new RegExp(server.caFingerprint.slice(0, 8).toUpperCase().match(/../g)!.join(':')));
    assert.ok(mismatch.cause && mismatch.remedy);
  });

  test('a CA that does not advertise POSTPKIOperation is asked with GET (and still issues)', async () => {
    const proxy = await startRecordingProxy(server.url, { rewriteCaps: (c) => c.split('\n').filter((l) => !/^(POSTPKIOperation|SCEPStandard)$/.test(l.trim())).join('\n') });
    try {
      const p = scepProfile({ DTA_SCEP_URL: proxy.url });
      const r = await runAgent(['run', '--debug'], p.env);
      assert.equal(r.code, 0, r.stderr + r.stdout);
      assert.match(r.stderr, /SCEP algorithms: SHA256, AES-128-CBC, GET/);
      assert.deepEqual(proxy.requests, ['GET GetCACert', 'GET GetCACaps', 'GET PKIOperation']);
      assert.equal(nssUserCerts(p.nssDb).length, 1);
    } finally {
      await proxy.close();
    }
  });

  test('a CA offering only SHA-1 and 3DES is refused before the request is sent, and accepted with scepAllowWeak', async () => {
    const proxy = await startRecordingProxy(server.url, { rewriteCaps: () => 'Renewal\nSHA-1\nDES3\nPOSTPKIOperation\n' });
    try {
      const p = scepProfile({ DTA_SCEP_URL: proxy.url });
      const r = await runAgent(['run'], p.env);
      assert.equal(r.code, 78, r.stderr + r.stdout);
      assert.match(r.stderr, /does not offer SHA-256/);
      assert.match(r.stderr, /scepAllowWeak/);
      assert.ok(!proxy.requests.some((q) => /PKIOperation/.test(q)), proxy.requests.join(', '));
      assert.deepEqual(nssUserCerts(p.nssDb), []);

      const weak = await runAgent(['run', '--debug'], { ...p.env, DTA_SCEP_ALLOW_WEAK: 'true' });
      assert.equal(weak.code, 0, weak.stderr + weak.stdout);
      assert.match(weak.stderr, /SCEP algorithms: SHA1, DES-EDE3-CBC, POST; WEAK \(allowed by scepAllowWeak\): SHA-1, 3DES/);
      assert.equal(nssUserCerts(p.nssDb).length, 1);
      // With nothing to request, the algorithm policy does not fail the run.
      const idle = await runAgent(['run'], p.env);
      assert.equal(idle.code, 10, idle.stderr + idle.stdout);
    } finally {
      await proxy.close();
    }
  });
});

describe('SCEP renewal inside the CA\'s -allowrenew window', { skip: skipReason }, () => {
  let server: ScepServer;
  let p: Profile;

  before(async () => {
    // One-day certificates, renewable from two days before expiry: every certificate is inside the window.
    server = await startScepServer({ challenge: CHALLENGE, validityDays: 1, allowRenewDays: 2 });
    p = makeProfile({
      orgUrl: 'https://unused.invalid', rootCaFile: '/dev/null',
      extraEnv: { DTA_BACKEND: 'scep', DTA_SCEP_URL: server.url, DTA_SCEP_CA_FINGERPRINT: server.caFingerprint, DTA_SCEP_CHALLENGE: CHALLENGE, DTA_SCEP_RENEWAL_WINDOW_DAYS: '2' },
    });
    const r = await runAgent(['run'], p.env);
    assert.equal(r.code, 0, r.stderr + r.stdout);
  });

  after(() => server?.close());

  test('a certificate inside the window is renewed with RenewalReq signed by the current certificate, replaced atomically', async () => {
    const old = readState(p).current;
    // One-day certificates with a two-day window: the window is clamped to 8 h (renewal-window.ts), so the clock is 17 h on.
    const r = await runAgent(['run'], { ...p.env, ...faketimeEnv('+17h') });
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.match(r.stdout, /Certificate renewed/);
    assert.match(server.log(), /RenewalReq \(17\)/);
    const certs = nssUserCerts(p.nssDb);
    assert.equal(certs.length, 1, 'exactly one certificate after renewal');
    assert.notEqual(certs[0]!.serial, old.serialNumber);
    assert.equal(nssKeyCount(p.nssDb), 1, 'the old key left with the old certificate');
    const now = readState(p).current;
    assert.equal(now.how, 'renewed');
    assert.equal(now.serialNumber, certs[0]!.serial);
    assert.deepEqual(fs.readdirSync(path.join(p.stateDir, 'credentials')), [now.thumbprint]);
    assert.ok(eventsText(p).includes('"id":1001'));
    // RenewalReq was signed by the old key and the answer decrypted by the new one, both inside the token.
    assert.ok(!fs.existsSync(path.join(p.stateDir, 'credentials', now.thumbprint, 'key.pem')), 'no key.pem after renewal');
    assert.deepEqual(filesWithPrivateKeys([p.home]), []);
  });

  test('a renewal answered with a 20-year certificate is refused (CERT_LIFETIME_TOO_LONG); the previous certificate stays', async () => {
    const before = readState(p).current;
    // The same CA (a copy of its depot: what it issues here must not count against the next test's renewal).
    const depot = path.join(tempDir('scep-depot-copy'), 'depot');
    fs.cpSync(server.depot, depot, { recursive: true });
    const longLived = await startScepServer({ depot, challenge: CHALLENGE, validityDays: 7300, allowRenewDays: 7400 });
    try {
      const r = await runAgent(['run'], { ...p.env, DTA_SCEP_URL: longLived.url, ...faketimeEnv('+17h') });
      assert.equal(r.code, 30, r.stderr + r.stdout);
      assert.match(longLived.log(), /RenewalReq \(17\)/);
      assert.match(r.stderr, /longer than the 366 days scepMaxValidityDays allows/);
      assert.deepEqual(nssUserCerts(p.nssDb).map((c) => c.serial), [before.serialNumber]);
      assert.equal(readState(p).current.serialNumber, before.serialNumber);
      assert.deepEqual(fs.readdirSync(path.join(p.stateDir, 'credentials')), [before.thumbprint]);
    } finally {
      await longLived.close();
    }
  });

  test('if the store fails while swapping in the renewed certificate, the previous one is put back at once', async () => {
    const before = readState(p).current;
    const r = await runAgent(['run'], { ...p.env, ...failingPk12util('once'), ...faketimeEnv('+17h') });
    assert.equal(r.code, 40, r.stderr + r.stdout);
    assert.match(r.stderr, /No space left/);
    assert.deepEqual(nssUserCerts(p.nssDb).map((c) => c.serial), [before.serialNumber]);
    assert.equal(readState(p).current.serialNumber, before.serialNumber);
    assert.deepEqual(fs.readdirSync(path.join(p.stateDir, 'credentials')), [before.thumbprint]);
    const again = await runAgent(['run'], { ...p.env, ...faketimeEnv('+17h') });
    assert.equal(again.code, 0, again.stderr + again.stdout);
    assert.equal(nssUserCerts(p.nssDb).length, 1);
  });
});

describe('SCEP: a CA policy (-csrverifierexec) that rejects the request', { skip: skipReason }, () => {
  let server: ScepServer;
  let calls: string;

  before(async () => {
    const dir = tempDir('verifier');
    calls = path.join(dir, 'calls');
    const script = path.join(dir, 'reject.sh');
    fs.writeFileSync(script, `#!/bin/sh\ncat >/dev/null\necho call >> "${calls}"\nexit 1\n`, { mode: 0o755 });
    server = await startScepServer({ challenge: CHALLENGE, csrVerifierExec: script });
  });

  after(() => server?.close());

  test('a clear rejection, state REJECTED, exit 30, and the next run does not resend the request', async () => {
    const p = makeProfile({
      orgUrl: 'https://unused.invalid', rootCaFile: '/dev/null',
      extraEnv: { DTA_BACKEND: 'scep', DTA_SCEP_URL: server.url, DTA_SCEP_CA_FINGERPRINT: server.caFingerprint, DTA_SCEP_CHALLENGE: CHALLENGE },
    });
    const verifierCalls = () => (fs.existsSync(calls) ? fs.readFileSync(calls, 'utf8').trim().split('\n').length : 0);
    const r = await runAgent(['run'], p.env);
    assert.equal(r.code, 30, r.stderr + r.stdout);
    assert.match(r.stderr, /rejected the PKCSReq request/);
    assert.match(r.stderr, /badRequest/);
    assert.equal(verifierCalls(), 1);
    assert.deepEqual(nssUserCerts(p.nssDb), []);

    const status = await runAgent(['status', '--json'], p.env);
    assert.equal(status.code, 30);
    assert.equal(JSON.parse(status.stdout).state, 'REJECTED');

    const pkiBefore = server.count('PKIOperation');
    const again = await runAgent(['run'], p.env);
    assert.equal(again.code, 30, again.stderr + again.stdout);
    assert.match(again.stderr, /does not send the same request again before/);
    assert.equal(server.count('PKIOperation'), pkiBefore, 'no PKIOperation on the second run');
    assert.equal(verifierCalls(), 1, 'the CA policy was not asked again');
    assert.ok(eventsText(p).includes('"id":2002'));

    // state.json keeps only a keyed hash of the settings (the challenge cannot be guessed offline from it); one an
    // earlier version wrote (unkeyed SHA-256) is migrated: the hold stays, nothing is resent.
    const statePath = path.join(p.stateDir, 'state.json');
    const cfg = loadConfig({ env: p.env }).config;
    const unkeyed = crypto.createHash('sha256').update(['scep', cfg.scepUrl, cfg.scepCaFingerprint, CHALLENGE].join('\n')).digest('hex');
    const st = JSON.parse(fs.readFileSync(statePath, 'utf8')) as { hold: { requestIdentity: string } };
    assert.match(st.hold.requestIdentity, /^hmac-sha256:[0-9a-f]{64}$/);
    assert.ok(!fs.readFileSync(statePath, 'utf8').includes(unkeyed));
    assert.equal(fs.statSync(path.join(p.stateDir, 'settings-hash.key')).mode & 0o777, 0o600);
    st.hold.requestIdentity = unkeyed;
    fs.writeFileSync(statePath, JSON.stringify(st));
    const migrated = await runAgent(['run'], p.env);
    assert.equal(migrated.code, 30, migrated.stderr);
    assert.match(migrated.stderr, /does not send the same request again before/);
    assert.equal(server.count('PKIOperation'), pkiBefore, 'the migrated hold still holds');
    assert.match((JSON.parse(fs.readFileSync(statePath, 'utf8')) as typeof st).hold.requestIdentity, /^hmac-sha256:/, 'rewritten keyed');

    // A changed setting (here the challenge) is a different request: the hold does not apply to it.
    const changed = await runAgent(['run'], { ...p.env, DTA_SCEP_CHALLENGE: `${CHALLENGE}-new` });
    assert.equal(changed.code, 30);
    assert.match(changed.stderr, /rejected the PKCSReq request/);
    assert.equal(server.count('PKIOperation'), pkiBefore + 1);
  });
});
