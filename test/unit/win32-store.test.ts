/**
 * The Windows store is a thin layer over certutil.exe and Windows PowerShell: these tests assert the exact command
 * lines, parse the tools' outputs (test/fixtures/win32, with their provenance), and drive the store's decisions
 * (TPM, fallback to software, non-exportable check, removal of certificate and key) with those outputs.
 * The PKCS#12 the store hands to certutil is checked with OpenSSL and NSS, which run here.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import type { Command } from '../../src-main/base/exec.js';
import { isAgentError } from '../../src-main/base/errors.js';
import {
  parseCertutilStore, parsePowershellList, parseWindowsError, sha1Thumbprint, SOFTWARE_PROVIDER, TPM_PROVIDER, win32Commands, win32Scripts, WindowsCertificateStore,
} from '../../src-main/platform/win32-store.js';
import { tempDir } from '../support/agent.js';
import { decodePowershell, fail, fixture, ok, scripted } from '../support/commands.js';

const FIXTURE_THUMB = 'CBDEE0FA55397CB83B775D3DD78B9FC817452D32';

test('command lines: PowerShell scripts go encoded with inputs in the environment; certutil verbs are exact', () => {
  const list = win32Commands.list();
  assert.deepEqual([list.file, ...list.args.slice(0, -1)], ['powershell.exe', '-NoLogo', '-NoProfile', '-NonInteractive', '-ExecutionPolicy', 'Bypass', '-EncodedCommand']);
  assert.equal(decodePowershell(list), win32Scripts.list);
  assert.match(win32Scripts.list, /Get-ChildItem -LiteralPath 'Cert:\\CurrentUser\\My' \| Where-Object \{ \$_\.HasPrivateKey \}/);

  const imp = win32Commands.importSoftware('C:\\Users\\alice\\AppData\\Local\\DeviceTrustAgent\\tmp\\pfx-1\\device.pfx', 'one-time-secret');
  assert.deepEqual(imp.env, { DTA_PFX_PATH: 'C:\\Users\\alice\\AppData\\Local\\DeviceTrustAgent\\tmp\\pfx-1\\device.pfx', DTA_PFX_PASSWORD: 'one-time-secret' });
  assert.ok(!imp.args.some((a) => a.includes('one-time-secret')) && !decodePowershell(imp).includes('one-time-secret'), 'the password is not on the PowerShell command line');
  const script = decodePowershell(imp);
  assert.match(script, /Import-PfxCertificate -FilePath \$env:DTA_PFX_PATH -CertStoreLocation 'Cert:\\CurrentUser\\My' -Password \$password/);
  assert.doesNotMatch(script, /-Exportable/, 'imported keys stay non-exportable');

  assert.deepEqual(win32Commands.importTpm('C:\\t\\device.pfx', 'pw'), {
    file: 'certutil.exe', args: ['-user', '-f', '-p', 'pw', '-csp', 'Microsoft Platform Crypto Provider', '-importPFX', 'My', 'C:\\t\\device.pfx', 'NoExport'],
  });
  assert.deepEqual(win32Commands.addIntermediate('C:\\t\\ca-0.cer'), { file: 'certutil.exe', args: ['-user', '-f', '-addstore', 'CA', 'C:\\t\\ca-0.cer'] });
  assert.deepEqual(win32Commands.show(FIXTURE_THUMB), { file: 'certutil.exe', args: ['-user', '-store', 'My', FIXTURE_THUMB] });
  assert.deepEqual(win32Commands.deleteCert(FIXTURE_THUMB), { file: 'certutil.exe', args: ['-user', '-delstore', 'My', FIXTURE_THUMB] });
  assert.deepEqual(win32Commands.deleteKey(TPM_PROVIDER, 'te-x'), { file: 'certutil.exe', args: ['-user', '-csp', 'Microsoft Platform Crypto Provider', '-delkey', 'te-x'] });
});

test('certutil -store output: provider, container, exportability and the key test are read per certificate', () => {
  const [tpm] = parseCertutilStore(fixture('win32', 'certutil-store-tpm.txt'));
  assert.equal(tpm!.thumbprint, FIXTURE_THUMB);
  assert.equal(tpm!.serialNumber, '47e619af0fe5f4fb813a7e7ea3fe6a9c');
  assert.equal(tpm!.issuer, 'CN=MTLS Certificate Authority');
  assert.equal(tpm!.provider, TPM_PROVIDER);
  assert.equal(tpm!.keyContainer, 'te-device-trust-47e619af0fe5f4fb-3f2a9c1e-5b7d-4e0a-9c61-0d2f4b8a7e15');
  assert.equal(tpm!.exportable, false);
  assert.equal(tpm!.keyUsable, true);

  const [sw] = parseCertutilStore(fixture('win32', 'certutil-store-software.txt'));
  assert.equal(sw!.provider, SOFTWARE_PROVIDER);
  assert.equal(sw!.exportable, false);
  assert.equal(parseCertutilStore(fixture('win32', 'certutil-store-exportable.txt'))[0]!.exportable, true);
  assert.equal(parseCertutilStore(fixture('win32', 'certutil-store-tpm-ecdsa-unverified.txt'))[0]!.keyUsable, false);

  const two = parseCertutilStore(fixture('win32', 'certutil-store-two.txt').replace(/\n/g, '\r\n'));
  assert.deepEqual(two.map((e) => [e.thumbprint, e.provider, e.exportable]), [
    ['1C29689A46A2846DF1AC5CD7BAC3BC5A14C45898', SOFTWARE_PROVIDER, true],
    [FIXTURE_THUMB, TPM_PROVIDER, false],
  ], 'CRLF output (as on Windows) parses the same');
  assert.deepEqual(parseCertutilStore(fixture('win32', 'certutil-store-not-found.txt')), []);
});

test('error outputs: access denied, key not exportable, already exists, wrong password, TPM missing or unable', () => {
  const e = (name: string, where: 'stdout' | 'stderr' = 'stdout') => parseWindowsError(where === 'stdout' ? { stdout: fixture('win32', name), stderr: '' } : { stdout: '', stderr: fixture('win32', name) });
  assert.deepEqual(e('certutil-importpfx-access-denied.txt'), { kind: 'access-denied', hresult: '0x80070005', symbol: 'ERROR_ACCESS_DENIED', message: 'Access is denied.' });
  assert.deepEqual(e('certutil-exportpfx-not-exportable.txt'), { kind: 'key-not-exportable', hresult: '0x8009000b', symbol: 'NTE_BAD_KEY_STATE', message: 'Key not valid for use in specified state.' });
  assert.deepEqual(e('certutil-addstore-exists.txt'), { kind: 'already-exists', hresult: '0x80092005', symbol: 'CRYPT_E_EXISTS', message: 'The object or property already exists.' });
  assert.equal(e('certutil-importpfx-no-tpm.txt').kind, 'tpm-unavailable');
  assert.equal(e('certutil-importpfx-tpm-invalid-parameter.txt').kind, 'tpm-import-unsupported');
  assert.equal(e('certutil-importpfx-tpm-not-supported.txt').symbol, 'NTE_NOT_SUPPORTED');
  assert.equal(e('certutil-store-not-found.txt').kind, 'not-found');
  const pw = e('powershell-import-wrong-password.txt', 'stderr');
  assert.equal(pw.kind, 'wrong-password');
  assert.match(pw.message, /^The PFX file you are trying to import requires either a different password/);
  const denied = e('powershell-import-access-denied.txt', 'stderr');
  assert.equal(denied.kind, 'access-denied');
  assert.equal(denied.hresult, '0x80070005');
});

test('the PowerShell list parses as an array, as one unwrapped object, and as empty', () => {
  const two = parsePowershellList(fixture('win32', 'powershell-list.json'));
  assert.deepEqual(two.map((c) => c.thumbprint), ['1C29689A46A2846DF1AC5CD7BAC3BC5A14C45898', FIXTURE_THUMB]);
  assert.equal(sha1Thumbprint(two[1]!.pem), FIXTURE_THUMB, 'RawData is the DER of the listed certificate');
  assert.equal(new X509Certificate(two[1]!.pem).issuer, 'CN=MTLS Certificate Authority');
  assert.deepEqual(parsePowershellList(fixture('win32', 'powershell-list-unwrapped.json')).map((c) => c.thumbprint), [FIXTURE_THUMB]);
  assert.deepEqual(parsePowershellList(fixture('win32', 'powershell-list-empty.json')), []);
  assert.throws(() => parsePowershellList('[{"Thumbprint":"nope","RawData":"x"}]'));
});

/** A fresh key and certificate (OpenSSL), with the fixtures' thumbprint replaced by the new certificate's. */
function identity() {
  const dir = tempDir('w32');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem'),
    '-subj', '/CN=f784e4a2-6026-4aef-8e15-a5c31aa7374e/OU=Device Trust', '-days', '2'], { stdio: 'ignore' });
  const certPem = fs.readFileSync(path.join(dir, 'cert.pem'), 'utf8');
  const keyPem = fs.readFileSync(path.join(dir, 'key.pem'), 'utf8');
  const thumb = sha1Thumbprint(certPem);
  const der = new X509Certificate(certPem).raw.toString('base64');
  const sub = (name: string) => fixture('win32', name).replace(new RegExp(FIXTURE_THUMB, 'gi'), thumb);
  const listOut = `[{"Thumbprint":"${thumb}","RawData":"${der}"}]`;
  return { dir, certPem, keyPem, thumb, sub, listOut };
}

