/**
 * Every PowerShell script the agent runs must work in ConstrainedLanguage mode (AppLocker/WDAC fleets, where
 * `-ExecutionPolicy Bypass` does not help). PowerShell cannot run here, so this is a static check over the script
 * text: a list of forbidden constructs, each with the reason from about_Language_Modes. The checker is shown to
 * catch each construct (the old `[Convert]::ToBase64String` list script among them) before it is trusted.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { WRITE_EVENT_LOG_SCRIPT } from '../../src-main/platform/event-sinks.js';
import { CLM_FORBIDDEN, clmViolations, envelope, parsePsAnswer } from '../../src-main/platform/win32-powershell.js';
import { regScripts } from '../../src-main/platform/win32-registry.js';
import { win32Scripts } from '../../src-main/platform/win32-store.js';

const ALL: Record<string, string> = {
  ...Object.fromEntries(Object.entries(win32Scripts).map(([k, v]) => [`store.${k}`, v])),
  ...Object.fromEntries(Object.entries(regScripts).map(([k, v]) => [`registry.${k}`, v])),
  'event-log.write': WRITE_EVENT_LOG_SCRIPT,
};

test('every script the agent runs uses only ConstrainedLanguage constructs and answers through the JSON envelope', () => {
  assert.ok(Object.keys(ALL).length >= 5);
  for (const [name, script] of Object.entries(ALL)) {
    assert.deepEqual(clmViolations(script), [], `${name} is ConstrainedLanguage-safe`);
    assert.match(script, /ConvertTo-Json -InputObject @\{ ok = \$true; data = \$result \}/, `${name} answers in JSON`);
    assert.match(script, /\} catch \{[\s\S]*hresult = \$_\.Exception\.HResult; id = \$_\.FullyQualifiedErrorId[\s\S]*exit 1/, `${name} reports failures by HRESULT and error id`);
    assert.doesNotMatch(script, /\$env:\w+\s*\+?=/, `${name} never writes its inputs`);
  }
});

test('the checker catches each construct ConstrainedLanguage forbids (positive controls)', () => {
  const oldList = "$items = @(Get-ChildItem -LiteralPath 'Cert:\\CurrentUser\\My' | ForEach-Object { [pscustomobject]@{ Thumbprint = $_.Thumbprint; RawData = [Convert]::ToBase64String($_.RawData) } })";
  const reasons = clmViolations(oldList).map((v) => v.reason);
  assert.ok(reasons.some((r) => /static member/.test(r)), '[Convert]::ToBase64String');
  assert.ok(reasons.some((r) => /type literal/.test(r)), '[pscustomobject]');
  const controls: [string, RegExp][] = [
    ['$key = $cert.GetRSAPrivateKey()', /method invocation/],
    ["$x = New-Object System.Net.WebClient", /New-Object/],
    ["Add-Type -TypeDefinition 'public class X {}'", /Add-Type/],
    ['Invoke-Expression $env:CODE', /Invoke-Expression/],
    ['$cert.FriendlyName = "x"', /property assignment/],
    ['$ExecutionContext.SessionState.LanguageMode', /ExecutionContext/],
    ['class Foo { }', /class\/enum/],
    ['$b = [System.Text.Encoding]::UTF8', /static member/],
  ];
  for (const [line, reason] of controls) assert.ok(clmViolations(line).some((v) => reason.test(v.reason)), `${line} is caught`);
  assert.deepEqual(clmViolations("Write-Output 'a [Convert]::X() inside a string is not code' # nor [System.IO.File]::Open() in a comment"), []);
  assert.deepEqual(clmViolations('$n = [int]$env:N; $s = [string]$x.Category; $h = @{}; $h[$k] = 1'), [], 'casts to core types and hashtable indexing are allowed');
  for (const f of CLM_FORBIDDEN) assert.ok(f.reason.length > 20, 'each rule says why');
});

test('the envelope: success, a failure with HRESULT and id, and a script that printed nothing usable', () => {
  const script = envelope("$result = 'x'");
  assert.match(script, /^\$ErrorActionPreference = 'Stop'/, 'non-terminating errors are caught too');
  assert.deepEqual(parsePsAnswer({ code: 0, stdout: 'WARNING: noise\r\n{"ok":true,"data":{"a":1}}\r\n', stderr: '' }), { ok: true, data: { a: 1 } });
  assert.deepEqual(parsePsAnswer({ code: 1, stdout: '{"ok":false,"hresult":-2147024891,"id":"X,Y","category":"PermissionDenied","message":"Zugriff verweigert"}', stderr: '' }),
    { ok: false, hresult: '0x80070005', id: 'X,Y', category: 'PermissionDenied', message: 'Zugriff verweigert' });
  const odd = parsePsAnswer({ code: 0, stdout: '{"ok":true,"data":1}', stderr: '' });
  assert.equal(odd.ok, true);
  const crashed = parsePsAnswer({ code: 1, stdout: '{"ok":true,"data":1}', stderr: '' });
  assert.equal(crashed.ok, false, 'a non-zero exit is never success, whatever was printed');
  const nothing = parsePsAnswer({ code: 255, stdout: '', stderr: '' });
  assert.ok(!nothing.ok && /exited with 255/.test(nothing.message));
});
