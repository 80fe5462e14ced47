/**
 * The Windows key store: the device key is CREATED inside the TPM (or the software KSP) by certreq and never
 * leaves it. These tests check the certreq policy file and command lines as data, run the TPM → software
 * fallback and the attach checks over recorded outputs (English and German), and read requests that a real
 * tool wrote (OpenSSL here: a PKCS#10 with certreq's BEGIN NEW CERTIFICATE REQUEST header, and a CMS signed
 * request as certreq writes for a renewal).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import type { Command } from '../../src-main/base/exec.js';
import { isAgentError } from '../../src-main/base/errors.js';
import { certreqInf, csrPem, readCertreqOutput, win32KeyCommands, WindowsKeyStore } from '../../src-main/platform/win32-keystore.js';
import { sha1Thumbprint, SOFTWARE_PROVIDER, TPM_PROVIDER } from '../../src-main/platform/win32-store.js';
import { tempDir } from '../support/agent.js';
import { decodePowershell, fail, fixture, ok, scripted } from '../support/commands.js';

const SUBJECT = 'CN=f784e4a2-6026-4aef-8e15-a5c31aa7374e, OU=Device Trust';

test('the certreq policy file: the key is made in the named provider, non-exportable, in the user\'s key set', () => {
  const inf = certreqInf({ subject: SUBJECT, algorithm: 'P-256', provider: TPM_PROVIDER, friendlyName: 'device-trust' });
  assert.ok(inf.includes('\r\n'), 'CRLF, as Windows tools expect');
  const lines = inf.split('\r\n');
  for (const l of ['[NewRequest]', `Subject = "${SUBJECT}"`, 'KeyAlgorithm = ECDSA_P256', 'ProviderName = "Microsoft Platform Crypto Provider"', 'Exportable = FALSE', 'MachineKeySet = FALSE', 'Silent = TRUE', 'RequestType = PKCS10', 'OID = 1.3.6.1.5.5.7.3.2']) {
    assert.ok(lines.includes(l), `${l} in the INF`);
  }
  const rsa = certreqInf({ subject: SUBJECT, algorithm: 'RSA-2048', provider: SOFTWARE_PROVIDER, friendlyName: 'x', renewalOf: 'CBDEE0FA55397CB83B775D3DD78B9FC817452D32', attributes: { DtaDevice: 'f784e4a2', DtaIat: '1790000000' } });
  for (const l of ['KeyAlgorithm = RSA', 'KeyLength = 2048', 'ProviderName = "Microsoft Software Key Storage Provider"', 'RenewalCert = CBDEE0FA55397CB83B775D3DD78B9FC817452D32', 'RequestType = PKCS7', '[RequestAttributes]', 'DtaDevice = "f784e4a2"', 'DtaIat = "1790000000"']) {
    assert.ok(rsa.split('\r\n').includes(l), `${l} in the renewal INF`);
  }
  assert.throws(() => certreqInf({ subject: 'CN=x"\r\nExportable = TRUE', algorithm: 'P-256', provider: TPM_PROVIDER, friendlyName: 'x' }), /quote or a line break/, 'no INF injection (e.g. Exportable = TRUE) through a value');
  assert.deepEqual(win32KeyCommands.newRequest('C:\\t\\r.inf', 'C:\\t\\r.req'), { file: 'certreq.exe', args: ['-new', '-q', '-user', '-f', 'C:\\t\\r.inf', 'C:\\t\\r.req'] });
  assert.deepEqual(win32KeyCommands.accept('C:\\t\\d.cer'), { file: 'certreq.exe', args: ['-accept', '-q', '-user', 'C:\\t\\d.cer'] });
  const m = win32KeyCommands.mtlsCheck('AB', 'https://org.example/mtls');
  assert.deepEqual(m.env, { DTA_THUMBPRINT: 'AB', DTA_URL: 'https://org.example/mtls' });
  assert.match(decodePowershell(m), /Invoke-WebRequest -Uri \$env:DTA_URL -Certificate \$cert/);
});

function realRequests() {
  const dir = tempDir('creq');
  const key = path.join(dir, 'k.pem');
  execFileSync('openssl', ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-subj', '/CN=f784e4a2-6026-4aef-8e15-a5c31aa7374e/OU=Device Trust', '-out', path.join(dir, 'r.csr')], { stdio: 'ignore' });
  const csr = fs.readFileSync(path.join(dir, 'r.csr'), 'utf8');
  execFileSync('openssl', ['req', '-x509', '-key', key, '-subj', '/CN=old', '-days', '2', '-out', path.join(dir, 'old.pem')], { stdio: 'ignore' });
  execFileSync('openssl', ['cms', '-sign', '-nodetach', '-binary', '-outform', 'PEM', '-in', path.join(dir, 'r.csr'), '-signer', path.join(dir, 'old.pem'), '-inkey', key, '-out', path.join(dir, 'r.p7')], { stdio: 'ignore' });
  return { dir, csr, p7: fs.readFileSync(path.join(dir, 'r.p7'), 'utf8') };
}

test('certreq output files: a PKCS#10 under certreq\'s header, and a signed (PKCS#7) renewal request', () => {
  const r = realRequests();
  const certreqStyle = r.csr.replace(/CERTIFICATE REQUEST/g, 'NEW CERTIFICATE REQUEST').replace(/\n/g, '\r\n');
  const out = readCertreqOutput(certreqStyle);
  assert.equal(out.kind, 'pkcs10');
  const back = csrPem(out.der);
  const text = execFileSync('openssl', ['req', '-noout', '-verify', '-subject'], { input: back, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
  assert.match(text, /CN\s*=\s*f784e4a2-6026-4aef-8e15-a5c31aa7374e/, 'the request (self-signed by the new key) verifies');
  assert.equal(readCertreqOutput(r.p7.replace(/-----(BEGIN|END) CMS-----/g, '-----$1 PKCS7-----')).kind, 'pkcs7');
  assert.throws(() => readCertreqOutput(''), /empty request/);
});

const isNew = (c: Command) => c.file === 'certreq.exe' && c.args[0] === '-new';
const providerOf = (c: Command) => /ProviderName = "([^"]+)"/.exec(fs.readFileSync(c.args[4]!, 'utf8'))?.[1];

/** certreq -new that writes `csr` to its output file when `accept(provider)` says so. */
function certreqTool(csr: string, answer: (provider: string) => { code: number; stdout: string } | 'write') {
  const providers: string[] = [];
  const tool = scripted((cmd) => {
    if (isNew(cmd)) {
      const provider = providerOf(cmd)!;
      providers.push(provider);
      const inf = fs.readFileSync(cmd.args[4]!, 'utf8');
      assert.match(inf, /Exportable = FALSE/);
      const a = answer(provider);
      if (a === 'write') {
        fs.writeFileSync(cmd.args[5]!, csr.replace(/CERTIFICATE REQUEST/g, 'NEW CERTIFICATE REQUEST'));
        return ok(fixture('win32', 'certreq-new-ok-de.txt'));
      }
      return { ...a, stderr: '' };
    }
    throw new Error(`unexpected ${cmd.file} ${cmd.args.join(' ')}`);
  });
  return { ...tool, providers };
}

