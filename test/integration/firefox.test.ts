/**
 * Linux, for real: the agent's Firefox route and its PEM export.
 *  - With the NSS software token the key is never copied into a Firefox profile: each profile loads p11-kit's client
 *    module and `p11-kit server` (the user unit) serves the token of ~/.pki/nssdb; headless Firefox then presents
 *    the device certificate to the lab's mTLS endpoint. Without the server it cannot (a negative control).
 *  - Renewal keeps exactly one certificate in the Firefox profile; remove-certificate takes it out again.
 *  - exportPemDir writes owner-only PEM files that curl can use to prove the device to the mTLS endpoint.
 * Lab-only sign-in (no Kerberos needed here: Kerberos has its own tests).
 */
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startLabOrg, type LabOrg } from '../../lab/org.js';
import { makeProfile, type Profile, runAgent, tempDir, writeRootCa } from '../support/agent.js';
import { nssKeyCount, nssTrustRoot, nssUserCerts } from '../support/nss.js';
import { addFirefoxProfile, firefoxPageText, firefoxUnavailable, startP11KitServer } from '../support/firefox.js';
import { nginxUnavailable, startNginx } from '../support/nginx.js';
import { decodeSlots } from '../../src-main/platform/firefox-client-auth.js';
import { readEvents, readState } from '../support/state.js';

