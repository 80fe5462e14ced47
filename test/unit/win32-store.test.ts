/**
 * The Windows store is a thin layer over certutil.exe and Windows PowerShell: these tests assert the exact command
 * lines and drive the store's decisions (TPM or software, fallback, non-exportable check, removal) with recorded
 * outputs from test/fixtures/win32 (provenance in its README) — in English, German and French, because the store
 * must decide the same way whatever language Windows prints in. The PKCS#12 handed to certutil is read with OpenSSL.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import type { Command } from '../../src-main/base/exec.js';
import { isAgentError } from '../../src-main/base/errors.js';
import { parsePsAnswer } from '../../src-main/platform/win32-powershell.js';
import {
  parseCertutilError, parsePowershellList, sha1Thumbprint, showsTpmProvider, TPM_PROVIDER, win32Commands, win32Scripts, WindowsCertificateStore,
} from '../../src-main/platform/win32-store.js';
import { tempDir } from '../support/agent.js';
import { decodePowershell, fail, fixture, ok, scripted } from '../support/commands.js';

const FIXTURE_THUMB = 'CBDEE0FA55397CB83B775D3DD78B9FC817452D32';
const envOk = (data: unknown) => ok(`${JSON.stringify({ ok: true, data })}\r\n`);
const envFail = (f: Record<string, unknown>) => ({ code: 1, stdout: `${JSON.stringify({ ok: false, ...f })}\r\n`, stderr: '' });

test('command lines: PowerShell scripts go encoded with inputs in the environment; certutil verbs are exact', () => {
  const list = win32Commands.list();
  assert.deepEqual([list.file, ...list.args.slice(0, -1)], ['powershell.exe', '-NoLogo', '-NoProfile', '-NonInteractive', '-ExecutionPolicy', 'Bypass', '-OutputFormat', 'Text', '-EncodedCommand']);
  assert.equal(decodePowershell(list), win32Scripts.list);
  assert.match(win32Scripts.list, /Get-ChildItem -LiteralPath 'Cert:\\CurrentUser\\My'/);
  assert.doesNotMatch(win32Scripts.list, /Convert\]::/, 'no .NET call that ConstrainedLanguage forbids');

  const imp = win32Commands.importSoftware('C:\\Users\\alice\\AppData\\Local\\DeviceTrustAgent\\tmp\\pfx-1\\device.pfx', 'one-time-secret');
  assert.deepEqual(imp.env, { DTA_PFX_PATH: 'C:\\Users\\alice\\AppData\\Local\\DeviceTrustAgent\\tmp\\pfx-1\\device.pfx', DTA_PFX_PASSWORD: 'one-time-secret' });
  assert.ok(!imp.args.some((a) => a.includes('one-time-secret')) && !decodePowershell(imp).includes('one-time-secret'), 'the password is not on the PowerShell command line');
  assert.match(decodePowershell(imp), /Import-PfxCertificate -FilePath \$env:DTA_PFX_PATH -CertStoreLocation 'Cert:\\CurrentUser\\My' -Password \$password/);
  assert.doesNotMatch(decodePowershell(imp), /-Exportable/, 'imported keys stay non-exportable');

  assert.deepEqual(win32Commands.importTpm('C:\\t\\device.pfx', 'pw'), {
    file: 'certutil.exe', args: ['-user', '-f', '-p', 'pw', '-csp', 'Microsoft Platform Crypto Provider', '-importPFX', 'My', 'C:\\t\\device.pfx', 'NoExport'],
  });
  assert.deepEqual(win32Commands.addIntermediate('C:\\t\\ca-0.cer'), { file: 'certutil.exe', args: ['-user', '-f', '-addstore', 'CA', 'C:\\t\\ca-0.cer'] });
  assert.deepEqual(win32Commands.tryExport(FIXTURE_THUMB, 'C:\\t\\p.pfx', 'x'), { file: 'certutil.exe', args: ['-user', '-f', '-p', 'x', '-exportPFX', 'My', FIXTURE_THUMB, 'C:\\t\\p.pfx'] });
  const rm = win32Commands.remove(FIXTURE_THUMB);
  assert.deepEqual(rm.env, { DTA_THUMBPRINT: FIXTURE_THUMB });
  assert.match(decodePowershell(rm), /Remove-Item -LiteralPath \$path -DeleteKey/, 'the certificate goes with its key, whichever provider holds it');
});

test('certutil failures are classified by HRESULT, identically in English, German and French', () => {
  const e = (name: string) => parseCertutilError({ stdout: fixture('win32', name), stderr: '' });
  assert.deepEqual(e('certutil-importpfx-access-denied.txt'), { kind: 'access-denied', hresult: '0x80070005', symbol: 'ERROR_ACCESS_DENIED', message: 'Access is denied.' });
  assert.deepEqual(e('certutil-importpfx-access-denied-fr.txt'), { kind: 'access-denied', hresult: '0x80070005', symbol: 'ERROR_ACCESS_DENIED', message: 'Accès refusé.' });
  assert.equal(e('certutil-exportpfx-not-exportable.txt').kind, 'key-not-exportable');
  assert.equal(e('certutil-exportpfx-not-exportable-de.txt').kind, 'key-not-exportable');
  assert.equal(e('certutil-addstore-exists.txt').kind, 'already-exists');
  assert.equal(e('certutil-importpfx-no-tpm.txt').kind, 'tpm-unavailable');
  assert.equal(e('certutil-importpfx-tpm-invalid-parameter.txt').kind, 'tpm-import-unsupported');
  assert.deepEqual(e('certutil-importpfx-tpm-invalid-parameter-de.txt'), { kind: 'tpm-import-unsupported', hresult: '0x80090027', symbol: 'NTE_INVALID_PARAMETER', message: 'Falscher Parameter.' });
  assert.equal(e('certutil-importpfx-tpm-not-supported.txt').symbol, 'NTE_NOT_SUPPORTED');
  assert.equal(e('certutil-store-not-found.txt').kind, 'not-found');
  assert.equal(parseCertutilError({ stdout: 'Unerwarteter Fehler', stderr: '' }).kind, 'other', 'no HRESULT: no guessing from words');
  assert.ok(showsTpmProvider(fixture('win32', 'certutil-store-tpm.txt')) && showsTpmProvider(fixture('win32', 'certutil-store-tpm-de.txt')), 'the provider name is not translated');
  assert.ok(!showsTpmProvider(fixture('win32', 'certutil-store-software.txt')) && !showsTpmProvider(fixture('win32', 'certutil-store-software-de.txt')));
});

test('PowerShell answers: the JSON envelope, and CLIXML error streams (a real capture) when the script never ran', () => {
  const list = parsePsAnswer(ok(fixture('win32', 'ps-list.json')));
  assert.ok(list.ok);
  const two = parsePowershellList(list.ok ? list.data : undefined);
  assert.deepEqual(two.map((c) => c.thumbprint), ['1C29689A46A2846DF1AC5CD7BAC3BC5A14C45898', FIXTURE_THUMB]);
  assert.equal(sha1Thumbprint(two[1]!.pem), FIXTURE_THUMB, 'RawData (a byte array in JSON) is the DER of the listed certificate');
  assert.equal(new X509Certificate(two[1]!.pem).issuer, 'CN=MTLS Certificate Authority');
  const one = parsePsAnswer(ok(fixture('win32', 'ps-list-one.json')));
  assert.deepEqual(parsePowershellList(one.ok ? one.data : undefined).map((c) => c.thumbprint), [FIXTURE_THUMB], 'one unwrapped object');
  const none = parsePsAnswer(ok(fixture('win32', 'ps-list-empty.json')));
  assert.deepEqual(parsePowershellList(none.ok ? none.data : undefined), []);
  assert.throws(() => parsePowershellList([{ Thumbprint: 'nope', RawData: [1] }]));

  const clixml = parsePsAnswer({ code: 1, stdout: '', stderr: fixture('win32', 'clixml-command-not-found.txt') });
  assert.equal(clixml.ok, false);
  assert.equal(!clixml.ok && clixml.message, "Bogus : The term 'Bogus' is not recognized as the name of a cmdlet, function, script file, or operable program. Check the spelling of the name, or if a path was included, verify that the path is correct and try again.");
  const de = parsePsAnswer({ code: 1, stdout: '', stderr: fixture('win32', 'clixml-import-wrong-password-de.txt') });
  assert.ok(!de.ok && de.hresult === '0x80070056', 'the HRESULT inside a German CLIXML record is found');
  assert.ok(!de.ok && /^Import-PfxCertificate : Das angegebene Netzwerkkennwort ist falsch/.test(de.message) && !/<S|_x000D_/.test(de.message));
});

/**
 * A key and certificate (OpenSSL), made once per kind for this file: an RSA key costs up to a second on a loaded
 * machine, and the tests only read them (each test has its own stand-in Windows).
 */