const isImportTpm = (c: Command) => c.file === 'certutil.exe' && c.args.includes('-importPFX');
const isShow = (c: Command) => c.file === 'certutil.exe' && c.args[1] === '-store';
const isList = (c: Command) => c.file === 'powershell.exe' && !c.env;
const isImportSoftware = (c: Command) => c.file === 'powershell.exe' && !!c.env?.DTA_PFX_PATH;

test('with a TPM: the key goes into the Platform Crypto Provider from a valid PKCS#12 that is deleted afterwards', async () => {
  const id = identity();
  let pfxSeen: { file: string; password: string } | undefined;
  const tool = scripted((cmd) => {
    if (cmd.args.includes('-addstore')) return ok('CA "Intermediate Certification Authorities"\r\nCertUtil: -addstore command completed successfully.\r\n');
    if (isImportTpm(cmd)) {
      const file = cmd.args[cmd.args.indexOf('My') + 1]!;
      const password = cmd.args[cmd.args.indexOf('-p') + 1]!;
      // The real certutil reads the file now; OpenSSL (here) must be able to read it with that password.
      const info = execFileSync('openssl', ['pkcs12', '-in', file, '-passin', 'env:PW', '-nodes'], { env: { ...process.env, PW: password }, encoding: 'utf8' });
      assert.equal((info.match(/BEGIN CERTIFICATE/g) ?? []).length, 1, 'only the device certificate (issuing CAs go to the CA store separately)');
      assert.match(info, /BEGIN PRIVATE KEY/);
      assert.equal(fs.statSync(file).mode & 0o777, 0o600);
      pfxSeen = { file, password };
      return ok('CertUtil: -importPFX command completed successfully.\r\n');
    }
    if (isShow(cmd)) return ok(id.sub('certutil-store-tpm.txt'));
    if (isList(cmd)) return ok(id.listOut);
    throw new Error(`unexpected ${cmd.file} ${cmd.args.join(' ')}`);
  });
  const store = new WindowsCertificateStore({ skipTpm: false, workDir: tempDir('w32work'), run: tool.run });
  const caPem = fs.readFileSync(path.join(id.dir, 'cert.pem'), 'utf8');
  const stored = await store.install({ certPem: id.certPem, keyPem: id.keyPem, chainPem: [caPem], label: 'device-trust-test' });
  assert.equal(stored.id, id.thumb);
  assert.match(store.description, /CurrentUser\\My \(key in the TPM\)/);
  assert.ok(pfxSeen && !fs.existsSync(pfxSeen.file), 'the PKCS#12 is gone after the import');
  assert.deepEqual(tool.calls.map((c) => (isImportTpm(c) ? 'importTpm' : isShow(c) ? 'show' : isList(c) ? 'list' : c.args.includes('-addstore') ? 'addCA' : '?')), ['addCA', 'importTpm', 'show', 'show', 'list']);
  assert.ok(!tool.calls.some(isImportSoftware));
});

