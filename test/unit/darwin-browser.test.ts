/**
 * macOS browser setup: Chrome/Edge through a configuration profile (the agent reads what the profile put into
 * Managed Preferences and says "applied" or, honestly, "not applied" — it never writes there), Firefox through the
 * org.mozilla.firefox preference domain merged with an admin's policies (`defaults import`, never policies.json in
 * Firefox.app), and Safari's identity preferences in the user's keychain; all undone by remove(). plutil answers
 * come from test/fixtures/darwin; the plist the agent imports is read back by an independent reader (plistlib).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { X509Certificate } from 'node:crypto';
import { describeCertificate, parseCertificate } from '../../src-main/base/certinfo.js';
import type { Command } from '../../src-main/base/exec.js';
import { darwinPrefCommands, MacBrowserSetup, MDM_NOT_APPLIED } from '../../src-main/platform/darwin-browser.js';
import { MacKeychainStore } from '../../src-main/platform/darwin-store.js';
import { tempDir } from '../support/agent.js';
import { fixture, ok, scripted } from '../support/commands.js';

const OURS = '{"pattern":"https://[*.]example.okta.com","filter":{"ISSUER":{"CN":"MTLS Certificate Authority"}}}';
const model = { patterns: ['https://[*.]example.okta.com'], issuerCN: 'MTLS Certificate Authority' };

function dirs() {
  const root = tempDir('macpol');
  const prefs = path.join(root, 'Managed Preferences');
  const library = path.join(root, 'Preferences');
  const firefox = path.join(root, 'Applications', 'Firefox.app');
  for (const d of [prefs, library, firefox]) fs.mkdirSync(d, { recursive: true });
  return { root, prefs, library, firefox };
}

/** plistlib (CPython) reads the plist the agent hands to `defaults import`. */
function readPlist(file: string): Record<string, unknown> | undefined {
  const r = spawnSync('python3', ['-c', 'import sys, json, plistlib; print(json.dumps(plistlib.load(open(sys.argv[1], "rb"))))', file], { encoding: 'utf8' });
  if (r.error || r.status !== 0) return undefined;
  return JSON.parse(r.stdout) as Record<string, unknown>;
}

test('command lines: plutil reads as JSON; defaults imports and deletes whole domains through cfprefsd', () => {
  assert.deepEqual(darwinPrefCommands.readArray('/Library/Managed Preferences/com.google.Chrome.plist', 'AutoSelectCertificateForUrls'),
    { file: '/usr/bin/plutil', args: ['-extract', 'AutoSelectCertificateForUrls', 'json', '-o', '-', '/Library/Managed Preferences/com.google.Chrome.plist'] });
  assert.deepEqual(darwinPrefCommands.importDomain('/Library/Preferences/org.mozilla.firefox', '/tmp/x.plist'), { file: '/usr/bin/defaults', args: ['import', '/Library/Preferences/org.mozilla.firefox', '/tmp/x.plist'] });
  assert.deepEqual(darwinPrefCommands.deleteDomain('/Library/Preferences/org.mozilla.firefox'), { file: '/usr/bin/defaults', args: ['delete', '/Library/Preferences/org.mozilla.firefox'] });
});