test('generateRequest: in the TPM when it can; a TPM that refuses (German NTE_DEVICE_NOT_READY, NTE_INVALID_PARAMETER) falls back to software with the reason', async () => {
  const r = realRequests();
  const tpm = certreqTool(r.csr, () => 'write');
  const made = await new WindowsKeyStore({ skipTpm: false, workDir: tempDir('kw'), run: tpm.run }).generateRequest({ subject: SUBJECT, algorithm: 'P-256', friendlyName: 'x' });
  assert.equal(made.provider, TPM_PROVIDER);
  assert.equal(made.fallbackReason, undefined);
  assert.equal(made.kind, 'pkcs10');
  assert.equal(tpm.calls.length, 1);

  for (const out of ['certreq-new-tpm-not-ready-de.txt', 'certreq-new-tpm-invalid-parameter.txt']) {
    const t = certreqTool(r.csr, (p) => (p === TPM_PROVIDER ? { code: 1, stdout: fixture('win32', out) } : 'write'));
    const m = await new WindowsKeyStore({ skipTpm: false, workDir: tempDir('kw'), run: t.run }).generateRequest({ subject: SUBJECT, algorithm: 'P-256', friendlyName: 'x' });
    assert.equal(m.provider, SOFTWARE_PROVIDER);
    assert.match(m.fallbackReason ?? '', /the TPM could not create the key \(0x800900(30 NTE_DEVICE_NOT_READY|27 NTE_INVALID_PARAMETER)\)/);
    assert.deepEqual(t.providers, [TPM_PROVIDER, SOFTWARE_PROVIDER]);
  }
  const skip = certreqTool(r.csr, () => 'write');
  const s = await new WindowsKeyStore({ skipTpm: true, workDir: tempDir('kw'), run: skip.run }).generateRequest({ subject: SUBJECT, algorithm: 'RSA-2048', friendlyName: 'x' });
  assert.equal(s.fallbackReason, 'SkipTPM=true');
  assert.deepEqual(skip.providers, [SOFTWARE_PROVIDER]);

  const denied = certreqTool(r.csr, () => ({ code: 1, stdout: 'CertReq: Zugriff verweigert 0x80070005 (WIN32: 5 ERROR_ACCESS_DENIED)' }));
  await assert.rejects(new WindowsKeyStore({ skipTpm: false, workDir: tempDir('kw'), run: denied.run }).generateRequest({ subject: SUBJECT, algorithm: 'P-256', friendlyName: 'x' }),
    (e: unknown) => isAgentError(e) && e.code === 'WINDOWS_KEY_ACCESS_DENIED', 'access denied is not a reason to quietly use software');
  const work = tempDir('kw');
  const bothFail = certreqTool(r.csr, () => ({ code: 1, stdout: fixture('win32', 'certreq-new-tpm-invalid-parameter.txt') }));
  await assert.rejects(new WindowsKeyStore({ skipTpm: false, workDir: work, run: bothFail.run }).generateRequest({ subject: SUBJECT, algorithm: 'P-256', friendlyName: 'x' }), /software key storage provider/);
  assert.deepEqual(fs.readdirSync(work), [], 'the INF and request files are gone');
});

