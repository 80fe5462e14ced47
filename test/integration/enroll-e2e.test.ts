/**
 * The vertical slice, end to end with real parts: a real MIT Kerberos KDC, the lab org speaking HTTP
 * Negotiate over real TLS on loopback, the agent's real command line, a real NSS database, and headless
 * Chromium presenting the enrolled certificate to the lab's mTLS endpoint.
 */
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { kerberosToolsAvailable, type Kdc } from '../../lab/kdc.js';
import { startKerberosLab } from '../support/kerberos-lab.js';
import type { LabOrg } from '../../lab/org.js';
import { makeProfile, runAgent, tempDir, type Profile } from '../support/agent.js';
import { chromiumPageText, chromiumUnavailable } from '../support/chromium.js';
import { nssKeyCount, nssTrustRoot, nssUserCerts } from '../support/nss.js';
import { filesWithPrivateKeys, nssPrivateKeyFacts } from '../support/keyscan.js';
import { readEvents, readState } from '../support/state.js';

const skipReason = kerberosToolsAvailable() ? undefined : 'skipped: MIT Kerberos is not installed (apt install krb5-kdc krb5-admin-server krb5-user)';
if (skipReason) console.log(`# enroll-e2e ${skipReason}`);

describe('enrollment end to end (real KDC, lab org, NSS, Chromium)', { skip: skipReason }, () => {
  let kdc: Kdc;
  let lab: LabOrg;
  let rootCaFile: string;
  let agentEnv: Record<string, string>;
  let profile: Profile;
  const keysSeen: string[] = [];

  const run = (args: string[], p: Profile = profile) => runAgent(args, { ...agentEnv, ...p.env });
  /** The key-store reference the agent keeps for the current key (never the key itself). */
  const currentKeyRef = (p: Profile = profile) => JSON.parse(fs.readFileSync(path.join(p.stateDir, 'credentials', readState(p).current.thumbprint, 'key-ref.json'), 'utf8')).storeId as string;

  before(async () => {
    ({ kdc, lab, rootCaFile, agentEnv } = await startKerberosLab());
    profile = makeProfile({ orgUrl: lab.orgUrl, rootCaFile });
  });

  after(async () => {
    await lab?.close();
    await kdc?.stop();
  });

  test('run --user enrolls: certificate and key in the NSS database, event 1000, browser policy written', async () => {
    const r = await run(['run', '--user']);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.match(r.stdout, /Certificate enrolled/);
    const certs = nssUserCerts(profile.nssDb);
    assert.equal(certs.length, 1);
    assert.match(certs[0]!.issuer, /CN=MTLS Certificate Authority/);
    assert.equal(nssKeyCount(profile.nssDb), 1);
    const state = readState(profile);
    assert.equal(state.current.serialNumber, certs[0]!.serial);
    assert.match(certs[0]!.subject, new RegExp(`CN=${state.deviceId}`));
    const credDir = path.join(profile.stateDir, 'credentials', state.current.thumbprint);
    assert.ok(!fs.existsSync(path.join(credDir, 'key.pem')), 'no key file: the key was generated inside the NSS token');
    assert.equal(fs.statSync(path.join(credDir, 'key-ref.json')).mode & 0o777, 0o600, 'the key reference is owner-only');
    const facts = nssPrivateKeyFacts(profile.nssDb);
    assert.equal(facts.length, 1);
    assert.deepEqual({ ...facts[0], id: undefined }, { id: undefined, sensitive: true, extractable: false, valueReadable: false }, 'the token keeps the key sensitive and non-extractable');
    assert.equal(facts[0]!.id, currentKeyRef(), 'the certificate sits beside its key (same CKA_ID)');
    for (const f of ['cert9.db', 'key4.db']) assert.equal(fs.statSync(path.join(profile.nssDb, f)).mode & 0o077, 0, `${f} is owner-only`);
    assert.ok(readEvents(profile).some((e) => e.id === 1000), 'event 1000 recorded');
    const policy = JSON.parse(fs.readFileSync(path.join(profile.policyDir, 'device-trust-agent.json'), 'utf8'));
    assert.equal(policy.AutoSelectCertificateForUrls.length, 1);
    const issued = lab.issued().find((i) => i.serialNumber === state.current.serialNumber);
    assert.ok(issued, 'the lab issued this serial');
    assert.equal(issued.deviceId, state.deviceId);
    keysSeen.push(currentKeyRef());
  });

  test('headless Chromium, with the policy the agent wrote, presents the certificate and the mTLS endpoint trusts this device', async (t) => {
    const why = chromiumUnavailable();
    if (why) {
      t.diagnostic(why);
      t.skip(why);
      return;
    }
    nssTrustRoot(profile.nssDb, rootCaFile);
    const text = await chromiumPageText(lab.mtlsUrl, { home: profile.home, chromiumEtc: profile.chromiumEtc });
    const verdict = JSON.parse(text);
    assert.equal(verdict.trusted, true, text);
    assert.equal(verdict.deviceId, readState(profile).deviceId);
    assert.equal(verdict.serialNumber, readState(profile).current.serialNumber);
  });

  test('negative control: without the policy Chromium does not present the certificate', async (t) => {
    const why = chromiumUnavailable();
    if (why) {
      t.skip(why);
      return;
    }
    const emptyEtc = path.join(tempDir('etc'), 'chromium');
    fs.mkdirSync(emptyEtc, { recursive: true });
    const text = await chromiumPageText(lab.mtlsUrl, { home: profile.home, chromiumEtc: emptyEtc, timeoutMs: 10_000 }).catch((e: Error) => e.message);
    assert.ok(!/"trusted":\s*true/.test(text), `certificate was presented without the policy: ${text}`);
  });

  test('a second run is a no-op and says the device is enrolled', async () => {
    const before = readState(profile).current.serialNumber;
    const r = await run(['run']);
    assert.equal(r.code, 10, r.stderr + r.stdout);
    assert.match(r.stdout, /enrolled/);
    assert.equal(readState(profile).current.serialNumber, before);
    assert.equal(nssUserCerts(profile.nssDb).length, 1);
  });

  test('status --check reports the key protection (software token, and why) and revocation', async () => {
    const r = await run(['status', '--check', '--json']);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const s = JSON.parse(r.stdout);
    assert.equal(s.state, 'ENROLLED');
    assert.equal(s.keyProtection.protection, 'software');
    assert.match(s.keyProtection.reason, /no TPM|tpm2-pkcs11/);
    // The key never leaves the token: the mTLS check presents it through openssl + libp11 in a child process.
    assert.equal(s.checks.mtls?.ok, true, JSON.stringify(s.checks.mtls));
    assert.equal(s.checks.revocation.ok, true);
    const text = await run(['status']);
    assert.match(text.stdout, /key: +software/);
  });

  test('--forceRenewal replaces the certificate: new serial, the old one and its key are gone', async () => {
    const old = readState(profile).current;
    const r = await run(['run', '--forceRenewal']);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const certs = nssUserCerts(profile.nssDb);
    assert.equal(certs.length, 1);
    assert.notEqual(certs[0]!.serial, old.serialNumber);
    assert.equal(nssKeyCount(profile.nssDb), 1, 'the old private key was removed with its certificate');
    assert.ok(!fs.existsSync(path.join(profile.stateDir, 'credentials', old.thumbprint)), 'the old credential record is gone');
    keysSeen.push(currentKeyRef());
  });

  test('a certificate revoked at the lab is reported (not replaced), and --forceRenewal fixes it', async () => {
    const revoked = readState(profile).current.serialNumber;
    lab.revoke(revoked);
    const r = await run(['run']);
    assert.equal(r.code, 30, r.stderr + r.stdout);
    assert.match(r.stderr, /revoked/);
    assert.match(r.stderr, /--forceRenewal/);
    assert.equal(nssUserCerts(profile.nssDb)[0]!.serial, revoked, 'revocation does not remove the certificate');
    assert.ok(readEvents(profile).some((e) => e.id === 1100));
    const s = JSON.parse((await run(['status', '--check', '--json'])).stdout);
    assert.equal(s.state, 'REVOKED');

    const fixed = await run(['run', '--forceRenewal']);
    assert.equal(fixed.code, 0, fixed.stderr + fixed.stdout);
    const certs = nssUserCerts(profile.nssDb);
    assert.equal(certs.length, 1);
    assert.notEqual(certs[0]!.serial, revoked);
    assert.equal((await run(['run'])).code, 10);
    keysSeen.push(currentKeyRef());
  });

  test('a certificate inside its renewal window is renewed with the renewal token (no IWA), atomically', async () => {
    lab.switches.validitySeconds = 3600;
    lab.switches.renewalWindowSeconds = 3600; // in the window from the moment it is issued
    assert.equal((await run(['run', '--forceRenewal'])).code, 0);
    keysSeen.push(currentKeyRef());
    const short = readState(profile).current;
    const mark = lab.received.length;
    const r = await run(['run', '--debug']);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.match(r.stdout, /renewed/);
    const sent = lab.received.slice(mark).map((q) => `${q.method} ${new URL(q.url, 'https://x').pathname}`);
    assert.ok(sent.includes('POST /api/v1/device-trust/renew'), sent.join(', '));
    assert.ok(!sent.some((s) => /device-token|user-token/.test(s)), `renewal must not need IWA: ${sent.join(', ')}`);
    const certs = nssUserCerts(profile.nssDb);
    assert.equal(certs.length, 1, 'exactly one certificate after renewal');
    assert.notEqual(certs[0]!.serial, short.serialNumber);
    assert.equal(readState(profile).current.how, 'renewed');
    assert.ok(readEvents(profile).some((e) => e.id === 1001));
    keysSeen.push(currentKeyRef());
    lab.switches.validitySeconds = 365 * 86400;
    lab.switches.renewalWindowSeconds = 30 * 86400;
    assert.equal((await run(['run', '--forceRenewal'])).code, 0);
    keysSeen.push(currentKeyRef());
  });

  for (const tamper of ['malformed-json', 'other-key', 'wrong-issuer', 'expired', 'no-client-auth', 'other-device-id', 'foreign-san', 'long-validity', 'sha1-signature'] as const) {
    test(`a hostile enrollment answer (${tamper}) is refused and the previous certificate stays installed`, async () => {
      const before = readState(profile).current;
      lab.switches.tamper = tamper;
      try {
        const r = await run(['run', '--forceRenewal']);
        assert.equal(r.code, 30, r.stderr + r.stdout);
        const expected: Record<typeof tamper, RegExp> = {
          'malformed-json': /not JSON/,
          'other-key': /different key/,
          'wrong-issuer': /issued by/,
          expired: /expired/,
          'no-client-auth': /client authentication/,
          'other-device-id': /names the subject CN "[0-9a-f-]{36}", but this device asked for a certificate for its own ID/,
          'foreign-san': /subject alternative name dns:"login\.other-org\.example"/,
          'long-validity': /valid for 7300 days .*longer than the 365 days the org advertises/,
          'sha1-signature': /ECDSA with SHA-1 signature/,
        };
        assert.match(r.stderr, expected[tamper]);
      } finally {
        lab.switches.tamper = null;
      }
      const certs = nssUserCerts(profile.nssDb);
      assert.deepEqual(certs.map((c) => c.serial), [before.serialNumber]);
      assert.equal(readState(profile).current.serialNumber, before.serialNumber);
      assert.deepEqual(fs.readdirSync(path.join(profile.stateDir, 'credentials')), [before.thumbprint], 'no stray key files');
      // The forced renewal the user asked for was persisted; the next plain run (the org answers properly again)
      // completes it, and exactly one certificate remains.
      assert.equal((await run(['run'])).code, 0, 'the next run completes the requested forced renewal');
      const now = readState(profile).current.serialNumber;
      assert.notEqual(now, before.serialNumber);
      assert.deepEqual(nssUserCerts(profile.nssDb).map((c) => c.serial), [now]);
    });
  }

  test('read-only org: a clear message, the retry-later exit code, nothing changed on disk', async () => {
    const snapshot = () => ({
      certs: nssUserCerts(profile.nssDb),
      current: readState(profile).current,
      creds: fs.readdirSync(path.join(profile.stateDir, 'credentials')),
    });
    const fresh = makeProfile({ orgUrl: lab.orgUrl, rootCaFile });
    const before = snapshot();
    lab.switches.readOnly = true;
    try {
      const r = await run(['run', '--forceRenewal']);
      assert.equal(r.code, 20, r.stderr + r.stdout);
      assert.match(r.stderr, /read-only/);
      assert.deepEqual(snapshot(), before);
      const r2 = await run(['run'], fresh);
      assert.equal(r2.code, 20);
      assert.deepEqual(nssUserCerts(fresh.nssDb), []);
      assert.ok(!fs.existsSync(path.join(fresh.stateDir, 'credentials')) || fs.readdirSync(path.join(fresh.stateDir, 'credentials')).length === 0);
    } finally {
      lab.switches.readOnly = false;
    }
    assert.ok(readEvents(profile).some((e) => e.id === 2001));
  });

  test('no private key material in any file of the profile, state or temp directories; only the token holds keys', () => {
    assert.ok(keysSeen.length >= 5 && new Set(keysSeen).size === keysSeen.length, 'every enrollment made a new key in the token');
    assert.deepEqual(filesWithPrivateKeys([profile.home, profile.stateDir, os.tmpdir() === profile.home ? profile.home : path.join(profile.stateDir, 'tmp')]), []);
    const facts = nssPrivateKeyFacts(profile.nssDb);
    assert.equal(facts.length, 1, 'old keys left the token with their certificates');
    assert.ok(facts.every((f) => f.sensitive && !f.extractable && !f.valueReadable));
    assert.ok(lab.received.some((r) => r.body.includes('BEGIN CERTIFICATE REQUEST')), 'CSRs were sent');
    const everything = lab.received.map((r) => r.body).join('\n');
    assert.ok(!/PRIVATE KEY/.test(everything));
  });
});