test('device task: Chrome applied by a profile, Edge honestly "not applied" (no profile), Firefox policies merged into org.mozilla.firefox', async (t) => {
  const d = dirs();
  fs.writeFileSync(path.join(d.prefs, 'com.google.Chrome.plist'), 'profile-managed plist stand-in');
  fs.writeFileSync(path.join(d.library, 'org.mozilla.firefox.plist'), 'admin plist stand-in');
  let imported: Record<string, unknown> | undefined;
  const tool = scripted((cmd: Command) => {
    if (cmd.file === '/usr/bin/plutil' && cmd.args[0] === '-extract') return ok(JSON.stringify(['{"pattern":"https://[*.]intranet.example.com","filter":{}}', OURS]));
    if (cmd.file === '/usr/bin/plutil') return ok(fixture('darwin', 'plutil-firefox-domain.json'));
    if (cmd.args[0] === 'import') {
      imported = readPlist(cmd.args[2]!);
      return ok();
    }
    throw new Error(`unexpected ${cmd.file} ${cmd.args.join(' ')}`);
  });
  const res = await new MacBrowserSetup({ run: tool.run, managedPrefsDir: d.prefs, preferencesDir: d.library, firefoxApp: d.firefox, stateDir: tempDir('st'), isRoot: true }).apply(model);
  assert.ok(res.written.includes(`${path.join(d.prefs, 'com.google.Chrome.plist')} (applied by a configuration profile)`));
  assert.deepEqual(res.skipped, [{ dir: path.join(d.prefs, 'com.microsoft.Edge.plist'), reason: MDM_NOT_APPLIED }]);
  assert.match(MDM_NOT_APPLIED, /browser-setup --print macos-mobileconfig/);
  assert.ok(!tool.calls.some((c) => c.args.some((a) => a.includes('Managed Preferences') && c.file === '/usr/bin/defaults')), 'nothing is ever written into Managed Preferences');
  assert.deepEqual(tool.calls.filter((c) => c.file === '/usr/bin/defaults').map((c) => [c.args[0], c.args[1]]), [['import', path.join(d.library, 'org.mozilla.firefox')]]);
  if (!imported) {
    console.log('# skipped part: python3 plistlib cannot read the imported plist here');
    t.diagnostic('plistlib missing');
    return;
  }
  assert.equal(imported.EnterprisePoliciesEnabled, true);
  assert.equal(imported.DisableTelemetry, true, 'the admin\'s policy stays');
  assert.deepEqual(imported.Certificates, { ImportEnterpriseRoots: true });
  const prefs = imported.Preferences as Record<string, { Value: unknown; Status: string }>;
  assert.equal(prefs['browser.startup.homepage']!.Value, 'https://intranet.example.com', 'the admin\'s preference stays');
  assert.deepEqual(prefs['security.default_personal_cert'], { Value: 'Select Automatically', Status: 'locked' });
  assert.deepEqual(prefs['security.osclientcerts.autoload'], { Value: true, Status: 'locked' });
  assert.ok(!fs.existsSync(path.join(d.firefox, 'Contents', 'Resources', 'distribution', 'policies.json')), 'Firefox.app is never modified');
});

test('no Firefox installed: no policy; a user task writes no Firefox policy and still reports Chrome/Edge status', async () => {
  const d = dirs();
  fs.rmSync(d.firefox, { recursive: true });
  const tool = scripted(() => ok('[]'));
  const res = await new MacBrowserSetup({ run: tool.run, managedPrefsDir: d.prefs, preferencesDir: d.library, firefoxApp: d.firefox, stateDir: tempDir('st'), isRoot: true }).apply(model);
  assert.ok(!tool.calls.some((c) => c.file === '/usr/bin/defaults'));
  assert.equal(res.skipped.length, 2);
  const user = scripted(() => ok('[]'));
  fs.mkdirSync(d.firefox, { recursive: true });
  await new MacBrowserSetup({ run: user.run, managedPrefsDir: d.prefs, preferencesDir: d.library, firefoxApp: d.firefox, stateDir: tempDir('st'), isRoot: false }).apply(model);
  assert.ok(!user.calls.some((c) => c.file === '/usr/bin/defaults'), 'only the device task (root) writes /Library/Preferences');
});

test('user task: Safari\'s identity preferences (plain and app-id names) for each mTLS service, cleared again on remove', async () => {
  const d = dirs();
  const keychain = path.join(d.root, 'login.keychain-db');
  fs.writeFileSync(keychain, '');
  const tool = scripted((cmd) => {
    if (cmd.args[0] === 'find-identity') return ok(fixture('darwin', 'security-find-identity.txt'));
    if (cmd.args[0] === 'find-certificate') return ok(fixture('darwin', 'security-find-certificate.txt'));
    return ok('[]');
  });
  const store = new MacKeychainStore({ keychain, workDir: tempDir('w'), agentPath: '/x', run: tool.run });
  const stateDir = tempDir('st');
  const setup = new MacBrowserSetup({ run: tool.run, managedPrefsDir: d.prefs, preferencesDir: d.library, firefoxApp: d.firefox, stateDir, store, isRoot: false });
  const res = await setup.apply(model);
  const prefs = tool.calls.filter((c) => c.args[0] === 'set-identity-preference').map((c) => c.args[4]);
  assert.deepEqual(prefs, ['https://example.okta.com/', 'https://example.okta.com/ (com.apple.Safari)', '*.example.okta.com']);
  assert.ok(tool.calls.filter((c) => c.args[0] === 'set-identity-preference').every((c) => c.args[2] === 'CBDEE0FA55397CB83B775D3DD78B9FC817452D32'), 'our identity (issuer MTLS Certificate Authority), not the other one');
  assert.ok(res.written.includes('identity preference https://example.okta.com/'));
  await setup.remove('MTLS Certificate Authority');
  assert.deepEqual(tool.calls.filter((c) => c.args[1] === '-n').map((c) => c.args[3]), ['https://example.okta.com/', 'https://example.okta.com/ (com.apple.Safari)', '*.example.okta.com']);
  assert.ok(!fs.existsSync(path.join(stateDir, 'identity-preferences.json')));
});

