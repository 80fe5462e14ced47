/**
 * Windows browser setup: registry reads through PowerShell (JSON; "missing" vs "denied" from error ids, so a
 * German or French Windows behaves the same), writes through reg.exe judged by exit code. Exact command lines,
 * merging with an admin's existing AutoSelectCertificateForUrls values, removal on uninstall, and what a user task
 * without administrator rights reports.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Command } from '../../src-main/base/exec.js';
import { WindowsBrowserSetup } from '../../src-main/platform/win32-browser.js';
import { psRegistryPath, regCommands } from '../../src-main/platform/win32-registry.js';
import { decodePowershell, fail, fixture, ok, scripted } from '../support/commands.js';

const CHROME = 'HKLM\\SOFTWARE\\Policies\\Google\\Chrome\\AutoSelectCertificateForUrls';
const EDGE = 'HKLM\\SOFTWARE\\Policies\\Microsoft\\Edge\\AutoSelectCertificateForUrls';
const ADMIN_1 = '{"pattern":"https://[*.]intranet.example.com","filter":{"ISSUER":{"CN":"Example Corp Issuing CA"}}}';
const ADMIN_3 = '{"pattern":"https://[*.]vpn.example.com","filter":{"ISSUER":{"CN":"Example Corp Issuing CA"}}}';
const OURS = '{"pattern":"https://[*.]example.okta.com","filter":{"ISSUER":{"CN":"MTLS Certificate Authority"}}}';
const model = { patterns: ['https://[*.]example.okta.com'], issuerCN: 'MTLS Certificate Authority' };

const query = (cmd: Command) => cmd.file === 'powershell.exe';
const keyOf = (cmd: Command) => cmd.env?.DTA_REG_KEY ?? '';
const psKey = (k: string) => psRegistryPath(k);
const notFound = () => ({ code: 1, stdout: fixture('win32', 'ps-reg-not-found-de.json'), stderr: '' });

test('registry command lines: PowerShell reads the key given through the environment; reg.exe writes the 64-bit view', () => {
  const read = regCommands.read(CHROME);
  assert.equal(read.file, 'powershell.exe');
  assert.deepEqual(read.env, { DTA_REG_KEY: 'Microsoft.PowerShell.Core\\Registry::HKEY_LOCAL_MACHINE\\SOFTWARE\\Policies\\Google\\Chrome\\AutoSelectCertificateForUrls' });
  assert.match(decodePowershell(read), /Get-ItemPropertyValue -LiteralPath \$env:DTA_REG_KEY -Name \$name/);
  assert.equal(psRegistryPath('HKLM\\SOFTWARE\\Okta\\DeviceTrust', 32), 'Microsoft.PowerShell.Core\\Registry::HKEY_LOCAL_MACHINE\\SOFTWARE\\WOW6432Node\\Okta\\DeviceTrust');
  assert.deepEqual(regCommands.addValue(CHROME, '1', 'REG_SZ', OURS), { file: 'reg.exe', args: ['add', CHROME, '/v', '1', '/t', 'REG_SZ', '/d', OURS, '/f', '/reg:64'] });
  assert.deepEqual(regCommands.deleteValue(CHROME, '3'), { file: 'reg.exe', args: ['delete', CHROME, '/v', '3', '/f', '/reg:64'] });
  assert.deepEqual(regCommands.deleteKey(CHROME), { file: 'reg.exe', args: ['delete', CHROME, '/f', '/reg:64'] });
});

test('apply: an admin\'s entries stay, our stale entry is replaced, and the list stays numbered 1..n', async () => {
  const tool = scripted((cmd) => {
    if (query(cmd) && keyOf(cmd) === psKey(CHROME)) return ok(fixture('win32', 'ps-reg-chrome-autoselect.json'));
    if (query(cmd)) return notFound();
    return ok(fixture('win32', 'reg-add-ok.txt'));
  });
  const res = await new WindowsBrowserSetup(tool.run).apply(model);
  assert.deepEqual(res.skipped, []);
  assert.deepEqual(res.written, [CHROME, EDGE, 'HKLM\\SOFTWARE\\Policies\\Mozilla\\Firefox']);
  const writes = tool.calls.filter((c) => !query(c)).map((c) => c.args);
  assert.deepEqual(writes.slice(0, 3), [
    ['add', CHROME, '/v', '2', '/t', 'REG_SZ', '/d', ADMIN_3, '/f', '/reg:64'],
    ['add', CHROME, '/v', '3', '/t', 'REG_SZ', '/d', OURS, '/f', '/reg:64'],
    ['add', EDGE, '/v', '1', '/t', 'REG_SZ', '/d', OURS, '/f', '/reg:64'],
  ], 'value 1 (the admin\'s) is untouched; nothing else of the admin\'s is lost');
  assert.deepEqual(writes.slice(3).map((a) => `${a[1]} ${a[3]} ${a[5]} ${a[7]}`), [
    'HKLM\\SOFTWARE\\Policies\\Mozilla\\Firefox\\Certificates ImportEnterpriseRoots REG_DWORD 1',
    'HKLM\\SOFTWARE\\Policies\\Mozilla\\Firefox\\Preferences\\security.default_personal_cert Value REG_SZ Select Automatically',
    'HKLM\\SOFTWARE\\Policies\\Mozilla\\Firefox\\Preferences\\security.default_personal_cert Status REG_SZ locked',
    'HKLM\\SOFTWARE\\Policies\\Mozilla\\Firefox\\Preferences\\security.osclientcerts.autoload Value REG_MULTI_SZ true',
    'HKLM\\SOFTWARE\\Policies\\Mozilla\\Firefox\\Preferences\\security.osclientcerts.autoload Status REG_SZ locked',
  ]);
});

test('a second apply with the policy already in place writes nothing', async () => {
  const current = JSON.stringify({ ok: true, data: { values: { 1: OURS } } });
  const tool = scripted((cmd) => (query(cmd) ? ok(current) : ok()));
  await new WindowsBrowserSetup(tool.run).apply(model);
  assert.equal(tool.calls.filter((c) => c.args[0] === 'add' && c.args[1]!.endsWith('AutoSelectCertificateForUrls')).length, 0);
});

test('a user task without administrator rights reports every key as skipped with the reason (for people, in their language)', async () => {
  const tool = scripted((cmd) => (query(cmd) ? notFound() : fail(fixture('win32', 'reg-access-denied.txt'))));
  const res = await new WindowsBrowserSetup(tool.run).apply(model);
  assert.deepEqual(res.written, []);
  assert.deepEqual(res.skipped.map((s) => s.reason), ['ERROR: Access is denied.', 'ERROR: Access is denied.', 'ERROR: Access is denied.']);
  const fr = scripted((cmd) => (query(cmd) ? { code: 1, stdout: fixture('win32', 'ps-reg-denied-fr.json'), stderr: '' } : ok()));
  const denied = await new WindowsBrowserSetup(fr.run).apply(model);
  assert.equal(denied.skipped.length, 2, 'an unreadable Chrome/Edge list is not overwritten blindly');
  assert.match(denied.skipped[0]!.reason, /autorisé.*0x8013150a/);
  assert.ok(!fr.calls.some((c) => c.file === 'reg.exe' && c.args[1]!.endsWith('AutoSelectCertificateForUrls')));
});

test('remove (uninstall): ours go, the admin\'s stay renumbered, Firefox values go, missing keys are fine', async () => {
  const tool = scripted((cmd) => {
    if (query(cmd) && keyOf(cmd) === psKey(CHROME)) return ok(fixture('win32', 'ps-reg-chrome-autoselect.json'));
    if (query(cmd) && keyOf(cmd).includes('osclientcerts')) return notFound();
    if (query(cmd) && keyOf(cmd).includes('Firefox')) return ok(JSON.stringify({ ok: true, data: { values: { ImportEnterpriseRoots: 1, Value: 'x' } } }));
    if (query(cmd)) return notFound();
    return ok(fixture('win32', 'reg-add-ok.txt'));
  });
  const res = await new WindowsBrowserSetup(tool.run).remove('MTLS Certificate Authority');
  assert.deepEqual(res.skipped, []);
  assert.deepEqual(tool.calls.filter((c) => !query(c)).map((c) => c.args.join(' ')), [
    `add ${CHROME} /v 2 /t REG_SZ /d ${ADMIN_3} /f /reg:64`,
    `delete ${CHROME} /v 3 /f /reg:64`,
    'delete HKLM\\SOFTWARE\\Policies\\Mozilla\\Firefox\\Certificates /v ImportEnterpriseRoots /f /reg:64',
    'delete HKLM\\SOFTWARE\\Policies\\Mozilla\\Firefox\\Preferences\\security.default_personal_cert /f /reg:64',
  ], 'a key that is already gone (German "not found" by error id) is not deleted, so no reg.exe error text is ever read');
});
