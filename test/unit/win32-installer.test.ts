/**
 * The NSIS include (build/installer.nsh) compiles with Debian's makensis inside a minimal installer that provides
 * what electron-builder's template would (APP_EXECUTABLE_FILENAME, the isUpdated test). This checks its syntax and
 * macro use; running it needs Windows, which these machines do not have.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { test } from 'node:test';
import { REPO, tempDir } from '../support/agent.js';

test('build/installer.nsh compiles: parameters to HKLM managed configuration, agent install/uninstall calls', (t) => {
  if (spawnSync('sh', ['-c', 'command -v makensis']).status !== 0) {
    const why = 'skipped: makensis is not installed (apt install nsis)';
    console.log(`# ${why}`);
    t.skip(why);
    return;
  }
  const dir = tempDir('nsis');
  const nsh = path.join(REPO, 'build', 'installer.nsh');
  fs.writeFileSync(path.join(dir, 'harness.nsi'), `Unicode true
Name "Device Trust Agent"
OutFile "${path.join(dir, 'dta-installer.exe')}"
RequestExecutionLevel admin
InstallDir "$PROGRAMFILES64\\Device Trust Agent"
!define APP_EXECUTABLE_FILENAME "Device Trust Agent.exe"
!include LogicLib.nsh
; electron-builder defines isUpdated as a LogicLib test on its --updated flag.
!macro _isUpdated _a _b _t _f
  StrCmp "0" "1" \`\${_t}\` \`\${_f}\`
!macroend
!define isUpdated \`"" isUpdated ""\`
!include "${nsh}"
Function .onInit
  !insertmacro customInit
FunctionEnd
Section "install"
  SetOutPath $INSTDIR
  !insertmacro customInstall
  WriteUninstaller "$INSTDIR\\uninstall.exe"
SectionEnd
Section "un.install"
  !insertmacro customUnInstall
SectionEnd
`);
  const r = spawnSync('makensis', ['-V2', '-WX', path.join(dir, 'harness.nsi')], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.ok(fs.statSync(path.join(dir, 'dta-installer.exe')).size > 10_000, 'an installer was written');
  const text = fs.readFileSync(nsh, 'utf8');
  for (const [param, value] of [['OktaURL', 'OktaOrgUrl'], ['HttpProxy', 'HttpProxy'], ['HttpProxyPacLocation', 'HttpProxyPacLocation'], ['SkipBrowserSetup', 'SkipBrowserSetup'], ['SkipTPM', 'SkipTPM']]) {
    assert.ok(text.includes(`!insertmacro DTA_WriteParam "${param}" "${value}"`), `${param}= lands in ${value}`);
  }
  assert.match(text, /!define DTA_SETTINGS_KEY "SOFTWARE\\Okta\\DeviceTrust"/);
  // Issue 25.3: both tasks from the installer, no first user pass as the installing account (SYSTEM under SCCM).
  const install = text.slice(text.indexOf('!macro customInstall'), text.indexOf('!macro customUnInstall'));
  const calls = [...install.matchAll(/nsExec::ExecToLog '\$\{DTA_AGENT\} ([^']*)'/g)].map((m) => m[1]);
  assert.deepEqual(calls, ['install --device --no-run', 'install --user --no-run', 'run --device']);
  assert.doesNotMatch(install, /run --user|'\$\{DTA_AGENT\} install'/, 'never a user pass as the installer\'s account');
  // Issue 25.4: the Event Log source comes with `install --device` (so the MSI has it too), not from NSIS alone.
  assert.doesNotMatch(text, /EventLog\\Application/);
  const uninstall = text.slice(text.indexOf('!macro customUnInstall'));
  assert.ok(uninstall.includes("'${DTA_AGENT} uninstall --device'") && uninstall.includes("'${DTA_AGENT} uninstall --user'"), 'uninstall removes both tasks');
});

test('issue 25.3/25.4: the MSI gets the same agent calls (electron-builder msiProjectCreated hook), deferred as LocalSystem, in order', (t) => {
  const require = createRequire(import.meta.url);
  const hook = require(path.join(REPO, 'build', 'msi-project.cjs')) as { patchMsiProject: (s: string) => string };
  const yml = fs.readFileSync(path.join(REPO, 'electron-builder.yml'), 'utf8');
  assert.match(yml, /^msiProjectCreated: build\/msi-project\.cjs$/m, 'electron-builder calls the hook');
  const wxs = fs.readFileSync(path.join(REPO, 'test', 'fixtures', 'win32', 'msi-project-electron-builder.wxs'), 'utf8');
  const out = hook.patchMsiProject(wxs);
  assert.equal(hook.patchMsiProject(out), out, 'patching twice changes nothing');
  const actions = [...out.matchAll(/<CustomAction Id="(Dta\w+)" Directory="APPLICATIONFOLDER" ExeCommand="([^"]*)" Execute="deferred" Impersonate="no" Return="(\w+)"\/>/g)]
    .map((m) => [m[1], m[2]!.replace(/&quot;/g, '"'), m[3]]);
  const agent = '"[APPLICATIONFOLDER]resources\\headless\\node.exe" "[APPLICATIONFOLDER]resources\\headless\\device-trust-agent.mjs"';
  assert.deepEqual(actions, [
    ['DtaInstallDeviceTask', `${agent} install --device --no-run`, 'check'],
    ['DtaInstallUserTask', `${agent} install --user --no-run`, 'check'],
    ['DtaFirstDevicePass', `${agent} run --device`, 'ignore'],
    ['DtaUninstallUserTask', `${agent} uninstall --user`, 'ignore'],
    ['DtaUninstallDeviceTask', `${agent} uninstall --device`, 'ignore'],
    ['DtaRemoveBrowserPolicy', `${agent} browser-setup --remove`, 'ignore'],
  ]);
  assert.equal((out.match(/<InstallExecuteSequence>/g) ?? []).length, 1, 'one sequence element: the template\'s runAfterFinish one is reused');
  assert.ok(out.indexOf('<CustomAction Id="DtaInstallDeviceTask"') < out.lastIndexOf('</Product>'));
  if (spawnSync('sh', ['-c', 'command -v xmllint']).status === 0) {
    const r = spawnSync('xmllint', ['--noout', '-'], { input: out, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
  }
  // The sequence as Windows Installer will number it, by a real WiX compiler (msitools' wixl): install calls after
  // InstallFiles in order, uninstall calls before RemoveFiles in order. wixl lacks a few elements electron-builder's
  // template uses (Condition, Secure, ComponentGroup) and type-34 custom actions, so those are reduced first.
  if (spawnSync('sh', ['-c', 'command -v wixl && command -v msiinfo']).status !== 0) {
    const why = 'skipped: wixl/msiinfo are not installed (apt install wixl msitools)';
    console.log(`# ${why}`);
    t.skip(why);
    return;
  }
  const dir = tempDir('wixl');
  fs.writeFileSync(path.join(dir, 'Device Trust Agent.exe'), 'MZ');
  let reduced = out.replace(/\s*<Condition Message[^\n]*<\/Condition>/, '').replace(/ Secure="yes"/g, '');
  const group = /\n\s*<ComponentGroup Id[^>]*>([\s\S]*?)<\/ComponentGroup>/.exec(reduced)!;
  reduced = reduced.slice(0, group.index) + reduced.slice(group.index + group[0].length);
  reduced = reduced.replace('<Directory Id="APPLICATIONFOLDER" Name="Device Trust Agent"/>', `<Directory Id="APPLICATIONFOLDER" Name="Device Trust Agent">${group[1]}</Directory>`)
    .replace('<ComponentGroupRef Id="ProductComponents"/>', '<ComponentRef Id="mainExecutableComponent"/>');
  fs.writeFileSync(path.join(dir, 'p.wxs'), reduced);
  const c = spawnSync('wixl', ['-a', 'x64', '-o', 'p.msi', 'p.wxs'], { cwd: dir, encoding: 'utf8' });
  assert.equal(c.status, 0, c.stderr);
  const rows = spawnSync('msiinfo', ['export', path.join(dir, 'p.msi'), 'InstallExecuteSequence'], { encoding: 'utf8' }).stdout.split(/\r?\n/).slice(3)
    .map((l) => l.split('\t')).filter((r) => r.length === 3).map(([a, cond, n]) => ({ a: a!, cond: cond!, n: Number(n) })).sort((x, y) => x.n - y.n);
  const at = (a: string) => rows.find((r) => r.a === a)!;
  assert.ok(at('InstallFiles').n < at('DtaInstallDeviceTask').n && at('DtaInstallDeviceTask').n < at('DtaInstallUserTask').n && at('DtaInstallUserTask').n < at('DtaFirstDevicePass').n && at('DtaFirstDevicePass').n < at('InstallFinalize').n);
  // Uninstall: wixl does not number a chain anchored on InstallInitialize as WiX does (checked by hand: it puts the
  // head before InstallInitialize), so the authored chain is what is checked here; a real electron-builder build
  // is in docs/VERIFY-WINDOWS.md.
  assert.match(out, /Action="DtaUninstallUserTask" After="InstallInitialize"[\s\S]*Action="DtaUninstallDeviceTask" After="DtaUninstallUserTask"[\s\S]*Action="DtaRemoveBrowserPolicy" After="DtaUninstallDeviceTask"/);
  assert.equal(at('DtaInstallDeviceTask').cond, 'NOT REMOVE');
  assert.equal(at('DtaUninstallDeviceTask').cond, 'REMOVE="ALL" AND NOT UPGRADINGPRODUCTCODE', 'a major upgrade keeps the tasks');
});