test('without a TPM (NTE_DEVICE_NOT_FOUND) the key goes to the software provider, and the reason is kept', async () => {
  const id = identity();
  const tool = scripted((cmd) => {
    if (isImportTpm(cmd)) return { code: 1, stdout: id.sub('certutil-importpfx-no-tpm.txt'), stderr: '' };
    if (isImportSoftware(cmd)) return ok(`${id.thumb}\r\n`);
    if (isShow(cmd)) return ok(id.sub('certutil-store-software.txt'));
    if (isList(cmd)) return ok(id.listOut);
    throw new Error(`unexpected ${cmd.args.join(' ')}`);
  });
  const store = new WindowsCertificateStore({ skipTpm: false, workDir: tempDir('w32work'), run: tool.run });
  await store.install({ certPem: id.certPem, keyPem: id.keyPem, chainPem: [], label: 'x' });
  assert.match(store.tpmFallbackReason ?? '', /not found on this platform.*NTE_DEVICE_NOT_FOUND/);
  assert.match(store.description, /Microsoft Software Key Storage Provider/);
  assert.ok(tool.calls.some(isImportSoftware));
});

test('a TPM import certutil cannot use (ECDSA) is removed, key included, and redone in software', async () => {
  const id = identity();
  let shows = 0;
  const tool = scripted((cmd) => {
    if (isImportTpm(cmd)) return ok('CertUtil: -importPFX command completed successfully.\r\n');
    if (isShow(cmd)) return ok(id.sub(shows++ < 2 ? 'certutil-store-tpm-ecdsa-unverified.txt' : 'certutil-store-software.txt'));
    if (cmd.args.includes('-delstore') || cmd.args.includes('-delkey')) return ok('CertUtil: command completed successfully.\r\n');
    if (isImportSoftware(cmd)) return ok(id.thumb);
    if (isList(cmd)) return ok(id.listOut);
    throw new Error(`unexpected ${cmd.args.join(' ')}`);
  });
  const store = new WindowsCertificateStore({ skipTpm: false, workDir: tempDir('w32work'), run: tool.run });
  await store.install({ certPem: id.certPem, keyPem: id.keyPem, chainPem: [], label: 'x' });
  assert.ok(tool.lines().includes(`certutil.exe -user -delstore My ${id.thumb}`));
  assert.ok(tool.lines().includes('certutil.exe -user -csp Microsoft Platform Crypto Provider -delkey te-device-trust-47e619af0fe5f4fb-3f2a9c1e-5b7d-4e0a-9c61-0d2f4b8a7e15'), 'the TPM key is deleted too');
  assert.match(store.tpmFallbackReason ?? '', /could not be verified/);
  assert.match(store.description, /Software Key Storage Provider/);
});

