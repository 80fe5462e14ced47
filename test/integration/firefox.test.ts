/**
 * Linux, for real: the agent's Firefox route and its PEM export.
 *  - Firefox (Debian's firefox-esr, headless, driven by Marionette) presents the enrolled certificate to the lab's
 *    mTLS endpoint using only what the agent set up: the certificate in the profile's own NSS database and
 *    /etc/firefox/policies/policies.json with security.default_personal_cert = "Select Automatically". Without the
 *    policy it does not (a negative control).
 *  - Renewal keeps exactly one certificate in the Firefox profile; remove-certificate takes it out again.
 *  - exportPemDir writes owner-only PEM files that curl can use to prove the device to the mTLS endpoint.
 * Lab-only sign-in (no Kerberos needed here: Kerberos has its own tests).
 */
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { startLabOrg, type LabOrg } from '../../lab/org.js';
import { makeProfile, type Profile, runAgent, tempDir, writeRootCa } from '../support/agent.js';
import { firefoxPageText, firefoxUnavailable } from '../support/firefox.js';
import { nssKeyCount, nssTrustRoot, nssUserCerts } from '../support/nss.js';

/** A user's Firefox profile as Firefox itself lays it out: profiles.ini naming one profile directory. */
function addFirefoxProfile(home: string, name: string): string {
  const root = path.join(home, '.mozilla', 'firefox');
  const dir = path.join(root, name);
  fs.mkdirSync(dir, { recursive: true });
  const ini = path.join(root, 'profiles.ini');
  const n = fs.existsSync(ini) ? (fs.readFileSync(ini, 'utf8').match(/^\[Profile\d+\]/gm) ?? []).length : 0;
  fs.appendFileSync(ini, `${n === 0 ? '[General]\nStartWithLastProfile=1\nVersion=2\n\n' : ''}[Profile${n}]\nName=${name}\nIsRelative=1\nPath=${name}\n${n === 0 ? 'Default=1\n' : ''}\n`);
  return dir;
}