const made = new Map<'ec' | 'rsa', { dir: string; certPem: string; keyPem: string }>();
function identity(kind: 'ec' | 'rsa' = 'ec') {
  if (!made.has(kind)) {
    const dir = tempDir('w32');
    execFileSync('openssl', ['req', '-x509', '-newkey', kind === 'ec' ? 'ec' : 'rsa:2048', ...(kind === 'ec' ? ['-pkeyopt', 'ec_paramgen_curve:P-256'] : []), '-nodes', '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem'),
      '-subj', '/CN=f784e4a2-6026-4aef-8e15-a5c31aa7374e/OU=Device Trust', '-days', '2'], { stdio: 'ignore' });
    made.set(kind, { dir, certPem: fs.readFileSync(path.join(dir, 'cert.pem'), 'utf8'), keyPem: fs.readFileSync(path.join(dir, 'key.pem'), 'utf8') });
  }
  const { dir, certPem, keyPem } = made.get(kind)!;
  const thumb = sha1Thumbprint(certPem);
  const raw = [...new X509Certificate(certPem).raw];
  const sub = (name: string) => fixture('win32', name).replace(new RegExp(FIXTURE_THUMB, 'gi'), thumb);
  const listOut = (hasKey = true) => envOk([{ Thumbprint: thumb, HasPrivateKey: hasKey, RawData: raw }]);
  return { dir, certPem, keyPem, thumb, sub, listOut };
}

