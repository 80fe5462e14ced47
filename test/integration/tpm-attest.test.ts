/**
 * TPM key attestation end to end with real parts (docs/PROTOCOL.md §11): swtpm with EK certificates from its own
 * local vendor CA, tpm2-abrmd, tpm2-pkcs11 and the agent's tpm2-pytss helper; the lab org verifies the EK chain,
 * the credential activation, the TPM2_Certify over its nonce and the key; the agent shows its refusals with what
 * to do, and `status` and the dashboard say whether the key is attested. Forgeries: tpm-attest-lab.test.ts.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { kerberosToolsAvailable, type Kdc } from '../../lab/kdc.js';
import { startKerberosLab } from '../support/kerberos-lab.js';
import type { LabOrg } from '../../lab/org.js';
import { ATTESTED_KEY_POLICY_OID } from '../../lab/attestation.js';
import { x509 } from '../../lab/ca.js';
import { attestationPython } from '../../src-main/platform/tpm-attest.js';
import { makeProfile, runAgent, tempDir, type Profile } from '../support/agent.js';
import { filesWithPrivateKeys } from '../support/keyscan.js';
import { dashboardUnavailable, launchChromium, openDashboard } from '../support/dashboard.js';
import { softTpmEkCaPem, startSoftTpm, tpmUnavailable, type SoftTpm } from '../support/tpm.js';
import { readEvents, readState } from '../support/state.js';

const py = attestationPython();
const skipReason = tpmUnavailable()
  ?? (kerberosToolsAvailable() ? undefined : 'skipped: MIT Kerberos is not installed (apt install krb5-kdc krb5-admin-server krb5-user)')
  ?? ('reason' in py ? `skipped: ${py.reason}` : undefined);
if (skipReason) console.log(`# tpm-attest ${skipReason}`);

describe('TPM key attestation (swtpm EK certificate, AK, TPM2_Certify, lab verification)', { skip: skipReason }, () => {
  let kdc: Kdc;
  let lab: LabOrg;
  let tpm: SoftTpm;
  let ekCa: string;
  let rootCaFile: string;
  let agentEnv: Record<string, string>;
  let profile: Profile;

  const run = (args: string[], p: Profile = profile, extra: Record<string, string> = {}) => runAgent(args, { ...agentEnv, ...tpm.env, ...p.env, ...extra });
  const keyRef = (p: Profile = profile) => JSON.parse(fs.readFileSync(path.join(p.stateDir, 'credentials', readState(p).current.thumbprint, 'key-ref.json'), 'utf8')).storeId as string;
  const certOf = (p: Profile = profile) => fs.readFileSync(path.join(p.stateDir, 'credentials', readState(p).current.thumbprint, 'cert.pem'), 'utf8');
  const tpmStore = (p: Profile = profile) => path.join(p.home, '.tpm2_pkcs11');
  before(async () => {
    ekCa = path.join(tempDir('ekca'), 'ca');
    tpm = await startSoftTpm({ ekCa });
    ({ kdc, lab, rootCaFile, agentEnv } = await startKerberosLab({ trustedEkCaPem: softTpmEkCaPem(ekCa) }));
    Object.assign(process.env, tpm.env);
    profile = makeProfile({ orgUrl: lab.orgUrl, rootCaFile });
  });

  after(async () => {
    await lab?.close();
    await kdc?.stop();
    await tpm?.stop();
  });

  test('enrollment carries the attestation; the lab records it in the certificate and its mTLS answer; status says "tpm (attested)"', async () => {
    const mark = lab.received.length;
    const r = await run(['run', '--user']);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const sent = lab.received.slice(mark);
    assert.ok(sent.some((q) => q.url.endsWith('/api/v1/attestation/challenge')), 'the agent asked for a challenge');
    const enroll = JSON.parse(sent.find((q) => q.url.endsWith('/device-trust/enroll'))!.body);
    assert.match(enroll.attestation.challengeId, /^[0-9a-f]{32}$/);
    const cert = new x509.X509Certificate(certOf());
    assert.deepEqual([...(cert.getExtension(x509.CertificatePolicyExtension)?.policies ?? [])], [ATTESTED_KEY_POLICY_OID]);
    assert.equal(lab.judgeClientCertificate(certOf()).keyAttested, true);
    const s = JSON.parse((await run(['status', '--json'])).stdout);
    assert.equal(s.keyProtection.protection, 'tpm');
    assert.equal(s.keyProtection.label, 'tpm (attested)');
    assert.equal(s.keyProtection.attested, true);
    assert.match(s.keyProtection.attestation, /verified the TPM attestation/);
    assert.match((await run(['status'])).stdout, /key: +tpm \(attested\)/);
    assert.deepEqual(filesWithPrivateKeys([profile.home, profile.stateDir]), []);
  });

  test('the dashboard header shows "TPM (attested)" with why', async (t) => {
    const why = dashboardUnavailable();
    if (why) {
      t.skip(why);
      return;
    }
    // The dashboard's handlers run in this process: tpm2-pkcs11 reads its store from the environment when loaded.
    process.env.TPM2_PKCS11_STORE = tpmStore();
    const browser = await launchChromium();
    try {
      const h = await openDashboard(browser, { ...agentEnv, ...tpm.env, ...profile.env, TPM2_PKCS11_STORE: tpmStore() });
      const cell = h.page.getByTestId('key-protection');
      await cell.filter({ hasText: 'TPM (attested)' }).waitFor({ timeout: 20_000 }).catch(async (e: Error) => {
        throw new Error(`${e.message}\npage: ${(await h.page.locator('body').innerText()).slice(0, 1500)}`);
      });
      assert.match(await cell.innerText(), /TPM \(attested\) \(TPM 2\.0 via .*; attested: the org verified the TPM attestation/);
      const shot = path.join(tempDir('shots'), 'header-attested.png');
      await h.page.screenshot({ path: shot });
      assert.ok(fs.statSync(shot).size > 1000);
      console.log(`# dashboard header screenshot: ${shot}`);
    } finally {
      await browser.close();
    }
  });

  test('renewal (renewal token, no IWA) makes a new TPM key and attests it again, under the "attested keys only" policy', async () => {
    const before = keyRef();
    const mark = lab.received.length;
    lab.switches.requireAttestedKeys = true;
    // A renewal window longer than the validity: the certificate is due at once.
    lab.switches.renewalWindowSeconds = 400 * 86400;
    try {
      const r = await run(['run']);
      assert.equal(r.code, 0, r.stderr + r.stdout);
      assert.match(r.stdout, /renewed/);
    } finally {
      lab.switches.requireAttestedKeys = false;
      lab.switches.renewalWindowSeconds = 30 * 86400;
    }
    const renew = lab.received.slice(mark).find((q) => q.url.endsWith('/device-trust/renew'));
    assert.ok(renew && JSON.parse(renew.body).attestation, 'the renewal request carried an attestation');
    assert.notEqual(keyRef(), before, 'a new key');
    assert.equal(readState(profile).current.how, 'renewed');
    assert.equal(readState(profile).current.keyAttestation.attested, true);
    assert.equal(lab.judgeClientCertificate(certOf()).keyAttested, true);
    assert.ok(!readEvents(profile).some((e) => e.id === 1111), 'no protection change: attested before and after');
  });

  test('an EK certificate from a CA the org does not trust is refused with what to do; the previous certificate stays', async () => {
    const serial = readState(profile).current.serialNumber;
    const trusted = lab.attestation.trustedEkCaPem;
    // A vendor CA list without the swtpm local CA (the lab's own root stands in for another manufacturer's).
    lab.attestation.trustedEkCaPem = [lab.rootCaPem];
    try {
      const r = await run(['run', '--forceRenewal']);
      assert.notEqual(r.code, 0);
      const text = r.stdout + r.stderr;
      assert.match(text, /does not chain to a TPM vendor CA this org trusts/);
      assert.match(text, /What to do: .*TPM vendor's CA/);
    } finally {
      lab.attestation.trustedEkCaPem = trusted;
    }
    assert.equal(readState(profile).current.serialNumber, serial);
    assert.equal((await run(['status', '--json'])).code, 0);
  });

  test('"attested keys only": a software key is refused with a clear message and what to do; the previous certificate stays', async () => {
    const p = makeProfile({ orgUrl: lab.orgUrl, rootCaFile });
    const sw = { DTA_SKIP_TPM: 'true' };
    assert.equal((await run(['run', '--user'], p, sw)).code, 0);
    const serial = readState(p).current.serialNumber;
    let s = JSON.parse((await run(['status', '--json'], p, sw)).stdout);
    assert.equal(s.keyProtection.label, 'software');
    assert.equal(s.keyProtection.attested, false);
    lab.switches.requireAttestedKeys = true;
    lab.switches.renewalWindowSeconds = 400 * 86400;
    const mark = lab.received.length;
    try {
      const r = await run(['run'], p, sw);
      assert.notEqual(r.code, 0);
      const text = r.stdout + r.stderr;
      assert.match(text, /accepts only device keys attested by a TPM/);
      assert.match(text, /What to do: .*device-trust-agent status/);
    } finally {
      lab.switches.requireAttestedKeys = false;
      lab.switches.renewalWindowSeconds = 30 * 86400;
    }
    const paths = lab.received.slice(mark).map((q) => new URL(q.url, 'https://x').pathname);
    assert.ok(paths.includes('/api/v1/device-trust/renew'), paths.join(', '));
    assert.ok(!paths.includes('/api/v1/device-trust/enroll'), 'a refused attestation is not retried as an enrollment');
    assert.equal(readState(p).current.serialNumber, serial, 'the previous certificate stays');
    s = JSON.parse((await run(['status', '--json'], p, sw)).stdout);
    assert.equal(s.state, 'ENROLLED');
  });

  test('an attested certificate is not renewed onto an unattested key: ATTESTED_RENEWAL_REQUIRED, exit 30, the certificate stays (PROTOCOL §13.4)', async () => {
    // The forced renewal the test above left pending completes first (attested), so the next pass is a renewal.
    const done = await run(['run']);
    assert.equal(done.code, 0, done.stdout + done.stderr);
    const serial = readState(profile).current.serialNumber;
    assert.equal(readState(profile).current.keyAttestation.attested, true);
    const dir = tempDir('nopytss-renew');
    const shim = path.join(dir, 'python3');
    // Without tpm2-pytss the new key cannot be attested: the renewal goes out unattested, signed by the attested key.
    fs.writeFileSync(shim, '#!/bin/sh\nexec /usr/bin/python3 -S "$@"\n', { mode: 0o755 });
    lab.switches.renewalWindowSeconds = 400 * 86400;
    const mark = lab.received.length;
    try {
      const r = await run(['run'], profile, { DTA_TEST_ATTEST_PYTHON: shim });
      assert.equal(r.code, 30, r.stdout + r.stderr);
      assert.match(r.stdout + r.stderr, /issued to a TPM-attested key, and the new key was not attested/);
      assert.match(r.stdout + r.stderr, /What to do: .*device-trust-agent status/);
    } finally {
      lab.switches.renewalWindowSeconds = 30 * 86400;
    }
    assert.equal(readState(profile).lastRun.code, 'ATTESTED_RENEWAL_REQUIRED');
    const paths = lab.received.slice(mark).map((q) => new URL(q.url, 'https://x').pathname);
    assert.ok(!paths.includes('/api/v1/device-trust/enroll'), 'not retried as an enrollment');
    assert.equal(readState(profile).current.serialNumber, serial, 'the attested certificate stays');
    assert.equal(lab.judgeClientCertificate(certOf()).trusted, true, 'and is not revoked');
  });

  test('without tpm2-pytss the key is enrolled unattested in the TPM, status says why, and the change is an event', async () => {
    const dir = tempDir('nopytss');
    const shim = path.join(dir, 'python3');
    // A real python3 without its site packages: tpm2_pytss cannot be imported.
    fs.writeFileSync(shim, '#!/bin/sh\nexec /usr/bin/python3 -S "$@"\n', { mode: 0o755 });
    const r = await run(['run', '--forceRenewal'], profile, { DTA_TEST_ATTEST_PYTHON: shim });
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const s = JSON.parse((await run(['status', '--json'])).stdout);
    assert.equal(s.keyProtection.label, 'tpm');
    assert.equal(s.keyProtection.attested, false);
    assert.match(s.keyProtection.attestation, /python3-tpm2-pytss is not installed/);
    assert.match((await run(['status'])).stdout, /attestation: not attested — python3-tpm2-pytss is not installed/);
    assert.equal(lab.judgeClientCertificate(certOf()).keyAttested, undefined, 'the mTLS answer does not say attested');
    const change = readEvents(profile).filter((e) => e.id === 1111).at(-1);
    assert.ok(change, 'KEY_PROTECTION_CHANGED recorded');
    assert.match(change.message, /was tpm \(attested\)/);
  });
});