test('issue 25.9: a Secure Enclave identity (not listed by find-identity) gets Safari\'s identity preference; no identity at all is reported skipped', async () => {
  const d = dirs();
  const keychain = path.join(d.root, 'login.keychain-db');
  fs.writeFileSync(keychain, '');
  const tool = scripted((cmd) => (cmd.args[0] === 'find-identity' ? ok(fixture('darwin', 'security-find-identity-none.txt')) : ok('[]')));
  const store = new MacKeychainStore({ keychain, workDir: tempDir('w'), agentPath: '/x', run: tool.run });
  const pem = fixture('darwin', 'device-cert.pem');
  const sha1 = new X509Certificate(pem).fingerprint.replace(/:/g, '');
  const token = { id: sha1, pem, info: describeCertificate(parseCertificate(pem)) };
  const setup = new MacBrowserSetup({ run: tool.run, managedPrefsDir: d.prefs, preferencesDir: d.library, firefoxApp: d.firefox, stateDir: tempDir('st'), store, identities: async () => [...(await store.list()), token], isRoot: false });
  const res = await setup.apply(model);
  const prefs = tool.calls.filter((c) => c.args[0] === 'set-identity-preference');
  assert.ok(prefs.length >= 1 && prefs.every((c) => c.args[2] === sha1), 'the Secure Enclave identity is the one preferred');
  assert.ok(res.written.includes('identity preference https://example.okta.com/'));
  const none = await new MacBrowserSetup({ run: tool.run, managedPrefsDir: d.prefs, preferencesDir: d.library, firefoxApp: d.firefox, stateDir: tempDir('st'), store, isRoot: false }).apply(model);
  assert.ok(none.skipped.some((x) => x.dir === 'identity preferences' && /login keychain or the Secure Enclave/.test(x.reason)), 'said, not silent');
});

test('remove (uninstall): our Firefox policies leave the domain, the admin\'s stay; a domain left empty is deleted', async (t) => {
  const d = dirs();
  fs.writeFileSync(path.join(d.library, 'org.mozilla.firefox.plist'), 'x');
  const withAdmin = { EnterprisePoliciesEnabled: true, DisableTelemetry: true, Certificates: { ImportEnterpriseRoots: true }, Preferences: { 'security.default_personal_cert': { Value: 'Select Automatically', Status: 'locked' }, 'security.osclientcerts.autoload': { Value: true, Status: 'locked' } } };
  let imported: Record<string, unknown> | undefined;
  const tool = scripted((cmd) => {
    if (cmd.file === '/usr/bin/plutil') return ok(JSON.stringify(withAdmin));
    if (cmd.args[0] === 'import') imported = readPlist(cmd.args[2]!);
    return ok();
  });
  await new MacBrowserSetup({ run: tool.run, managedPrefsDir: d.prefs, preferencesDir: d.library, firefoxApp: d.firefox, stateDir: tempDir('st'), isRoot: true }).remove('MTLS Certificate Authority');
  if (imported) assert.deepEqual(imported, { EnterprisePoliciesEnabled: true, DisableTelemetry: true });
  else t.diagnostic('plistlib missing: imported plist not read back');

  const onlyOurs = { ...withAdmin, DisableTelemetry: undefined };
  delete (onlyOurs as Record<string, unknown>).DisableTelemetry;
  const tool2 = scripted((cmd) => (cmd.file === '/usr/bin/plutil' ? ok(JSON.stringify(onlyOurs)) : ok()));
  await new MacBrowserSetup({ run: tool2.run, managedPrefsDir: d.prefs, preferencesDir: d.library, firefoxApp: d.firefox, stateDir: tempDir('st'), isRoot: true }).remove('MTLS Certificate Authority');
  assert.deepEqual(tool2.calls.filter((c) => c.file === '/usr/bin/defaults').map((c) => c.args), [['delete', path.join(d.library, 'org.mozilla.firefox')]]);
});