const ps = (c: Command) => (c.file === 'powershell.exe' ? decodePowershell(c) : '');
const isImportTpm = (c: Command) => c.file === 'certutil.exe' && c.args.includes('-importPFX');
const isExport = (c: Command) => c.file === 'certutil.exe' && c.args.includes('-exportPFX');
const isShow = (c: Command) => c.file === 'certutil.exe' && c.args[1] === '-store';
const isList = (c: Command) => /Get-ChildItem/.test(ps(c));
const isImportSoftware = (c: Command) => !!c.env?.DTA_PFX_PATH;
const isRemove = (c: Command) => /Remove-Item/.test(ps(c));
const notExportable = () => ({ code: 1, stdout: fixture('win32', 'certutil-exportpfx-not-exportable-de.txt'), stderr: '' });

test('RSA with a TPM: the key goes into the Platform Crypto Provider from a valid PKCS#12 that is deleted afterwards; German output changes nothing', async () => {
  const id = identity('rsa');
  let pfxSeen: { file: string; password: string } | undefined;
  const tool = scripted((cmd) => {
    if (cmd.args.includes('-addstore')) return ok('CertUtil: -addstore-Befehl wurde erfolgreich ausgeführt.\r\n');
    if (isImportTpm(cmd)) {
      const file = cmd.args[cmd.args.indexOf('My') + 1]!;
      const password = cmd.args[cmd.args.indexOf('-p') + 1]!;
      const info = execFileSync('openssl', ['pkcs12', '-in', file, '-passin', 'env:PW', '-nodes'], { env: { ...process.env, PW: password }, encoding: 'utf8' });
      assert.equal((info.match(/BEGIN CERTIFICATE/g) ?? []).length, 1, 'only the device certificate (issuing CAs go to the CA store separately)');
      assert.equal(fs.statSync(file).mode & 0o777, 0o600);
      pfxSeen = { file, password };
      return ok('CertUtil: -importPFX-Befehl wurde erfolgreich ausgeführt.\r\n');
    }
    if (isShow(cmd)) return ok(id.sub('certutil-store-tpm-de.txt'));
    if (isList(cmd)) return id.listOut();
    if (isExport(cmd)) return notExportable();
    throw new Error(`unexpected ${cmd.file} ${cmd.args.join(' ')}`);
  });
  const store = new WindowsCertificateStore({ skipTpm: false, workDir: tempDir('w32work'), run: tool.run });
  const stored = await store.install({ certPem: id.certPem, keyPem: id.keyPem, chainPem: [id.certPem], label: 'device-trust-test' });
  assert.equal(stored.id, id.thumb);
  assert.match(store.description, /CurrentUser\\My \(key in the TPM\)/);
  assert.ok(pfxSeen && !fs.existsSync(pfxSeen.file), 'the PKCS#12 is gone after the import');
  assert.deepEqual(tool.calls.map((c) => (isImportTpm(c) ? 'importTpm' : isShow(c) ? 'show' : isList(c) ? 'list' : isExport(c) ? 'tryExport' : c.args.includes('-addstore') ? 'addCA' : '?')),
    ['addCA', 'importTpm', 'show', 'list', 'list', 'tryExport']);
});

