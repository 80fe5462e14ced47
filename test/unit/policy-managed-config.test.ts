/**
 * Managed configuration on each platform, read at run time, and its one precedence:
 * managed configuration > command line > environment > config file > defaults (per setting), where managed configuration is
 *   Windows: HKLM\SOFTWARE\Policies\Okta\DeviceTrust > HKLM\SOFTWARE\Okta\DeviceTrust (64-bit) > (32-bit view)
 *   macOS:   /Library/Managed Preferences/<user>/<domain> > /Library/Managed Preferences/<domain> > /Library/Preferences/<domain>
 *   Linux:   /etc/device-trust-agent/*.json, later names win.
 * Windows and macOS readers run PowerShell (JSON) / plutil, answered here with the outputs in test/fixtures.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { loadConfig } from '../../src-main/core/config.js';
import { isAgentError } from '../../src-main/base/errors.js';
import { createManagedConfigReader } from '../../src-main/platform/managed-config.js';
import { DarwinManagedConfig } from '../../src-main/platform/managed-config-darwin.js';
import { WindowsManagedConfig } from '../../src-main/platform/managed-config-win32.js';
import { tempDir } from '../support/agent.js';
import { fail, fixture, ok, scripted } from '../support/commands.js';

const env = () => ({ HOME: tempDir('mc'), DTA_MANAGED_CONFIG_DIR: '/nonexistent' }) as NodeJS.ProcessEnv;

function windowsRegistry(opts: { policies?: boolean; denied?: boolean } = {}) {
  return scripted((cmd) => {
    const key = cmd.env?.DTA_REG_KEY ?? '';
    if (opts.denied) return { code: 1, stdout: fixture('win32', 'ps-reg-denied-fr.json'), stderr: '' };
    if (key === 'Microsoft.PowerShell.Core\\Registry::HKEY_LOCAL_MACHINE\\SOFTWARE\\Okta\\DeviceTrust') return ok(fixture('win32', 'ps-reg-settings.json'));
    if (key === 'Microsoft.PowerShell.Core\\Registry::HKEY_LOCAL_MACHINE\\SOFTWARE\\Policies\\Okta\\DeviceTrust' && opts.policies) return ok(fixture('win32', 'ps-reg-policies.json'));
    // A German Windows: only the error id says "missing"; the message is not read.
    return { code: 1, stdout: fixture('win32', 'ps-reg-not-found-de.json'), stderr: '' };
  });
}

test('Windows: the installer key, then Group Policy on top; DWORDs and "true" both read as booleans; unknown values ignored', () => {
  const reg = windowsRegistry({ policies: true });
  const reader = new WindowsManagedConfig(reg.runSync);
  const loaded = loadConfig({ env: env(), managed: reader });
  assert.deepEqual(reg.calls.map((c) => c.env?.DTA_REG_KEY), [
    'Microsoft.PowerShell.Core\\Registry::HKEY_LOCAL_MACHINE\\SOFTWARE\\WOW6432Node\\Okta\\DeviceTrust',
    'Microsoft.PowerShell.Core\\Registry::HKEY_LOCAL_MACHINE\\SOFTWARE\\Okta\\DeviceTrust',
    'Microsoft.PowerShell.Core\\Registry::HKEY_LOCAL_MACHINE\\SOFTWARE\\Policies\\Okta\\DeviceTrust',
  ]);
  assert.ok(reg.calls.every((c) => c.file === 'powershell.exe'));
  assert.equal(loaded.config.orgUrl, 'https://gpo.example.okta.com', 'Group Policy wins over the installer');
  assert.equal(loaded.config.httpProxy, 'http://proxy.example.com:3128', 'what Group Policy leaves out comes from the installer key');
  assert.equal(loaded.config.skipTpm, true, 'SkipTPM REG_DWORD 1');
  assert.equal(loaded.config.skipBrowserSetup, false, 'GPO REG_DWORD 0 overrides the installer\'s "true"');
  assert.equal(loaded.sources.orgUrl, 'managed');
  assert.deepEqual(loaded.files, ['HKLM\\SOFTWARE\\Okta\\DeviceTrust', 'HKLM\\SOFTWARE\\Policies\\Okta\\DeviceTrust']);

  const installerOnly = loadConfig({ env: env(), managed: new WindowsManagedConfig(windowsRegistry().runSync) });
  assert.equal(installerOnly.config.orgUrl, 'https://installer.example.okta.com', 'OktaOrgUrl, the original task\'s value name');
  assert.equal(installerOnly.config.skipBrowserSetup, true);
});

test('Windows: a registry that cannot be read (French Windows, SecurityException) is a configuration error naming the key, not "missing"', () => {
  assert.throws(() => loadConfig({ env: env(), managed: new WindowsManagedConfig(windowsRegistry({ denied: true }).runSync) }),
    (e: unknown) => isAgentError(e) && e.failure === 'config' && /HKLM\\SOFTWARE\\Okta\\DeviceTrust/.test(e.message) && /0x8013150a/.test(e.message));
});

function macPrefs(files: Record<string, string>) {
  const root = tempDir('macroot');
  for (const rel of Object.keys(files)) {
    fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
    fs.writeFileSync(path.join(root, rel), 'bplist00 stand-in');
  }
  const tool = scripted((cmd) => {
    const rel = path.relative(root, cmd.args.at(-1)!);
    return files[rel] !== undefined ? ok(fixture('darwin', files[rel]!)) : fail(`${cmd.args.at(-1)}: file does not exist or is not readable`);
  });
  return { root, tool };
}

test('macOS: /Library/Preferences < device profile < user profile; profile bookkeeping keys are not settings', () => {
  const { root, tool } = macPrefs({
    'Library/Preferences/com.example.devicetrustagent.plist': 'plutil-library-preferences.json',
    'Library/Managed Preferences/com.example.devicetrustagent.plist': 'plutil-managed-device.json',
    'Library/Managed Preferences/alice/com.example.devicetrustagent.plist': 'plutil-managed-user.json',
  });
  const loaded = loadConfig({ env: env(), managed: new DarwinManagedConfig(tool.runSync, { user: 'alice', root }) });
  assert.deepEqual(tool.calls.map((c) => c.args.slice(0, 4)), Array(3).fill(['-convert', 'json', '-o', '-']));
  assert.equal(tool.calls[0]!.file, '/usr/bin/plutil');
  assert.equal(loaded.config.orgUrl, 'https://user-profile.example.okta.com');
  assert.equal(loaded.config.httpProxyPacLocation, 'http://pac.example.com/proxy.pac', 'from the device profile');
  assert.equal(loaded.config.httpProxy, 'http://proxy.example.com:3128', 'from /Library/Preferences');
  assert.equal(loaded.config.skipBrowserSetup, true, 'a plist boolean');

  const deviceOnly = macPrefs({ 'Library/Managed Preferences/com.example.devicetrustagent.plist': 'plutil-managed-device.json' });
  assert.equal(loadConfig({ env: env(), managed: new DarwinManagedConfig(deviceOnly.tool.runSync, { user: 'bob', root: deviceOnly.root }) }).config.orgUrl, 'https://profile.example.okta.com');
});

test('Linux: *.json in name order, later wins; the reader is the one createManagedConfigReader picks', () => {
  const dir = tempDir('etcdta');
  fs.writeFileSync(path.join(dir, '10-base.json'), JSON.stringify({ OktaURL: 'https://base.example.okta.com', HttpProxy: 'http://proxy.example.com:3128' }));
  fs.writeFileSync(path.join(dir, '20-site.json'), JSON.stringify({ OktaURL: 'https://site.example.okta.com', SkipTPM: 'true' }));
  const reader = createManagedConfigReader('linux', { DTA_MANAGED_CONFIG_DIR: dir });
  const loaded = loadConfig({ env: { ...env(), DTA_MANAGED_CONFIG_DIR: dir }, managed: reader });
  assert.equal(loaded.config.orgUrl, 'https://site.example.okta.com');
  assert.equal(loaded.config.httpProxy, 'http://proxy.example.com:3128');
  assert.equal(loaded.config.skipTpm, true);
  assert.equal(createManagedConfigReader('win32', {}).constructor.name, 'WindowsManagedConfig');
  assert.equal(createManagedConfigReader('darwin', {}).constructor.name, 'DarwinManagedConfig');
});

test('every setting the admin deployed wins over the config file, the environment and the command line; the rest is the user\'s', () => {
  const e = env();
  const file = path.join(e.HOME!, 'config.json');
  fs.writeFileSync(file, JSON.stringify({ HttpProxy: 'http://file-proxy.example.com:8080', keyAlgorithm: 'RSA-2048' }));
  const managed = new WindowsManagedConfig(windowsRegistry({ policies: true }).runSync);
  const loaded = loadConfig({ env: { ...e, DTA_SKIP_TPM: 'false' }, configFile: file, managed, cli: { OktaURL: 'https://cli.example.okta.com' } });
  assert.equal(loaded.config.orgUrl, 'https://gpo.example.okta.com');
  assert.equal(loaded.sources.orgUrl, 'managed');
  assert.equal(loaded.config.httpProxy, 'http://proxy.example.com:3128');
  assert.equal(loaded.sources.httpProxy, 'managed');
  assert.equal(loaded.config.skipTpm, true);
  assert.equal(loaded.sources.skipTpm, 'managed');
  assert.equal(loaded.sources.skipBrowserSetup, 'managed');
  assert.equal(loaded.config.keyAlgorithm, 'RSA-2048', 'what the admin left open is the user\'s');
  assert.equal(loaded.sources.keyAlgorithm, 'file');
  assert.equal(loaded.managed.orgUrl, 'HKLM\\SOFTWARE\\Policies\\Okta\\DeviceTrust');
  const ignored = loaded.ignored.map((i) => `${i.setting}<${i.source}`).sort();
  assert.deepEqual(ignored, ['httpProxy<file', 'orgUrl<cli', 'skipTpm<env']);
});

test('posture is merged per unit: a user\'s {"posture":{}} or empty adminChecks cannot remove the admin\'s check', () => {
  const e = env();
  const dir = tempDir('mc-posture');
  fs.writeFileSync(path.join(dir, '10.json'), JSON.stringify({ posture: { adminChecks: [{ name: 'edr', kind: 'service', target: 'edr' }], intervalMinutes: 30 } }));
  const file = path.join(e.HOME!, 'config.json');
  const managed = createManagedConfigReader('linux', { DTA_MANAGED_CONFIG_DIR: dir });
  for (const user of [{}, { adminChecks: [] }, { adminChecks: [], screenLockMaxSeconds: 300, intervalMinutes: 5 }]) {
    fs.writeFileSync(file, JSON.stringify({ posture: user }));
    const loaded = loadConfig({ env: e, configFile: file, managed });
    assert.deepEqual(loaded.config.posture?.adminChecks?.map((c) => c.name), ['edr']);
    assert.equal(loaded.config.posture?.intervalMinutes, 30);
    if ('screenLockMaxSeconds' in user) assert.equal(loaded.config.posture?.screenLockMaxSeconds, 300);
  }
});

test('unknown settings are still refused in the agent\'s own profiles (only the shared registry key is lenient)', () => {
  const { root } = macPrefs({ 'Library/Managed Preferences/com.example.devicetrustagent.plist': 'plutil-managed-user.json' });
  const typo = scripted(() => ok('{"OktaUrll":"https://typo.example.okta.com"}'));
  assert.throws(() => loadConfig({ env: env(), managed: new DarwinManagedConfig(typo.runSync, { root }) }),
    (e: unknown) => isAgentError(e) && /Unknown setting "OktaUrll"/.test(e.message) && e.message.includes('com.example.devicetrustagent.plist'));
});

test('loadPlatform picks each platform\'s store and refuses a PEM export where keys are non-exportable', async () => {
  const { loadPlatform } = await import('../../src-main/platform/index.js');
  const createPlatform = async (c: typeof config, os: NodeJS.Platform, deps = {}) => (await loadPlatform(os))(c, deps);
  const { config } = loadConfig({ env: env(), managed: createManagedConfigReader('linux', { DTA_MANAGED_CONFIG_DIR: '/nonexistent' }) });
  assert.match((await createPlatform(config, 'win32')).store.description, /CurrentUser\\My/);
  assert.match((await createPlatform(config, 'darwin', { env: { HOME: '/Users/alice' } })).store.description, /login keychain \/Users\/alice\/Library\/Keychains\/login\.keychain-db/);
  assert.match((await createPlatform(config, 'linux')).store.description, /NSS database/);
  assert.match((await createPlatform({ ...config, exportPemDir: '/tmp/x' }, 'linux')).store.description, /PEM copy in \/tmp\/x/);
  await assert.rejects(createPlatform({ ...config, exportPemDir: '/tmp/x' }, 'win32'), (e: unknown) => isAgentError(e) && e.code === 'EXPORT_PEM_UNSUPPORTED');
  await assert.rejects(loadPlatform('freebsd'), (e: unknown) => isAgentError(e) && e.code === 'PLATFORM_UNSUPPORTED');
});
