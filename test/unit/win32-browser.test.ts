/**
 * Windows browser setup through reg.exe: exact command lines, merging with an admin's existing
 * AutoSelectCertificateForUrls values (reg query output from test/fixtures/win32), removal on uninstall, and what
 * a user task without administrator rights reports.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Command } from '../../src-main/base/exec.js';
import { WindowsBrowserSetup } from '../../src-main/platform/win32-browser.js';
import { parseRegQuery, regCommands } from '../../src-main/platform/win32-registry.js';
import { fail, fixture, ok, scripted } from '../support/commands.js';

const CHROME = 'HKLM\\SOFTWARE\\Policies\\Google\\Chrome\\AutoSelectCertificateForUrls';
const EDGE = 'HKLM\\SOFTWARE\\Policies\\Microsoft\\Edge\\AutoSelectCertificateForUrls';
const ADMIN_1 = '{"pattern":"https://[*.]intranet.example.com","filter":{"ISSUER":{"CN":"Example Corp Issuing CA"}}}';
const ADMIN_3 = '{"pattern":"https://[*.]vpn.example.com","filter":{"ISSUER":{"CN":"Example Corp Issuing CA"}}}';
const OURS = '{"pattern":"https://[*.]example.okta.com","filter":{"ISSUER":{"CN":"MTLS Certificate Authority"}}}';
const model = { patterns: ['https://[*.]example.okta.com'], issuerCN: 'MTLS Certificate Authority' };

const query = (cmd: Command) => cmd.args[0] === 'query';

test('reg.exe command lines address the 64-bit view', () => {
  assert.deepEqual(regCommands.query(CHROME), { file: 'reg.exe', args: ['query', CHROME, '/reg:64'] });
  assert.deepEqual(regCommands.addValue(CHROME, '1', 'REG_SZ', OURS), { file: 'reg.exe', args: ['add', CHROME, '/v', '1', '/t', 'REG_SZ', '/d', OURS, '/f', '/reg:64'] });
  assert.deepEqual(regCommands.deleteValue(CHROME, '3'), { file: 'reg.exe', args: ['delete', CHROME, '/v', '3', '/f', '/reg:64'] });
  assert.deepEqual(regCommands.deleteKey(CHROME), { file: 'reg.exe', args: ['delete', CHROME, '/f', '/reg:64'] });
});

test('reg query output: key, value names, types and data (DWORD as decimal)', () => {
  const [k] = parseRegQuery(fixture('win32', 'reg-query-settings.txt'));
  assert.equal(k!.key, 'HKEY_LOCAL_MACHINE\\SOFTWARE\\Okta\\DeviceTrust');
  assert.deepEqual(k!.values.map((v) => [v.name, v.type, v.data]), [
    ['OktaOrgUrl', 'REG_SZ', 'https://installer.example.okta.com'],
    ['HttpProxy', 'REG_SZ', 'http://proxy.example.com:3128'],
    ['SkipBrowserSetup', 'REG_SZ', 'true'],
    ['SkipTPM', 'REG_DWORD', '1'],
    ['InstallDir', 'REG_SZ', 'C:\\Program Files\\Okta\\DeviceTrust'],
  ]);
  const [chrome] = parseRegQuery(fixture('win32', 'reg-query-chrome-autoselect.txt'));
  assert.equal(chrome!.values[0]!.data, ADMIN_1, 'JSON data with spaces and quotes is kept whole');
});

test('apply: an admin\'s entries stay, our stale entry is replaced, and the list stays numbered 1..n', async () => {
  const tool = scripted((cmd) => {
    if (query(cmd) && cmd.args[1] === CHROME) return ok(fixture('win32', 'reg-query-chrome-autoselect.txt'));
    if (query(cmd)) return fail(fixture('win32', 'reg-query-not-found.txt'));
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
  const current = `\r\nHKEY_LOCAL_MACHINE\\SOFTWARE\\Policies\\Google\\Chrome\\AutoSelectCertificateForUrls\r\n    1    REG_SZ    ${OURS}\r\n\r\n`;
  const tool = scripted((cmd) => (query(cmd) ? ok(current) : ok()));
  await new WindowsBrowserSetup(tool.run).apply(model);
  assert.equal(tool.calls.filter((c) => c.args[0] === 'add' && c.args[1]!.endsWith('AutoSelectCertificateForUrls')).length, 0);
});

test('a user task without administrator rights reports every key as skipped with reg.exe\'s reason', async () => {
  const tool = scripted((cmd) => (query(cmd) ? fail(fixture('win32', 'reg-query-not-found.txt')) : fail(fixture('win32', 'reg-access-denied.txt'))));
  const res = await new WindowsBrowserSetup(tool.run).apply(model);
  assert.deepEqual(res.written, []);
  assert.deepEqual(res.skipped.map((s) => s.reason), ['ERROR: Access is denied.', 'ERROR: Access is denied.', 'ERROR: Access is denied.']);
});

test('remove (uninstall): ours go, the admin\'s stay renumbered, Firefox values go, missing keys are fine', async () => {
  const tool = scripted((cmd) => {
    if (query(cmd) && cmd.args[1] === CHROME) return ok(fixture('win32', 'reg-query-chrome-autoselect.txt'));
    if (query(cmd)) return fail(fixture('win32', 'reg-query-not-found.txt'));
    if (cmd.args[0] === 'delete' && cmd.args[1]!.includes('osclientcerts')) return fail(fixture('win32', 'reg-query-not-found.txt'));
    return ok(fixture('win32', 'reg-add-ok.txt'));
  });
  const res = await new WindowsBrowserSetup(tool.run).remove('MTLS Certificate Authority');
  assert.deepEqual(res.skipped, []);
  assert.deepEqual(tool.calls.filter((c) => !query(c)).map((c) => c.args.join(' ')), [
    `add ${CHROME} /v 2 /t REG_SZ /d ${ADMIN_3} /f /reg:64`,
    `delete ${CHROME} /v 3 /f /reg:64`,
    'delete HKLM\\SOFTWARE\\Policies\\Mozilla\\Firefox\\Certificates /v ImportEnterpriseRoots /f /reg:64',
    'delete HKLM\\SOFTWARE\\Policies\\Mozilla\\Firefox\\Preferences\\security.default_personal_cert /f /reg:64',
    'delete HKLM\\SOFTWARE\\Policies\\Mozilla\\Firefox\\Preferences\\security.osclientcerts.autoload /f /reg:64',
  ]);
});
