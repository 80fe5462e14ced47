/**
 * macOS browser setup: managed preferences through `defaults`/`plutil` (exact command lines, merged with an
 * admin's entries from the plutil output in test/fixtures/darwin), Firefox's policies.json in its bundle, and
 * Safari's identity preferences in the user's keychain; all undone by remove().
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import type { Command } from '../../src-main/base/exec.js';
import { darwinPrefCommands, MacBrowserSetup } from '../../src-main/platform/darwin-browser.js';
import { MacKeychainStore } from '../../src-main/platform/darwin-store.js';
import { tempDir } from '../support/agent.js';
import { fail, fixture, ok, scripted } from '../support/commands.js';

const ADMIN = '{"pattern":"https://[*.]intranet.example.com","filter":{"ISSUER":{"CN":"Example Corp Issuing CA"}}}';
const OURS = '{"pattern":"https://[*.]example.okta.com","filter":{"ISSUER":{"CN":"MTLS Certificate Authority"}}}';
const model = { patterns: ['https://[*.]example.okta.com'], issuerCN: 'MTLS Certificate Authority' };

function dirs() {
  const root = tempDir('macpol');
  const prefs = path.join(root, 'Managed Preferences');
  const app = path.join(root, 'Applications', 'Firefox.app', 'Contents', 'Resources', 'distribution');
  fs.mkdirSync(prefs, { recursive: true });
  fs.mkdirSync(path.dirname(app), { recursive: true });
  return { root, prefs, app };
}

test('command lines: plutil reads the array as JSON, defaults writes it through cfprefsd', () => {
  assert.deepEqual(darwinPrefCommands.readArray('/Library/Managed Preferences/com.google.Chrome.plist', 'AutoSelectCertificateForUrls'),
    { file: '/usr/bin/plutil', args: ['-extract', 'AutoSelectCertificateForUrls', 'json', '-o', '-', '/Library/Managed Preferences/com.google.Chrome.plist'] });
  assert.deepEqual(darwinPrefCommands.writeArray('/Library/Managed Preferences/com.google.Chrome', 'AutoSelectCertificateForUrls', [OURS]),
    { file: '/usr/bin/defaults', args: ['write', '/Library/Managed Preferences/com.google.Chrome', 'AutoSelectCertificateForUrls', '-array', OURS] });
});

test('device task: Chrome keeps the admin\'s entry and gets ours; Edge (no file yet) gets ours; Firefox gets policies.json', async () => {
  const d = dirs();
  fs.writeFileSync(path.join(d.prefs, 'com.google.Chrome.plist'), 'binary plist stand-in');
  const tool = scripted((cmd: Command) => {
    if (cmd.file === '/usr/bin/plutil') return ok(fixture('darwin', 'plutil-extract-autoselect.json'));
    if (cmd.file === '/usr/bin/defaults') return ok();
    throw new Error(`unexpected ${cmd.file}`);
  });
  const res = await new MacBrowserSetup({ run: tool.run, managedPrefsDir: d.prefs, firefoxPolicyDir: d.app, stateDir: tempDir('st'), isRoot: true }).apply(model);
  assert.deepEqual(res.skipped, []);
  assert.deepEqual(tool.calls.filter((c) => c.file === '/usr/bin/defaults').map((c) => c.args), [
    ['write', path.join(d.prefs, 'com.google.Chrome'), 'AutoSelectCertificateForUrls', '-array', ADMIN, OURS],
    ['write', path.join(d.prefs, 'com.microsoft.Edge'), 'AutoSelectCertificateForUrls', '-array', OURS],
  ]);
  const ff = JSON.parse(fs.readFileSync(path.join(d.app, 'policies.json'), 'utf8'));
  assert.deepEqual(ff.policies.Certificates, { ImportEnterpriseRoots: true });
  assert.equal(ff.policies.Preferences['security.default_personal_cert'].Value, 'Select Automatically');
  assert.equal(ff.policies.Preferences['security.osclientcerts.autoload'].Value, true);
});

test('a key missing from an admin\'s plist (plutil error) counts as an empty list, not a failure', async () => {
  const d = dirs();
  fs.writeFileSync(path.join(d.prefs, 'com.google.Chrome.plist'), 'x');
  const tool = scripted((cmd) => (cmd.file === '/usr/bin/plutil' ? fail(fixture('darwin', 'plutil-extract-missing.txt')) : ok()));
  const res = await new MacBrowserSetup({ run: tool.run, managedPrefsDir: d.prefs, firefoxPolicyDir: d.app, stateDir: tempDir('st'), isRoot: true }).apply(model);
  assert.deepEqual(res.skipped, []);
  assert.deepEqual(tool.calls.find((c) => c.file === '/usr/bin/defaults')!.args.slice(3), ['-array', OURS]);
});

test('user task: Safari\'s identity preference is set for each mTLS service and cleared again on remove', async () => {
  const d = dirs();
  const keychain = path.join(d.root, 'login.keychain-db');
  fs.writeFileSync(keychain, '');
  const tool = scripted((cmd) => {
    if (cmd.args[0] === 'find-identity') return ok(fixture('darwin', 'security-find-identity.txt'));
    if (cmd.args[0] === 'find-certificate') return ok(fixture('darwin', 'security-find-certificate.txt'));
    return ok();
  });
  const store = new MacKeychainStore({ keychain, workDir: tempDir('w'), agentPath: '/x', run: tool.run });
  const stateDir = tempDir('st');
  fs.chmodSync(d.prefs, 0o500); // the user task cannot write managed preferences
  const setup = new MacBrowserSetup({ run: tool.run, managedPrefsDir: d.prefs, firefoxPolicyDir: d.app, stateDir, store, isRoot: false });
  const res = await setup.apply(model);
  fs.chmodSync(d.prefs, 0o700);
  const prefs = tool.calls.filter((c) => c.args[0] === 'set-identity-preference').map((c) => c.args);
  assert.deepEqual(prefs, [
    ['set-identity-preference', '-Z', 'CBDEE0FA55397CB83B775D3DD78B9FC817452D32', '-s', 'https://example.okta.com/', keychain],
    ['set-identity-preference', '-Z', 'CBDEE0FA55397CB83B775D3DD78B9FC817452D32', '-s', '*.example.okta.com', keychain],
  ], 'our identity (issuer MTLS Certificate Authority), not the other one');
  assert.ok(res.written.includes('identity preference https://example.okta.com/'));
  if (process.getuid?.() !== 0) assert.ok(res.skipped.some((s) => s.dir.endsWith('com.google.Chrome.plist')), 'managed preferences need root');
  await setup.remove('MTLS Certificate Authority');
  assert.deepEqual(tool.calls.filter((c) => c.args[1] === '-n').map((c) => c.args[3]), ['https://example.okta.com/', '*.example.okta.com']);
  assert.ok(!fs.existsSync(path.join(stateDir, 'identity-preferences.json')));
});

test('remove (uninstall): only our entries leave the managed preferences; a list left empty is deleted', async () => {
  const d = dirs();
  for (const f of ['com.google.Chrome.plist', 'com.microsoft.Edge.plist']) fs.writeFileSync(path.join(d.prefs, f), 'x');
  const tool = scripted((cmd) => {
    if (cmd.file === '/usr/bin/plutil') return ok(cmd.args.at(-1)!.includes('Chrome') ? fixture('darwin', 'plutil-extract-autoselect.json') : JSON.stringify([OURS]));
    return ok();
  });
  await new MacBrowserSetup({ run: tool.run, managedPrefsDir: d.prefs, firefoxPolicyDir: d.app, stateDir: tempDir('st'), isRoot: true }).remove('MTLS Certificate Authority');
  assert.deepEqual(tool.calls.filter((c) => c.file === '/usr/bin/defaults').map((c) => c.args), [
    ['write', path.join(d.prefs, 'com.google.Chrome'), 'AutoSelectCertificateForUrls', '-array', ADMIN],
    ['delete', path.join(d.prefs, 'com.microsoft.Edge'), 'AutoSelectCertificateForUrls'],
  ]);
});