describe('Firefox and a device key in the NSS software token: reached through p11-kit, never copied into profiles', () => {
  let lab: LabOrg;
  let rootCaFile: string;
  let profile: Profile;
  let ffProfile: string;
  /** A second profile in the XDG location newer Firefox uses (~/.config/mozilla/firefox). */
  let xdgProfile: string;
  /** Laid over /etc for Firefox: the agent writes firefox/policies/policies.json into it. */
  let etcOverlay: string;

  before(async () => {
    lab = await startLabOrg({ allowLabSignIn: true });
    rootCaFile = writeRootCa(lab.rootCaPem);
    const home = tempDir('ffhome');
    etcOverlay = path.join(tempDir('etc'), 'upper');
    fs.mkdirSync(etcOverlay, { recursive: true });
    profile = makeProfile({ orgUrl: lab.orgUrl, rootCaFile, extraEnv: { HOME: home, DTA_LAB_SIGN_IN: 'true', DTA_FIREFOX_POLICY_DIRS: path.join(etcOverlay, 'firefox', 'policies') } });
    profile = { ...profile, home, nssDb: path.join(home, '.pki', 'nssdb'), stateDir: path.join(home, '.local', 'state', 'device-trust-agent') };
    ffProfile = addFirefoxProfile(home, 'dta.default-esr');
    xdgProfile = addFirefoxProfile(home, 'xdg.default', path.join(home, '.config', 'mozilla', 'firefox'));
  });

  after(() => lab?.close());

  test('run enrolls into the NSS software token, gives Firefox no copy of the key but p11-kit\'s client module and the server\'s module file; policies.json written', async () => {
    const r = await runAgent(['run', '--json'], profile.env);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.deepEqual(nssUserCerts(ffProfile), [], 'no certificate copied into the Firefox profile');
    assert.ok(!fs.existsSync(path.join(ffProfile, 'key4.db')) || nssKeyCount(ffProfile) === 0, 'no private key copied into the Firefox profile');
    const result = JSON.parse(r.stdout);
    assert.ok((result.browserPolicy?.written ?? []).includes(path.join(ffProfile, 'pkcs11.txt')), JSON.stringify(result.browserPolicy));
    assert.match(fs.readFileSync(path.join(ffProfile, 'pkcs11.txt'), 'utf8'), /^library=\S+\/p11-kit-client\.so$/m, 'the profile loads p11-kit\'s client module');
    const moduleFile = path.join(profile.home, '.config', 'pkcs11', 'modules', 'device-trust-agent-nssdb.module');
    const config = fs.readFileSync(moduleFile, 'utf8');
    assert.ok(config.includes(`configdir='sql:${profile.nssDb}'`) && /flags=readOnly/.test(config), config);
    assert.match(config, /^disable-in: p11-kit-proxy$/m, 'not offered to every program through the proxy module');
    // No global "Select Automatically": each profile remembers the certificate for the org's hosts only.
    const policiesFile = path.join(etcOverlay, 'firefox', 'policies', 'policies.json');
    const policies = fs.existsSync(policiesFile) ? JSON.parse(fs.readFileSync(policiesFile, 'utf8')) : {};
    assert.equal(policies.policies?.Preferences?.['security.default_personal_cert'], undefined, JSON.stringify(policies));
    const mtlsHost = new URL(lab.mtlsUrl).hostname;
    for (const p of [ffProfile, xdgProfile]) {
      assert.ok((result.browserPolicy?.written ?? []).includes(path.join(p, 'pkcs11.txt')), `${p} set up and reported: ${JSON.stringify(result.browserPolicy)}`);
      const remembered = decodeSlots(fs.readFileSync(path.join(p, 'ClientAuthRememberList.bin')));
      assert.ok(remembered.length > 0 && remembered.every((e) => e.key.startsWith(`${mtlsHost},,`)), JSON.stringify(remembered));
    }
  });

  test('headless Firefox presents the device certificate through p11-kit (the key stays in ~/.pki/nssdb); without the server it cannot', async (t) => {
    const why = firefoxUnavailable() ?? (fs.existsSync('/usr/bin/p11-kit') ? undefined : 'skipped: p11-kit is not installed (apt install p11-kit p11-kit-modules)');
    if (why) {
      console.log(`# ${why}`);
      t.skip(why);
      return;
    }
    nssTrustRoot(ffProfile, rootCaFile); // the org's CA as an enterprise root, as an admin would deploy it
    const runtimeDir = tempDir('xdgrun');
    fs.chmodSync(runtimeDir, 0o700);
    const env = { XDG_RUNTIME_DIR: runtimeDir };
    // Negative control first: the module is registered but nothing serves the token.
    const none = await firefoxPageText(lab.mtlsUrl, { home: profile.home, profile: ffProfile, etcOverlay, env, pageLoadMs: 8_000 });
    assert.ok(!/"trusted":\s*true/.test(none.text), `a certificate was presented without the token server: ${none.text}`);
    const server = await startP11KitServer({ moduleFile: path.join(profile.home, '.config', 'pkcs11', 'modules', 'device-trust-agent-nssdb.module'), runtimeDir, scratch: tempDir('p11') });
    try {
      const { text, error } = await firefoxPageText(lab.mtlsUrl, { home: profile.home, profile: ffProfile, etcOverlay, env });
      assert.ok(text.startsWith('{'), `no verdict from the mTLS endpoint (${error ?? 'no error'}): ${text}`);
      const verdict = JSON.parse(text);
      assert.equal(verdict.trusted, true, text);
      assert.equal(verdict.serialNumber, readState(profile).current.serialNumber);
    } finally {
      server.stop();
    }
    assert.deepEqual(nssUserCerts(ffProfile), [], 'still no copy in the profile');
  });

  // Firefox has no host-scoped auto-selection policy; the agent writes the profile's remembered decision for the
  // org's hosts. A stranger's nginx (another host name) that asks for a certificate must not get it — unless an
  // admin opts in to the global "Select Automatically" (which proves this test can see a leak).
  test('the device certificate goes to the org\'s host only: a stranger\'s nginx asking for one gets none (unless an admin opts in)', async (t) => {
    const why = firefoxUnavailable() ?? nginxUnavailable() ?? (fs.existsSync('/usr/bin/p11-kit') ? undefined : 'skipped: p11-kit is not installed');
    if (why) {
      console.log(`# ${why}`);
      t.skip(why);
      return;
    }
    const stranger = await startNginx('stranger.test');
    const runtimeDir = tempDir('xdgrun');
    fs.chmodSync(runtimeDir, 0o700);
    const env = { XDG_RUNTIME_DIR: runtimeDir };
    const prefs = { 'network.dns.localDomains': 'stranger.test' };
    let server: Awaited<ReturnType<typeof startP11KitServer>> | undefined;
    const deviceId = readState(profile).deviceId as string;
    try {
      nssTrustRoot(ffProfile, stranger.caFile, 'Stranger Site CA');
      server = await startP11KitServer({ moduleFile: path.join(profile.home, '.config', 'pkcs11', 'modules', 'device-trust-agent-nssdb.module'), runtimeDir, scratch: tempDir('p11') });
      const org = await firefoxPageText(lab.mtlsUrl, { home: profile.home, profile: ffProfile, etcOverlay, env, prefs });
      assert.match(org.text, /"trusted":\s*true/, `the org host did not get the certificate (${org.error ?? ''}): ${org.text}`);
      const other = await firefoxPageText(stranger.url, { home: profile.home, profile: ffProfile, etcOverlay, env, prefs, pageLoadMs: 8_000 });
      assert.doesNotMatch(other.text, new RegExp(deviceId), `the stranger got the device certificate: ${other.text}`);
      assert.doesNotMatch(stranger.accessLog(), new RegExp(deviceId), 'nginx saw no device certificate');
      // The admin's opt-in: the global preference, and then the stranger does get it.
      const optIn = await runAgent(['run'], { ...profile.env, DTA_FIREFOX_SELECT_AUTOMATICALLY: 'true' });
      assert.equal(optIn.code, 10, optIn.stderr); // enrolled already: nothing to do but the browser setup
      const leaked = await firefoxPageText(stranger.url, { home: profile.home, profile: ffProfile, etcOverlay, env, prefs });
      assert.match(leaked.text, new RegExp(`dn=.*${deviceId}`), `with the opt-in the stranger should get it (${leaked.error ?? ''}): ${leaked.text}`);
      // And back: the preference is withdrawn again.
      assert.equal((await runAgent(['run'], profile.env)).code, 10);
      const policies = JSON.parse(fs.readFileSync(path.join(etcOverlay, 'firefox', 'policies', 'policies.json'), 'utf8'));
      assert.equal(policies.policies?.Preferences?.['security.default_personal_cert'], undefined);
    } finally {
      server?.stop();
      await stranger.stop();
    }
  });

  test('remove-certificate takes the certificate out of the store, the agent\'s key files and the Firefox profile', async () => {
    const r = await runAgent(['remove-certificate'], profile.env);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.match(r.stdout, /^Removed [0-9a-f]+ from NSS database/);
    assert.deepEqual(nssUserCerts(profile.nssDb), []);
    assert.equal(nssKeyCount(profile.nssDb), 0, 'the key left the token with its certificate');
    assert.deepEqual(fs.readdirSync(path.join(profile.stateDir, 'credentials')), []);
    const events = readEvents(profile);
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

  test('enrollment writes cert.pem and chain.pem (no key.pem: the key stays in the token), 0600 in a 0700 directory', async () => {
    const r = await runAgent(['run'], profile.env);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.equal(fs.statSync(pemDir).mode & 0o777, 0o700);
    assert.deepEqual(fs.readdirSync(pemDir).sort(), ['cert.pem', 'chain.pem']);
    for (const f of ['cert.pem', 'chain.pem']) assert.equal(fs.statSync(path.join(pemDir, f)).mode & 0o777, 0o600, `${f} is owner-only`);
    const cert = new X509Certificate(fs.readFileSync(path.join(pemDir, 'cert.pem')));
    assert.equal(cert.serialNumber.toLowerCase().replace(/^0+/, ''), nssUserCerts(profile.nssDb)[0]!.serial, 'the same certificate as in the store');
    assert.match(fs.readFileSync(path.join(pemDir, 'chain.pem'), 'utf8'), /BEGIN CERTIFICATE/);

  });

  test('renewal replaces the files; removal deletes them', async () => {
    const before = fs.readFileSync(path.join(pemDir, 'cert.pem'), 'utf8');
    assert.equal((await runAgent(['run', '--forceRenewal'], profile.env)).code, 0);
    const after = fs.readFileSync(path.join(pemDir, 'cert.pem'), 'utf8');
    assert.notEqual(after, before);
    assert.ok(!fs.existsSync(path.join(pemDir, 'key.pem')));
    assert.equal(new X509Certificate(after).serialNumber.toLowerCase().replace(/^0+/, ''), nssUserCerts(profile.nssDb)[0]!.serial);
    assert.equal((await runAgent(['remove-certificate'], profile.env)).code, 0);
    assert.deepEqual(fs.readdirSync(pemDir), []);
  });
});