test('RSA without a TPM (NTE_DEVICE_NOT_FOUND) or with the Windows 10 import bug (German NTE_INVALID_PARAMETER): software, reason kept', async () => {
  for (const out of ['certutil-importpfx-no-tpm.txt', 'certutil-importpfx-tpm-invalid-parameter-de.txt']) {
    const id = identity('rsa');
    const tool = scripted((cmd) => {
      if (isImportTpm(cmd)) return fail('', 1, id.sub(out));
      if (isImportSoftware(cmd)) return envOk({ Thumbprint: id.thumb });
      if (isList(cmd)) return id.listOut();
      if (isExport(cmd)) return notExportable();
      throw new Error(`unexpected ${cmd.args.join(' ')}`);
    });
    const store = new WindowsCertificateStore({ skipTpm: false, workDir: tempDir('w32work'), run: tool.run });
    await store.install({ certPem: id.certPem, keyPem: id.keyPem, chainPem: [], label: 'x' });
    assert.match(store.tpmFallbackReason ?? '', /the TPM import failed \(0x800900(35|27) NTE_(DEVICE_NOT_FOUND|INVALID_PARAMETER)\)/);
    assert.match(store.description, /Microsoft Software Key Storage Provider/);
  }
});

test('an ECDSA key never goes through certutil\'s TPM import (known to fail); SkipTPM never touches the TPM', async () => {
  const id = identity('ec');
  const tool = scripted((cmd) => (isImportSoftware(cmd) ? envOk({ Thumbprint: id.thumb }) : isExport(cmd) ? notExportable() : id.listOut()));
  const store = new WindowsCertificateStore({ skipTpm: false, workDir: tempDir('w32work'), run: tool.run });
  await store.install({ certPem: id.certPem, keyPem: id.keyPem, chainPem: [], label: 'x' });
  assert.ok(!tool.calls.some(isImportTpm));
  assert.match(store.tpmFallbackReason ?? '', /ECDSA/);
  const rsa = identity('rsa');
  const skip = scripted((cmd) => (isImportSoftware(cmd) ? envOk({ Thumbprint: rsa.thumb }) : isExport(cmd) ? notExportable() : rsa.listOut()));
  const s2 = new WindowsCertificateStore({ skipTpm: true, workDir: tempDir('w32work'), run: skip.run });
  await s2.install({ certPem: rsa.certPem, keyPem: rsa.keyPem, chainPem: [], label: 'x' });
  assert.ok(!skip.calls.some(isImportTpm));
  assert.equal(s2.tpmFallbackReason, 'SkipTPM=true');
});

test('a TPM import certutil reports as done but whose key is not in the TPM provider is removed and redone in software', async () => {
  const id = identity('rsa');
  const tool = scripted((cmd) => {
    if (isImportTpm(cmd)) return ok('CertUtil: -importPFX command completed successfully.\r\n');
    if (isShow(cmd)) return ok(id.sub('certutil-store-software.txt'));
    if (isRemove(cmd)) return envOk('removed');
    if (isImportSoftware(cmd)) return envOk({ Thumbprint: id.thumb });
    if (isList(cmd)) return id.listOut();
    if (isExport(cmd)) return notExportable();
    throw new Error(`unexpected ${cmd.args.join(' ')}`);
  });
  const store = new WindowsCertificateStore({ skipTpm: false, workDir: tempDir('w32work'), run: tool.run });
  await store.install({ certPem: id.certPem, keyPem: id.keyPem, chainPem: [], label: 'x' });
  assert.ok(tool.calls.some((c) => isRemove(c) && c.env?.DTA_THUMBPRINT === id.thumb));
  assert.match(store.tpmFallbackReason ?? '', /could not be verified \(not in the TPM provider\)/);
});