describe('Firefox presents the enrolled certificate through the policy and the profile\'s NSS database', () => {
  let lab: LabOrg;
  let rootCaFile: string;
  let profile: Profile;
  let ffProfile: string;
  /** Laid over /etc for Firefox: the agent writes firefox/policies/policies.json into it. */
  let etcOverlay: string;
  const stateOf = () => JSON.parse(fs.readFileSync(path.join(profile.stateDir, 'state.json'), 'utf8'));

  before(async () => {
    lab = await startLabOrg({ allowLabSignIn: true });
    rootCaFile = writeRootCa(lab.rootCaPem);
    const home = tempDir('ffhome');
    etcOverlay = path.join(tempDir('etc'), 'upper');
    fs.mkdirSync(etcOverlay, { recursive: true });
    profile = makeProfile({ orgUrl: lab.orgUrl, rootCaFile, extraEnv: { HOME: home, DTA_LAB_SIGN_IN: 'true', DTA_FIREFOX_POLICY_DIRS: path.join(etcOverlay, 'firefox', 'policies') } });
    profile = { ...profile, home, nssDb: path.join(home, '.pki', 'nssdb'), stateDir: path.join(home, '.local', 'state', 'device-trust-agent') };
    ffProfile = addFirefoxProfile(home, 'dta.default-esr');
  });

  after(() => lab?.close());

  test('run enrolls and puts the certificate with its key into the Firefox profile, and writes policies.json', async () => {
    const r = await runAgent(['run'], profile.env);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const inProfile = nssUserCerts(ffProfile);
    assert.equal(inProfile.length, 1, 'one device certificate in the Firefox profile');
    assert.equal(inProfile[0]!.serial, stateOf().current.serialNumber);
    assert.equal(nssKeyCount(ffProfile), 1, 'with its private key');
    for (const f of ['cert9.db', 'key4.db']) assert.equal(fs.statSync(path.join(ffProfile, f)).mode & 0o077, 0, `${f} is owner-only`);
    const policies = JSON.parse(fs.readFileSync(path.join(etcOverlay, 'firefox', 'policies', 'policies.json'), 'utf8'));
    assert.deepEqual(policies.policies.Preferences['security.default_personal_cert'], { Value: 'Select Automatically', Status: 'locked' });
  });

  test('headless Firefox with that policy presents the certificate, and the mTLS endpoint trusts this device', async (t) => {
    const why = firefoxUnavailable();
    if (why) {
      console.log(`# ${why}`);
      t.skip(why);
      return;
    }
    nssTrustRoot(ffProfile, rootCaFile); // the org's CA as an enterprise root, as an admin would deploy it
    const { text, error } = await firefoxPageText(lab.mtlsUrl, { home: profile.home, profile: ffProfile, etcOverlay });
    assert.ok(text.startsWith('{'), `no verdict from the mTLS endpoint (${error ?? 'no error'}): ${text}`);
    const verdict = JSON.parse(text);
    assert.equal(verdict.trusted, true, text);
    assert.equal(verdict.deviceId, stateOf().deviceId);
    assert.equal(verdict.serialNumber, stateOf().current.serialNumber);
  });

  test('negative control: the same certificate, without the policy, is not presented', async (t) => {
    const why = firefoxUnavailable();
    if (why) {
      t.skip(why);
      return;
    }
    const home = tempDir('ffneg');
    const neg = path.join(home, 'profile');
    fs.mkdirSync(neg, { recursive: true });
    fs.cpSync(ffProfile, neg, { recursive: true, filter: (src) => !/prefs\.js$|user\.js$/.test(src) });
    const emptyPolicy = path.join(tempDir('etcneg'), 'upper');
    fs.mkdirSync(path.join(emptyPolicy, 'firefox', 'policies'), { recursive: true });
    fs.writeFileSync(path.join(emptyPolicy, 'firefox', 'policies', 'policies.json'), '{"policies":{}}\n');
    const { text } = await firefoxPageText(lab.mtlsUrl, { home, profile: neg, etcOverlay: emptyPolicy, pageLoadMs: 5_000 });
    assert.ok(!/"trusted":\s*true/.test(text), `Firefox presented the certificate without the policy: ${text}`);
  });

  test('--forceRenewal leaves exactly the new certificate in the Firefox profile', async () => {
    const old = stateOf().current.serialNumber;
    const r = await runAgent(['run', '--forceRenewal'], profile.env);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const serials = nssUserCerts(ffProfile).map((c) => c.serial);
    assert.deepEqual(serials, [stateOf().current.serialNumber]);
    assert.notEqual(serials[0], old);
    assert.equal(nssKeyCount(ffProfile), 1, 'the old key went with the old certificate');
  });

  test('remove-certificate takes the certificate out of the store, the agent\'s key files and the Firefox profile', async () => {
    const r = await runAgent(['remove-certificate'], profile.env);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.match(r.stdout, /^Removed [0-9a-f]+ from NSS database/);
    assert.deepEqual(nssUserCerts(profile.nssDb), []);
    assert.deepEqual(nssUserCerts(ffProfile), []);
    assert.equal(nssKeyCount(ffProfile), 0);
    assert.deepEqual(fs.readdirSync(path.join(profile.stateDir, 'credentials')), []);
    const events = fs.readFileSync(path.join(profile.stateDir, 'events.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    assert.ok(events.some((e) => e.id === 1005));
    const s = JSON.parse((await runAgent(['status', '--json'], profile.env)).stdout);
    assert.equal(s.state, 'NOT_ENROLLED');
  });
});

describe('exportPemDir: owner-only PEM files that other tools can use', () => {
  let lab: LabOrg;
  let rootCaFile: string;
  let profile: Profile;
  let pemDir: string;

  before(async () => {
    lab = await startLabOrg({ allowLabSignIn: true });
    rootCaFile = writeRootCa(lab.rootCaPem);
    pemDir = path.join(tempDir('pem'), 'device-trust');
    profile = makeProfile({ orgUrl: lab.orgUrl, rootCaFile, extraEnv: { DTA_LAB_SIGN_IN: 'true', DTA_EXPORT_PEM_DIR: pemDir } });
  });

  after(() => lab?.close());

  test('enrollment writes cert.pem, key.pem and chain.pem, 0600 in a 0700 directory; curl proves the device with them', async () => {
    const r = await runAgent(['run'], profile.env);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.equal(fs.statSync(pemDir).mode & 0o777, 0o700);
    assert.deepEqual(fs.readdirSync(pemDir).sort(), ['cert.pem', 'chain.pem', 'key.pem']);
    for (const f of ['cert.pem', 'chain.pem', 'key.pem']) assert.equal(fs.statSync(path.join(pemDir, f)).mode & 0o777, 0o600, `${f} is owner-only`);
    const cert = new X509Certificate(fs.readFileSync(path.join(pemDir, 'cert.pem')));
    assert.ok(cert.checkPrivateKey(createPrivateKey(fs.readFileSync(path.join(pemDir, 'key.pem')))), 'the key belongs to the certificate');
    assert.equal(cert.serialNumber.toLowerCase().replace(/^0+/, ''), nssUserCerts(profile.nssDb)[0]!.serial, 'the same certificate as in the store');
    assert.match(fs.readFileSync(path.join(pemDir, 'chain.pem'), 'utf8'), /BEGIN CERTIFICATE/);

    if (spawnSync('curl', ['--version']).status !== 0) {
      console.log('# skipped the curl check: curl is not installed');
      return;
    }
    // Asynchronously: the lab answers from this same process.
    const { stdout: out } = await promisify(execFile)('curl', ['-sS', '--max-time', '10', '--cacert', rootCaFile, '--cert', path.join(pemDir, 'cert.pem'), '--key', path.join(pemDir, 'key.pem'), lab.mtlsUrl], { encoding: 'utf8' });
    assert.equal(JSON.parse(out).trusted, true, out);
  });

  test('renewal replaces the files; removal deletes them', async () => {
    const before = fs.readFileSync(path.join(pemDir, 'cert.pem'), 'utf8');
    assert.equal((await runAgent(['run', '--forceRenewal'], profile.env)).code, 0);
    const after = fs.readFileSync(path.join(pemDir, 'cert.pem'), 'utf8');
    assert.notEqual(after, before);
    assert.ok(new X509Certificate(after).checkPrivateKey(createPrivateKey(fs.readFileSync(path.join(pemDir, 'key.pem')))));
    assert.equal((await runAgent(['remove-certificate'], profile.env)).code, 0);
    assert.deepEqual(fs.readdirSync(pemDir), []);
  });
});
