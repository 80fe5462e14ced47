/**
 * The device key in a real TPM 2.0 (swtpm behind tpm2-abrmd on a private D-Bus, tpm2-pkcs11): enrollment and
 * renewal through the agent's command line against the lab org, headless Chromium presenting the TPM-resident
 * key, a copied profile that cannot sign on another TPM, and no private key material in any file.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { kerberosToolsAvailable, type Kdc } from '../../lab/kdc.js';
import { startKerberosLab } from '../support/kerberos-lab.js';
import type { LabOrg } from '../../lab/org.js';
import { LinuxKeyStore } from '../../src-main/platform/linux-keys.js';
import { makeProfile, runAgent, tempDir, type Profile } from '../support/agent.js';
import { chromiumPageText, chromiumUnavailable } from '../support/chromium.js';
import { filesWithPrivateKeys, nssPrivateKeyFacts } from '../support/keyscan.js';
import { nssTrustRoot, nssUserNicknamesAllTokens } from '../support/nss.js';
import { startSoftTpm, tpmUnavailable, type SoftTpm } from '../support/tpm.js';
import { addFirefoxProfile, firefoxPageText, firefoxUnavailable } from '../support/firefox.js';
import { readState } from '../support/state.js';

const skipReason = tpmUnavailable() ?? (kerberosToolsAvailable() ? undefined : 'skipped: MIT Kerberos is not installed (apt install krb5-kdc krb5-admin-server krb5-user)');
if (skipReason) console.log(`# tpm-keys ${skipReason}`);

describe('device key in a TPM 2.0 (swtpm + tpm2-abrmd + tpm2-pkcs11)', { skip: skipReason }, () => {
  let kdc: Kdc;
  let lab: LabOrg;
  let tpm: SoftTpm;
  let rootCaFile: string;
  let agentEnv: Record<string, string>;
  let profile: Profile;
  const keyRefs: string[] = [];

  const run = (args: string[], p: Profile = profile, extra: Record<string, string> = {}) => runAgent(args, { ...agentEnv, ...tpm.env, ...p.env, ...extra });
  const keyRef = (p: Profile = profile) => JSON.parse(fs.readFileSync(path.join(p.stateDir, 'credentials', readState(p).current.thumbprint, 'key-ref.json'), 'utf8')).storeId as string;
  const tpmStore = (p: Profile = profile) => path.join(p.home, '.tpm2_pkcs11');
  const scanDirs = (p: Profile = profile) => [p.home, p.stateDir];

  before(async () => {
    ({ kdc, lab, rootCaFile, agentEnv } = await startKerberosLab());
    tpm = await startSoftTpm();
    // certutil (nssUserCerts, nssTrustRoot) loads the TPM module registered in the profile's NSS database.
    Object.assign(process.env, tpm.env);
    profile = makeProfile({ orgUrl: lab.orgUrl, rootCaFile });
  });

  after(async () => {
    await lab?.close();
    await kdc?.stop();
    await tpm?.stop();
  });

  test('enrollment makes the key inside the TPM token; status says "tpm" and why; no key file; the store is 0700', async () => {
    const r = await run(['run', '--user']);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.match(r.stdout, /Certificate enrolled/);
    const state = readState(profile);
    const cred = path.join(profile.stateDir, 'credentials', state.current.thumbprint);
    assert.ok(!fs.existsSync(path.join(cred, 'key.pem')), 'no key file');
    assert.match(keyRef(), /^[0-9a-f]{40}$/);
    keyRefs.push(keyRef());
    assert.equal(fs.statSync(tpmStore()).mode & 0o777, 0o700, 'tpm2-pkcs11 store is owner-only');
    // The NSS database holds no private key at all: the pair lives in the TPM token.
    assert.equal(nssPrivateKeyFacts(profile.nssDb).length, 0);
    const s = JSON.parse((await run(['status', '--json'])).stdout);
    assert.equal(s.state, 'ENROLLED');
    assert.equal(s.keyProtection.protection, 'tpm');
    assert.match(s.keyProtection.reason, /TPM 2\.0 via/);
    assert.match((await run(['status'])).stdout, /key: +tpm/);
    // NSS (Chromium's database) lists the certificate as a user certificate through the registered TPM module.
    assert.match(fs.readFileSync(path.join(profile.nssDb, 'pkcs11.txt'), 'utf8'), /libtpm2_pkcs11\.so/);
    assert.deepEqual(filesWithPrivateKeys(scanDirs()), []);
  });

  test('SkipTPM=true keeps new keys in the NSS software token even with a TPM present, and says so', async () => {
    const p = makeProfile({ orgUrl: lab.orgUrl, rootCaFile });
    const r = await run(['run', '--user'], p, { DTA_SKIP_TPM: 'true' });
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const s = JSON.parse((await run(['status', '--json'], p, { DTA_SKIP_TPM: 'true' })).stdout);
    assert.equal(s.keyProtection.protection, 'software');
    assert.match(s.keyProtection.reason, /SkipTPM=true/);
    assert.equal(nssPrivateKeyFacts(p.nssDb).length, 1);
    assert.ok(!fs.existsSync(path.join(p.home, '.tpm2_pkcs11')), 'the TPM token was not touched');
  });

  test('headless Chromium presents the TPM-resident key to the mTLS endpoint; without the policy it does not', async (t) => {
    const why = chromiumUnavailable();
    if (why) {
      t.skip(why);
      return;
    }
    // certutil runs with this process's HOME: point tpm2-pkcs11 at the profile's token store, as HOME does for Chromium.
    process.env.TPM2_PKCS11_STORE = tpmStore();
    nssTrustRoot(profile.nssDb, rootCaFile);
    assert.deepEqual(nssUserNicknamesAllTokens(profile.nssDb).map((n) => n.split(':')[0]), ['device-trust'], 'certutil sees the TPM certificate as a user certificate of the TPM token');
    const text = await chromiumPageText(lab.mtlsUrl, { home: profile.home, chromiumEtc: profile.chromiumEtc, env: tpm.env });
    const verdict = JSON.parse(text);
    assert.equal(verdict.trusted, true, text);
    assert.equal(verdict.serialNumber, readState(profile).current.serialNumber);
    const emptyEtc = path.join(tempDir('etc'), 'chromium');
    fs.mkdirSync(emptyEtc, { recursive: true });
    const neg = await chromiumPageText(lab.mtlsUrl, { home: profile.home, chromiumEtc: emptyEtc, env: tpm.env, timeoutMs: 10_000 }).catch((e: Error) => e.message);
    assert.ok(!/"trusted":\s*true/.test(neg), `certificate was presented without the policy: ${neg}`);
  });

  test('headless Firefox presents the TPM-resident key through the module the agent registered in its profile; a profile without it does not', async (t) => {
    const why = firefoxUnavailable();
    if (why) {
      console.log(`# ${why}`);
      t.skip(why);
      return;
    }
    const ffProfile = addFirefoxProfile(profile.home, 'dta.tpm-esr');
    const r = await run(['run', '--user']); // a pass (here: nothing to do) sets up the profiles it finds
    assert.ok([0, 10].includes(r.code), r.stderr + r.stdout);
    assert.match(fs.readFileSync(path.join(ffProfile, 'pkcs11.txt'), 'utf8'), /^library=\S*libtpm2_pkcs11\.so$/m, 'the TPM module, not a copy of the key');
    assert.equal(nssPrivateKeyFacts(ffProfile).length, 0, 'no private key copied into the profile');
    process.env.TPM2_PKCS11_STORE = tpmStore();
    nssTrustRoot(ffProfile, rootCaFile); // the org's CA as an enterprise root, as an admin would deploy it
    // Firefox presents the key to the org's host by the remembered decision the agent wrote into the profile
    // (ClientAuthRememberList.bin); any Firefox policy the agent wrote is shown to it from /etc, laid over in a
    // mount namespace (no global "Select Automatically" unless an admin opts in).
    const etcOverlay = path.join(tempDir('etc'), 'upper');
    fs.mkdirSync(path.join(etcOverlay, 'firefox', 'policies'), { recursive: true });
    const policies = path.join(profile.env.DTA_FIREFOX_POLICY_DIRS!, 'policies.json');
    if (fs.existsSync(policies)) fs.copyFileSync(policies, path.join(etcOverlay, 'firefox', 'policies', 'policies.json'));
    assert.ok(fs.existsSync(path.join(ffProfile, 'ClientAuthRememberList.bin')), 'the org-only decision is in the profile');
    const { text, error } = await firefoxPageText(lab.mtlsUrl, { home: profile.home, profile: ffProfile, etcOverlay, env: tpm.env });
    assert.ok(text.startsWith('{'), `no verdict from the mTLS endpoint (${error ?? 'no error'}): ${text}`);
    assert.equal(JSON.parse(text).trusted, true, text);
    assert.equal(JSON.parse(text).serialNumber, readState(profile).current.serialNumber);
    // Negative control: the same profile without the module cannot present the key.
    const bare = path.join(tempDir('ffbare'), 'profile');
    fs.cpSync(ffProfile, bare, { recursive: true, filter: (src) => !/pkcs11\.txt$|prefs\.js$|user\.js$/.test(src) });
    const neg = await firefoxPageText(lab.mtlsUrl, { home: profile.home, profile: bare, etcOverlay, env: tpm.env, pageLoadMs: 8_000 });
    assert.ok(!/"trusted":\s*true/.test(neg.text), `presented without the module: ${neg.text}`);
  });

  test('renewal signs the renewal token with the TPM key; the new key is in the TPM and the old one is gone', async () => {
    lab.switches.validitySeconds = 3600;
    lab.switches.renewalWindowSeconds = 3600;
    try {
      assert.equal((await run(['run', '--forceRenewal'])).code, 0);
      keyRefs.push(keyRef());
      const mark = lab.received.length;
      const r = await run(['run', '--debug']);
      assert.equal(r.code, 0, r.stderr + r.stdout);
      assert.match(r.stdout, /renewed/);
      const sent = lab.received.slice(mark).map((q) => new URL(q.url, 'https://x').pathname);
      assert.ok(sent.includes('/api/v1/device-trust/renew'), sent.join(', '));
      keyRefs.push(keyRef());
      assert.equal(readState(profile).current.how, 'renewed');
    } finally {
      lab.switches.validitySeconds = 365 * 86400;
      lab.switches.renewalWindowSeconds = 30 * 86400;
    }
    assert.equal(new Set(keyRefs).size, keyRefs.length, 'each enrollment made a new key');
    Object.assign(process.env, tpm.env);
    const ks = new LinuxKeyStore({ nssDbDir: profile.nssDb, home: profile.home, skipTpm: false, env: { ...process.env, TPM2_PKCS11_STORE: tpmStore() } });
    try {
      for (const old of keyRefs.slice(0, -1)) assert.equal(await ks.find(old), undefined, `old key ${old} left the token`);
      const cur = await ks.find(keyRefs.at(-1)!);
      assert.equal(cur?.protection, 'tpm');
      const sig = await ks.sign(cur!.id, Buffer.from('proof'));
      assert.ok(crypto.verify('sha256', Buffer.from('proof'), { key: crypto.createPublicKey({ key: cur!.spki, format: 'der', type: 'spki' }), dsaEncoding: 'ieee-p1363' }, sig));
    } finally {
      await ks.close();
    }
    assert.deepEqual(filesWithPrivateKeys(scanDirs()), []);
  });

  test('a copy of the whole profile (state, NSS database, token store) in another HOME with a different TPM cannot sign', async () => {
    const other = await startSoftTpm();
    const home2 = tempDir('home-copy');
    fs.cpSync(profile.home, home2, { recursive: true });
    const saved = { ...process.env };
    delete process.env.TPM2_PKCS11_STORE;
    Object.assign(process.env, other.env);
    const ks = new LinuxKeyStore({ nssDbDir: path.join(home2, '.pki', 'nssdb'), home: home2, skipTpm: false, env: { ...process.env } });
    try {
      const id = keyRefs.at(-1)!;
      let signature: Buffer | undefined;
      let failure = '';
      try {
        const k = await ks.find(id);
        if (k) signature = await ks.sign(id, Buffer.from('proof'));
        else failure = 'key not found';
      } catch (e) {
        failure = (e as Error).message;
      }
      assert.equal(signature, undefined, 'the copied key produced a signature on another TPM');
      assert.ok(failure.length > 0);
    } finally {
      await ks.close();
      process.env = saved;
      await other.stop();
    }
  });

  test('remove-certificate takes the key out of the TPM token; nothing of it is left in any file', async () => {
    const id = keyRefs.at(-1)!;
    const r = await run(['remove-certificate']);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.deepEqual(nssUserNicknamesAllTokens(profile.nssDb), []);
    Object.assign(process.env, tpm.env);
    const ks = new LinuxKeyStore({ nssDbDir: profile.nssDb, home: profile.home, skipTpm: false, env: { ...process.env, TPM2_PKCS11_STORE: tpmStore() } });
    try {
      assert.equal(await ks.find(id), undefined);
    } finally {
      await ks.close();
    }
    assert.deepEqual(filesWithPrivateKeys(scanDirs()), []);
  });
});