test('SkipTPM=true never touches the TPM', async () => {
  const id = identity();
  const tool = scripted((cmd) => (isImportSoftware(cmd) ? ok(id.thumb) : isShow(cmd) ? ok(id.sub('certutil-store-software.txt')) : ok(id.listOut)));
  const store = new WindowsCertificateStore({ skipTpm: true, workDir: tempDir('w32work'), run: tool.run });
  await store.install({ certPem: id.certPem, keyPem: id.keyPem, chainPem: [], label: 'x' });
  assert.ok(!tool.calls.some(isImportTpm));
  assert.equal(store.tpmFallbackReason, 'SkipTPM=true');
});

test('access denied is a clear local error; an exportable key is removed again instead of kept', async () => {
  const id = identity();
  const denied = scripted((cmd) => (isImportSoftware(cmd) ? fail(fixture('win32', 'powershell-import-access-denied.txt')) : ok()));
  await assert.rejects(new WindowsCertificateStore({ skipTpm: true, workDir: tempDir('w32work'), run: denied.run }).install({ certPem: id.certPem, keyPem: id.keyPem, chainPem: [], label: 'x' }),
    (e: unknown) => isAgentError(e) && e.failure === 'local' && e.code === 'WINDOWS_STORE_ACCESS_DENIED' && /Access is denied/.test(e.message) && !!e.remedy);

  const exportable = scripted((cmd) => (isImportSoftware(cmd) ? ok(id.thumb) : isShow(cmd) ? ok(id.sub('certutil-store-exportable.txt')) : ok()));
  await assert.rejects(new WindowsCertificateStore({ skipTpm: true, workDir: tempDir('w32work'), run: exportable.run }).install({ certPem: id.certPem, keyPem: id.keyPem, chainPem: [], label: 'x' }),
    (e: unknown) => isAgentError(e) && e.code === 'WINDOWS_KEY_EXPORTABLE');
  assert.ok(exportable.lines().includes(`certutil.exe -user -delstore My ${id.thumb}`), 'the exportable key was removed');
});

test('list and remove: certificate and key go; removing what is already gone is not an error', async () => {
  const tool = scripted((cmd) => (isList(cmd) ? ok(fixture('win32', 'powershell-list.json')) : isShow(cmd) ? ok(fixture('win32', 'certutil-store-tpm.txt')) : ok()));
  const store = new WindowsCertificateStore({ skipTpm: false, workDir: tempDir('w32work'), run: tool.run });
  const listed = await store.list();
  assert.deepEqual(listed.map((c) => [c.id, c.info.issuerCN]), [['1C29689A46A2846DF1AC5CD7BAC3BC5A14C45898', 'Alice Example S/MIME'], [FIXTURE_THUMB, 'MTLS Certificate Authority']]);
  await store.remove(FIXTURE_THUMB);
  assert.deepEqual(tool.lines().slice(1), [
    `certutil.exe -user -store My ${FIXTURE_THUMB}`,
    `certutil.exe -user -delstore My ${FIXTURE_THUMB}`,
    'certutil.exe -user -csp Microsoft Platform Crypto Provider -delkey te-device-trust-47e619af0fe5f4fb-3f2a9c1e-5b7d-4e0a-9c61-0d2f4b8a7e15',
  ]);
  const gone = scripted(() => ({ code: 1, stdout: fixture('win32', 'certutil-store-not-found.txt'), stderr: '' }));
  await new WindowsCertificateStore({ skipTpm: false, workDir: tempDir('w32work'), run: gone.run }).remove(FIXTURE_THUMB);
  assert.equal(gone.calls.length, 1);
});