test('attachCertificate: certreq -accept, then listed with its key, in the TPM, and not exportable — or removed again', async () => {
  const dir = tempDir('att');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', path.join(dir, 'k.pem'), '-subj', '/CN=dev', '-days', '2', '-out', path.join(dir, 'c.pem')], { stdio: 'ignore' });
  const certPem = fs.readFileSync(path.join(dir, 'c.pem'), 'utf8');
  const thumb = sha1Thumbprint(certPem);
  const listOut = ok(JSON.stringify({ ok: true, data: [{ Thumbprint: thumb, HasPrivateKey: true, RawData: [...new X509Certificate(certPem).raw] }] }));
  const tool = (show: string, exportCode: number) => scripted((cmd) => {
    if (cmd.file === 'certreq.exe') return ok('');
    if (cmd.args.includes('-addstore')) return ok('');
    if (cmd.args.includes('-exportPFX')) return exportCode === 0 ? ok('') : fail('', 1, fixture('win32', 'certutil-exportpfx-not-exportable-de.txt'));
    if (cmd.args[1] === '-store') return ok(fixture('win32', show).replace(/CBDEE0FA55397CB83B775D3DD78B9FC817452D32/gi, thumb));
    if (/Remove-Item/.test(decodePowershell(cmd))) return ok('{"ok":true,"data":"removed"}');
    return listOut;
  });
  const good = tool('certutil-store-tpm-de.txt', 1);
  const stored = await new WindowsKeyStore({ skipTpm: false, workDir: tempDir('kw'), run: good.run }).attachCertificate(certPem, [certPem], TPM_PROVIDER);
  assert.equal(stored.id, thumb);
  assert.deepEqual(good.calls.map((c) => c.args[0] === '-accept' ? 'accept' : c.args.includes('-addstore') ? 'addCA' : c.args.includes('-exportPFX') ? 'tryExport' : c.args[1] === '-store' ? 'show' : 'list'), ['addCA', 'accept', 'list', 'show', 'tryExport']);

  const sw = tool('certutil-store-software-de.txt', 1);
  await assert.rejects(new WindowsKeyStore({ skipTpm: false, workDir: tempDir('kw'), run: sw.run }).attachCertificate(certPem, [], TPM_PROVIDER), (e: unknown) => isAgentError(e) && e.code === 'WINDOWS_KEY_NOT_IN_TPM');
  assert.ok(sw.calls.some((c) => /Remove-Item/.test(decodePowershell(c))));
  const exp = tool('certutil-store-software.txt', 0);
  await assert.rejects(new WindowsKeyStore({ skipTpm: true, workDir: tempDir('kw'), run: exp.run }).attachCertificate(certPem, [], SOFTWARE_PROVIDER), (e: unknown) => isAgentError(e) && e.code === 'WINDOWS_KEY_EXPORTABLE');
  assert.ok(exp.calls.some((c) => /Remove-Item/.test(decodePowershell(c))));
});

test('discardPending drops only the requests (and keys) waiting with our subject', async () => {
  const tool = scripted((cmd) => {
    const s = decodePowershell(cmd);
    if (/REQUEST'/.test(s) && /Get-ChildItem/.test(s)) return ok(JSON.stringify({ ok: true, data: [{ Thumbprint: 'AA', Subject: 'CN=f784e4a2-6026-4aef-8e15-a5c31aa7374e,OU=Device Trust' }, { Thumbprint: 'BB', Subject: 'CN=someone else' }] }));
    return ok('{"ok":true,"data":"removed"}');
  });
  assert.equal(await new WindowsKeyStore({ skipTpm: false, workDir: tempDir('kw'), run: tool.run }).discardPending(SUBJECT), 1);
  assert.deepEqual(tool.calls.filter((c) => c.env?.DTA_THUMBPRINT).map((c) => c.env!.DTA_THUMBPRINT), ['AA']);
});