test('access denied (French certutil, PowerShell envelope) is a clear local error; an exportable key is removed again', async () => {
  const id = identity('rsa');
  const fr = scripted((cmd) => (isImportTpm(cmd) ? fail('', 1, fixture('win32', 'certutil-importpfx-access-denied-fr.txt')) : ok()));
  await assert.rejects(new WindowsCertificateStore({ skipTpm: false, workDir: tempDir('w32work'), run: fr.run }).install({ certPem: id.certPem, keyPem: id.keyPem, chainPem: [], label: 'x' }),
    (e: unknown) => isAgentError(e) && e.failure === 'local' && e.code === 'WINDOWS_STORE_ACCESS_DENIED' && /0x80070005/.test(e.message) && !!e.remedy);
  const denied = scripted((cmd) => (isImportSoftware(cmd) ? envFail({ hresult: -2147024891, id: 'System.UnauthorizedAccessException,Microsoft.CertificateServices.Commands.ImportPfxCertificate', message: 'Zugriff verweigert' }) : ok()));
  await assert.rejects(new WindowsCertificateStore({ skipTpm: true, workDir: tempDir('w32work'), run: denied.run }).install({ certPem: id.certPem, keyPem: id.keyPem, chainPem: [], label: 'x' }),
    (e: unknown) => isAgentError(e) && e.code === 'WINDOWS_STORE_ACCESS_DENIED');
  const pw = scripted((cmd) => (isImportSoftware(cmd) ? { code: 1, stdout: '', stderr: fixture('win32', 'clixml-import-wrong-password-de.txt') } : ok()));
  await assert.rejects(new WindowsCertificateStore({ skipTpm: true, workDir: tempDir('w32work'), run: pw.run }).install({ certPem: id.certPem, keyPem: id.keyPem, chainPem: [], label: 'x' }),
    (e: unknown) => isAgentError(e) && e.code === 'WINDOWS_STORE_WRONG_PASSWORD' && /1709/.test(e.remedy ?? ''));

  const exportable = scripted((cmd) => (isImportSoftware(cmd) ? envOk({ Thumbprint: id.thumb }) : isExport(cmd) ? ok('CertUtil: -exportPFX command completed successfully.\r\n') : isRemove(cmd) ? envOk('removed') : id.listOut()));
  await assert.rejects(new WindowsCertificateStore({ skipTpm: true, workDir: tempDir('w32work'), run: exportable.run }).install({ certPem: id.certPem, keyPem: id.keyPem, chainPem: [], label: 'x' }),
    (e: unknown) => isAgentError(e) && e.code === 'WINDOWS_KEY_EXPORTABLE');
  assert.ok(exportable.calls.some(isRemove), 'the exportable key was removed');
  assert.ok(fs.readdirSync(path.join(tempDir('w32work'))).length === 0);
});

test('list keeps only certificates with a private key; remove tolerates "already gone" (German PathNotFound)', async () => {
  const id = identity();
  const tool = scripted((cmd) => (isList(cmd) ? envOk([{ Thumbprint: id.thumb, HasPrivateKey: true, RawData: [...new X509Certificate(id.certPem).raw] }, { Thumbprint: FIXTURE_THUMB, HasPrivateKey: false, RawData: [...new X509Certificate(fixture('win32', 'device-cert.pem')).raw] }]) : envOk('removed')));
  const store = new WindowsCertificateStore({ skipTpm: false, workDir: tempDir('w32work'), run: tool.run });
  assert.deepEqual((await store.list()).map((c) => c.id), [id.thumb], 'a certificate without its key is not ours to present');
  const gone = scripted(() => envFail({ hresult: -2146233087, id: 'PathNotFound,Microsoft.PowerShell.Commands.RemoveItemCommand', message: 'Der Pfad kann nicht gefunden werden, da er nicht vorhanden ist.' }));
  await new WindowsCertificateStore({ skipTpm: false, workDir: tempDir('w32work'), run: gone.run }).remove(FIXTURE_THUMB);
  assert.equal(gone.calls.length, 1);
  const denied = scripted(() => envFail({ hresult: -2147024891, id: 'RemoveItemUnauthorizedAccessError,Microsoft.PowerShell.Commands.RemoveItemCommand', message: 'Accès refusé' }));
  await assert.rejects(new WindowsCertificateStore({ skipTpm: false, workDir: tempDir('w32work'), run: denied.run }).remove(FIXTURE_THUMB), (e: unknown) => isAgentError(e) && e.code === 'WINDOWS_STORE_ACCESS_DENIED');
});
