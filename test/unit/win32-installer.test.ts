/**
 * The NSIS include (build/installer.nsh) compiles with Debian's makensis inside a minimal installer that provides
 * what electron-builder's template would (APP_EXECUTABLE_FILENAME, the isUpdated test). This checks its syntax and
 * macro use; running it needs Windows, which these machines do not have.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
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
  // The Event Log source: only an administrator can register it, so the (elevated) installer does; uninstall removes it.
  const source = 'SYSTEM\\CurrentControlSet\\Services\\EventLog\\Application\\Okta Device Trust';
  const install = text.slice(text.indexOf('!macro customInstall'), text.indexOf('!macro customUnInstall'));
  assert.ok(install.includes(`WriteRegExpandStr HKLM "${source}" "EventMessageFile"`), 'customInstall registers the Event Log source');
  assert.ok(install.includes(`WriteRegDWORD HKLM "${source}" "TypesSupported" 7`));
  assert.ok(text.slice(text.indexOf('!macro customUnInstall')).includes(`DeleteRegKey HKLM "${source}"`), 'uninstall removes it');
});
