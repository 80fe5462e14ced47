/**
 * One browser-policy model, three platforms' formats: each rendering is checked against the vendor's documented
 * format, and all of them must carry the same AutoSelectCertificateForUrls entries.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { removeFirefoxPolicies, writeFirefoxPolicies } from '../../src-main/platform/browser-policy.js';
import * as model from '../../src-main/platform/policy-model.js';
import { tempDir } from '../support/agent.js';

const M: model.BrowserPolicyModel = { patterns: ['https://[*.]example.okta.com', 'https://[*.]example.okta-emea.com'], issuerCN: 'MTLS Certificate Authority' };
const DOCUMENTED = [
  '{"pattern":"https://[*.]example.okta.com","filter":{"ISSUER":{"CN":"MTLS Certificate Authority"}}}',
  '{"pattern":"https://[*.]example.okta-emea.com","filter":{"ISSUER":{"CN":"MTLS Certificate Authority"}}}',
];

function python3(): string | undefined {
  const r = spawnSync('python3', ['-c', 'import plistlib'], { encoding: 'utf8' });
  return r.status === 0 ? 'python3' : undefined;
}

test('entries are exactly the documented {"pattern":"https://[*.]…","filter":{"ISSUER":{"CN":…}}} strings, one per host', () => {
  assert.deepEqual(model.autoSelectEntries(M), DOCUMENTED);
  assert.deepEqual(model.autoSelectEntries({ ...M, patterns: [...M.patterns, M.patterns[0]!] }), DOCUMENTED, 'duplicates collapse');
});

test('Linux: Chromium/Chrome/Edge managed policy JSON holds the entries under AutoSelectCertificateForUrls', () => {
  const json = JSON.parse(model.chromiumPolicyJson(M));
  assert.deepEqual(Object.keys(json), ['AutoSelectCertificateForUrls']);
  assert.deepEqual(json.AutoSelectCertificateForUrls, DOCUMENTED);
});

test('Windows: numbered REG_SZ values 1..n under each browser\'s AutoSelectCertificateForUrls key, same entries', () => {
  const key = 'HKLM\\SOFTWARE\\Policies\\Google\\Chrome\\AutoSelectCertificateForUrls';
  assert.deepEqual(model.registryListValues(key, model.autoSelectEntries(M)), [
    { key, name: '1', type: 'REG_SZ', data: DOCUMENTED[0] },
    { key, name: '2', type: 'REG_SZ', data: DOCUMENTED[1] },
  ]);
  const keys = model.CHROMIUM_BROWSERS.filter((b) => b.windowsKey).map((b) => `${b.windowsKey}\\AutoSelectCertificateForUrls`);
  assert.deepEqual(keys, ['HKLM\\SOFTWARE\\Policies\\Google\\Chrome\\AutoSelectCertificateForUrls', 'HKLM\\SOFTWARE\\Policies\\Microsoft\\Edge\\AutoSelectCertificateForUrls']);
});

test('Windows: the .reg rendering escapes quotes and backslashes and encodes DWORD and MULTI_SZ as regedit does', () => {
  const reg = model.renderRegFile([
    ...model.registryListValues('HKLM\\SOFTWARE\\Policies\\Google\\Chrome\\AutoSelectCertificateForUrls', model.autoSelectEntries({ ...M, patterns: [M.patterns[0]!] })),
    ...model.firefoxRegistryValues(model.firefoxPolicies('win32')),
  ]);
  const lines = reg.split('\r\n');
  assert.equal(lines[0], 'Windows Registry Editor Version 5.00');
  assert.ok(lines.includes('[HKEY_LOCAL_MACHINE\\SOFTWARE\\Policies\\Google\\Chrome\\AutoSelectCertificateForUrls]'));
  assert.ok(lines.includes('"1"="{\\"pattern\\":\\"https://[*.]example.okta.com\\",\\"filter\\":{\\"ISSUER\\":{\\"CN\\":\\"MTLS Certificate Authority\\"}}}"'));
  assert.ok(lines.includes('[HKEY_LOCAL_MACHINE\\SOFTWARE\\Policies\\Mozilla\\Firefox\\Certificates]'));
  assert.ok(lines.includes('"ImportEnterpriseRoots"=dword:00000001'));
  assert.ok(lines.includes('[HKEY_LOCAL_MACHINE\\SOFTWARE\\Policies\\Mozilla\\Firefox\\Preferences\\security.default_personal_cert]'));
  assert.ok(lines.includes('"Value"="Select Automatically"'));
  // "true" as UTF-16LE, NUL-terminated, plus the list's final NUL: Firefox JSON-parses REG_MULTI_SZ to a boolean.
  assert.ok(lines.includes('"Value"=hex(7):74,00,72,00,75,00,65,00,00,00,00,00'));
});

test('macOS: managed preferences for com.google.Chrome and com.microsoft.Edge carry the same entries, as a valid plist', async (t) => {
  const prefs = model.macManagedPreferences(M);
  assert.deepEqual(prefs.map((p) => p.domain), ['com.google.Chrome', 'com.microsoft.Edge']);
  for (const p of prefs) assert.deepEqual(p.values.AutoSelectCertificateForUrls, DOCUMENTED);
  const profile = model.macConfigurationProfile(M, { identifier: 'com.example.test', uuid: model.stableUuid });
  assert.equal(model.stableUuid('x'), model.stableUuid('x'), 'UUIDs are stable across runs');
  assert.match(model.stableUuid('x'), /^[0-9A-F]{8}-[0-9A-F]{4}-5[0-9A-F]{3}-[89AB][0-9A-F]{3}-[0-9A-F]{12}$/);
  const py = python3();
  if (!py) {
    const why = 'skipped: python3 (plistlib) is not installed, so the plist is not parsed by an independent reader';
    console.log(`# ${why}`);
    t.skip(why);
    return;
  }
  // CPython's plistlib is an independent reader of Apple's XML plist format.
  const r = spawnSync(py, ['-c', 'import sys, json, plistlib; print(json.dumps(plistlib.loads(sys.stdin.buffer.read())))'], { input: profile, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const parsed = JSON.parse(r.stdout);
  assert.equal(parsed.PayloadType, 'Configuration');
  assert.deepEqual(parsed.PayloadContent.map((p: { PayloadType: string }) => p.PayloadType), ['com.google.Chrome', 'com.microsoft.Edge', 'com.apple.servicemanagement']);
  for (const p of parsed.PayloadContent.slice(0, 2)) assert.deepEqual(p.AutoSelectCertificateForUrls, DOCUMENTED);
  // Issue 25.11: the managed login items payload, so a user cannot switch the agent off in Login Items (macOS 13+).
  const sm = parsed.PayloadContent[2];
  assert.deepEqual(sm.Rules, [{ RuleType: 'LabelPrefix', RuleValue: 'com.example.devicetrustagent.', Comment: 'Device Trust Agent user task (LaunchAgent) and device task (LaunchDaemon)' }]);
  const { MAC_LABELS } = await import('../../src-main/platform/tasks/darwin.js');
  for (const label of Object.values(MAC_LABELS)) assert.ok(label.startsWith(model.MAC_LAUNCHD_LABEL_PREFIX), `${label} is matched by the rule`);
  const xmlSpecial = spawnSync(py, ['-c', 'import sys, plistlib; print(plistlib.loads(sys.stdin.buffer.read())["k"])'], { input: model.renderPlist({ k: 'a<b & "c"' }), encoding: 'utf8' });
  assert.equal(xmlSpecial.stdout.trim(), 'a<b & "c"');
});

test('Firefox: Linux gets the global selection preference only when an admin opts in; Windows and macOS also the OS store and enterprise roots', () => {
  const auto = { 'security.default_personal_cert': { Value: 'Select Automatically', Status: 'locked' as const } };
  assert.deepEqual(model.firefoxPolicies('linux', { selectAutomatically: true }), { Preferences: auto });
  assert.deepEqual(model.firefoxPolicies('linux'), { Preferences: {}, withdrawn: auto }, 'by default: host-scoped decisions in the profiles instead');
  const win = model.firefoxPolicies('win32');
  assert.deepEqual(win.Certificates, { ImportEnterpriseRoots: true });
  assert.deepEqual(win.Preferences['security.osclientcerts.autoload'], { Value: true, Status: 'locked' });
  assert.deepEqual(model.firefoxRegistryValues(win), [
    { key: 'HKLM\\SOFTWARE\\Policies\\Mozilla\\Firefox\\Certificates', name: 'ImportEnterpriseRoots', type: 'REG_DWORD', data: '1' },
    { key: 'HKLM\\SOFTWARE\\Policies\\Mozilla\\Firefox\\Preferences\\security.default_personal_cert', name: 'Value', type: 'REG_SZ', data: 'Select Automatically' },
    { key: 'HKLM\\SOFTWARE\\Policies\\Mozilla\\Firefox\\Preferences\\security.default_personal_cert', name: 'Status', type: 'REG_SZ', data: 'locked' },
    { key: 'HKLM\\SOFTWARE\\Policies\\Mozilla\\Firefox\\Preferences\\security.osclientcerts.autoload', name: 'Value', type: 'REG_MULTI_SZ', data: 'true' },
    { key: 'HKLM\\SOFTWARE\\Policies\\Mozilla\\Firefox\\Preferences\\security.osclientcerts.autoload', name: 'Status', type: 'REG_SZ', data: 'locked' },
  ]);
});

test('merging keeps others\' AutoSelect entries and replaces ours; removal takes only ours', () => {
  const admin = '{"pattern":"https://[*.]intranet.example.com","filter":{"ISSUER":{"CN":"Example Corp Issuing CA"}}}';
  const stale = '{"pattern":"https://[*.]old.example.okta.com","filter":{"ISSUER":{"CN":"MTLS Certificate Authority"}}}';
  assert.deepEqual(model.mergeAutoSelect([admin, stale, 'not json'], DOCUMENTED, M.issuerCN), [admin, 'not json', ...DOCUMENTED]);
  assert.deepEqual(model.mergeAutoSelect([admin, ...DOCUMENTED], [], M.issuerCN), [admin]);
});

test('policies.json: our leaves are merged into an admin\'s file and taken out again, leaving theirs as it was', () => {
  const dir = path.join(tempDir('ffpol'), 'policies');
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, 'policies.json');
  const admin = { policies: { DisableTelemetry: true, Preferences: { 'browser.startup.homepage': { Value: 'https://intranet.example.com', Status: 'default' } } } };
  fs.writeFileSync(file, JSON.stringify(admin));
  const w = writeFirefoxPolicies([dir], model.firefoxPolicies('linux', { selectAutomatically: true }));
  assert.deepEqual(w.written, [file]);
  const merged = JSON.parse(fs.readFileSync(file, 'utf8'));
  assert.equal(merged.policies.DisableTelemetry, true);
  assert.deepEqual(merged.policies.Preferences['security.default_personal_cert'], { Value: 'Select Automatically', Status: 'locked' });
  assert.deepEqual(merged.policies.Preferences['browser.startup.homepage'], admin.policies.Preferences['browser.startup.homepage']);
  assert.equal(fs.statSync(file).mode & 0o777, 0o644, 'Firefox runs as the user and must read it');
  // Without the opt-in the global preference written by an earlier version is taken out, the admin's stay.
  writeFirefoxPolicies([dir], model.firefoxPolicies('linux'));
  assert.deepEqual(JSON.parse(fs.readFileSync(file, 'utf8')), admin);
  writeFirefoxPolicies([dir], model.firefoxPolicies('linux', { selectAutomatically: true }));
  removeFirefoxPolicies([dir], model.firefoxPolicies('linux'));
  assert.deepEqual(JSON.parse(fs.readFileSync(file, 'utf8')), admin);

  const ownOnly = path.join(tempDir('ffpol'), 'policies');
  writeFirefoxPolicies([ownOnly], model.firefoxPolicies('linux', { selectAutomatically: true }));
  removeFirefoxPolicies([ownOnly], model.firefoxPolicies('linux'));
  assert.ok(!fs.existsSync(path.join(ownOnly, 'policies.json')), 'a file that held only our policy is removed');

  fs.writeFileSync(file, '{ broken');
  const bad = writeFirefoxPolicies([dir], model.firefoxPolicies('linux'));
  assert.equal(bad.written.length, 0);
  assert.match(bad.skipped[0]!.reason, /not valid JSON.*left as it is/);
  assert.equal(fs.readFileSync(file, 'utf8'), '{ broken', 'an admin file we cannot read is never overwritten');
});
