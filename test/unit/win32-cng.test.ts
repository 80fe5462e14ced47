/**
 * The Windows device key store in CNG (issue 13, Windows): the key is CREATED in the Platform Crypto Provider (TPM)
 * or the Software KSP, non-exportable, and every signature comes from that provider. Windows cannot run here, so:
 * every command line is checked as data; the provider is played by a small stand-in that answers each script the
 * way the script's JSON envelope does (keys made with Node's crypto, public blobs in the documented
 * BCRYPT_*_BLOB layout); failures are recorded answers (test/fixtures/win32, reconstructed: see its README).
 * What the user would notice is asserted: the CSR and renewal token verify, status says TPM or software and why,
 * and each failure says what to do.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import { test } from 'node:test';
import type { Command } from '../../src-main/base/exec.js';
import { runCommand } from '../../src-main/base/exec.js';
import { isAgentError } from '../../src-main/base/errors.js';
import { createCsr, keyInStore } from '../../src-main/core/keys/keys.js';
import { signRenewalToken } from '../../src-main/core/auth/renewal-token.js';
import { createDarwinPlatform } from '../../src-main/platform/darwin.js';
import { createWin32Platform } from '../../src-main/platform/win32.js';
import { clmViolations } from '../../src-main/platform/win32-powershell.js';
import { SOFTWARE_PROVIDER, TPM_PROVIDER, win32Scripts } from '../../src-main/platform/win32-store.js';
import { CNG_TIMEOUT_MS, cngPublicBlobToSpki, parseCngAnswer, spkiToCngPublicBlob, win32CngCommands, win32CngScripts, WindowsCngKeyStore } from '../../src-main/platform/win32-cng.js';
import { tempDir } from '../support/agent.js';
import { decodePowershell, fail, fixture, ok } from '../support/commands.js';
import { windowsStandIn } from '../support/win32-cng.js';
import { oneTimePassword } from '../../src-main/platform/pkcs12.js';

test('command lines as data: PowerShell with the script encoded, inputs only in the environment, a deadline on each', () => {
  const create = win32CngCommands.create(TPM_PROVIDER, 'DeviceTrust-00112233445566778899aabbccddeeff', 'P-256');
  assert.equal(create.file, 'powershell.exe');
  assert.deepEqual(create.args.slice(0, -1), ['-NoLogo', '-NoProfile', '-NonInteractive', '-ExecutionPolicy', 'Bypass', '-OutputFormat', 'Text', '-EncodedCommand']);
  assert.deepEqual(create.env, { DTA_PROVIDER: TPM_PROVIDER, DTA_KEY_NAME: 'DeviceTrust-00112233445566778899aabbccddeeff', DTA_ALGORITHM: 'P-256' });
  assert.equal(create.timeoutMs, CNG_TIMEOUT_MS);
  const script = decodePowershell(create);
  assert.equal(script, win32CngScripts.create);
  for (const line of ['$p.ExportPolicy = [System.Security.Cryptography.CngExportPolicies]::None', '$p.KeyUsage = [System.Security.Cryptography.CngKeyUsages]::Signing', '$key = [System.Security.Cryptography.CngKey]::Create($alg, $env:DTA_KEY_NAME, $p)']) {
    assert.ok(script.includes(line), `create: ${line}`);
  }
  assert.ok(!script.includes(TPM_PROVIDER) && !script.includes('DeviceTrust-'), 'no input is pasted into the script text');
  const sign = win32CngCommands.sign(SOFTWARE_PROVIDER, 'DeviceTrust-00112233445566778899aabbccddeeff', Buffer.alloc(32, 7));
  assert.equal(sign.env!.DTA_DIGEST, Buffer.alloc(32, 7).toString('base64'), 'only the SHA-256 digest goes to Windows');
  assert.match(decodePowershell(sign), /ECDsaCng[\s\S]*SignHash\(\$digest\)/);
  assert.match(decodePowershell(sign), /RSASignaturePadding\]::Pkcs1/);
  assert.deepEqual(win32CngCommands.repair(TPM_PROVIDER, 'AB12'), { file: 'certutil.exe', args: ['-user', '-silent', '-csp', TPM_PROVIDER, '-repairstore', 'My', 'AB12'], timeoutMs: CNG_TIMEOUT_MS });
  assert.deepEqual(win32CngCommands.addCertificate('C:\\t\\d.cer').args, ['-user', '-f', '-addstore', 'My', 'C:\\t\\d.cer']);
  for (const [name, s] of Object.entries(win32CngScripts)) {
    // CNG is reachable only through .NET: these scripts need FullLanguage, and say so first thing instead of failing half-way.
    assert.ok(clmViolations(s).length > 0, `${name} uses .NET (not ConstrainedLanguage-safe, by necessity)`);
    assert.match(s, /try \{\n {2}if \(\[string\]\$ExecutionContext\.SessionState\.LanguageMode -ne 'FullLanguage'\) \{ throw 'DTA_CONSTRAINED_LANGUAGE' \}/, `${name} checks the language mode first`);
    assert.match(s, /while \(\$e\.InnerException\) \{ \$e = \$e\.InnerException \}/, `${name} reports the innermost HRESULT`);
    assert.doesNotMatch(s, /\$env:\w+\s*\+?=/, `${name} never writes its inputs`);
  }
});

test('public key blobs in the BCRYPT_ECCPUBLIC_BLOB / BCRYPT_RSAPUBLIC_BLOB layouts become the same SubjectPublicKeyInfo', () => {
  for (const [type, opts] of [['ec', { namedCurve: 'P-256' }], ['rsa', { modulusLength: 2048 }]] as const) {
    const { publicKey } = crypto.generateKeyPairSync(type as 'ec', opts as { namedCurve: string });
    const blob = spkiToCngPublicBlob(publicKey);
    assert.equal(blob.subarray(0, 4).toString('latin1'), type === 'ec' ? 'ECS1' : 'RSA1', 'the magic Windows writes');
    const back = cngPublicBlobToSpki(blob);
    assert.deepEqual(back.spki, publicKey.export({ type: 'spki', format: 'der' }));
    assert.equal(back.algorithm, type === 'ec' ? 'P-256' : 'RSA-2048');
  }
  const { publicKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const generic = spkiToCngPublicBlob(publicKey);
  generic.write('ECDP', 0, 'latin1');
  assert.deepEqual(cngPublicBlobToSpki(generic).spki, publicKey.export({ type: 'spki', format: 'der' }), 'the generic ECDSA magic of named-curve keys');
  const p384 = spkiToCngPublicBlob(crypto.generateKeyPairSync('ec', { namedCurve: 'P-384' }).publicKey);
  assert.throws(() => cngPublicBlobToSpki(p384), /not P-256/);
  assert.throws(() => cngPublicBlobToSpki(Buffer.from('XXXX0000')), /unknown blob magic/);
});

function issueWith(caKey: string, spki: Buffer, subject: string, dir: string): string {
  const pub = `${dir}/pub.pem`;
  fs.writeFileSync(pub, crypto.createPublicKey({ key: spki, format: 'der', type: 'spki' }).export({ type: 'spki', format: 'pem' }));
  const caCert = `${dir}/ca.crt`;
  execFileSync('openssl', ['req', '-x509', '-new', '-key', caKey, '-subj', '/CN=MTLS Certificate Authority', '-days', '2', '-out', caCert], { stdio: 'ignore' });
  return execFileSync('openssl', ['x509', '-new', '-force_pubkey', pub, '-subj', subject, '-CA', caCert, '-CAkey', caKey, '-days', '2'], { encoding: 'utf8' });
}


test('with a TPM: the key is made in the Platform Crypto Provider; the CSR and the renewal token the agent signs through it verify; the certificate is linked to it', async () => {
  const win = windowsStandIn();
  const store = new WindowsCngKeyStore({ skipTpm: false, workDir: tempDir('cng'), run: win.run });
  const info = await store.info();
  assert.deepEqual([info.protection, info.reason], ['tpm', 'TPM 2.0 through the Microsoft Platform Crypto Provider']);
  const k = await store.generate('P-256', 'device-trust-key');
  assert.match(k.id, /^tpm:DeviceTrust-[0-9a-f]{32}$/);
  assert.equal(k.protection, 'tpm');
  const created = win.calls.find((c) => c.env?.DTA_KEY_NAME)!;
  assert.equal(created.env!.DTA_PROVIDER, TPM_PROVIDER, 'created in the TPM provider');

  const key = await keyInStore(store, k);
  assert.equal(key.privateKey, undefined, 'the agent holds no private key');
  const csr = await createCsr(key, 'CN=f784e4a2-6026-4aef-8e15-a5c31aa7374e');
  const verified = execFileSync('openssl', ['req', '-noout', '-verify'], { input: csr, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
  assert.equal(verified, '', 'openssl accepts the request signed by the provider');

  const certPem = issueWith(writeCaKey(), k.spki, '/CN=f784e4a2-6026-4aef-8e15-a5c31aa7374e', tempDir('cngiss'));
  const token = await signRenewalToken({ currentKey: key, currentCertPem: certPem, deviceId: 'f784e4a2-6026-4aef-8e15-a5c31aa7374e', newKeyThumbprint: 'x' });
  const [h, p, s] = token.split('.');
  assert.ok(crypto.verify('sha256', Buffer.from(`${h}.${p}`), { key: crypto.createPublicKey({ key: k.spki, format: 'der', type: 'spki' }), dsaEncoding: 'ieee-p1363' }, Buffer.from(s!, 'base64url')), 'the renewal token verifies with the certificate\'s key');

  const n = win.calls.length;
  const stored = await store.attach(k.id, { certPem, chainPem: [], label: 'device-trust' });
  const scriptName = (c: Command) => Object.entries({ ...win32CngScripts, list: win32Scripts.list }).find(([, v]) => v === decodePowershell(c))?.[0];
  const steps = win.calls.slice(n).map((c) => (c.file === 'certutil.exe' ? c.args.find((a) => a.startsWith('-') && !['-user', '-f', '-silent', '-csp', '-p'].includes(a)) : scriptName(c)));
  assert.deepEqual(steps, ['find', '-addstore', '-repairstore', 'list', '-store', '-exportPFX'], 'key still there, add, link to the key, listed with its key, in the TPM provider, cannot be exported');
  assert.equal(win.calls.find((c) => c.args.includes('-repairstore'))!.args[3], TPM_PROVIDER);
  assert.equal(stored.id, new crypto.X509Certificate(certPem).fingerprint.replace(/:/g, ''));
  assert.equal(store.keyIdOf(stored.id), k.id);

  await store.remove(k.id);
  assert.equal(win.keys.size, 0, 'the key is deleted from its provider');
  assert.equal(await store.find(k.id), undefined, 'and is gone');
});

function writeCaKey(): string {
  const f = `${tempDir('cngk')}/ca.pem`;
  fs.writeFileSync(f, crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }));
  return f;
}

test('no TPM, TPM not ready, lockout, SkipTPM: the key goes to the Software KSP and status says why', async () => {
  for (const [answer, reason] of [
    ['cng-probe-no-tpm.json', /^no TPM \(0x8028400f\)$/],
    ['cng-probe-not-ready-de.json', /^the TPM is not ready \(0x80090030\)$/],
    ['cng-probe-lockout.json', /dictionary-attack lockout \(0x80280921\)/],
  ] as const) {
    const win = windowsStandIn({ tpm: fixture('win32', answer) });
    const store = new WindowsCngKeyStore({ skipTpm: false, workDir: tempDir('cng'), run: win.run });
    const info = await store.info();
    assert.equal(info.protection, 'software', answer);
    assert.match(info.reason, reason);
    const k = await store.generate('RSA-2048', 'device-trust-key');
    assert.match(k.id, /^sw:/);
    assert.equal(win.calls.at(-1)!.env!.DTA_PROVIDER, SOFTWARE_PROVIDER);
    const sig = await store.sign(k.id, Buffer.from('data'));
    assert.ok(crypto.verify('sha256', Buffer.from('data'), crypto.createPublicKey({ key: k.spki, format: 'der', type: 'spki' }), sig), 'RSA PKCS#1 v1.5 signature verifies');
  }
  const win = windowsStandIn();
  const store = new WindowsCngKeyStore({ skipTpm: true, workDir: tempDir('cng'), run: win.run });
  assert.deepEqual(await store.info(), { protection: 'software', reason: 'SkipTPM=true', description: `${SOFTWARE_PROVIDER}, non-exportable` });
  assert.equal(win.calls.length, 0, 'SkipTPM: the TPM is not even probed');
});

test('failures say what to do: ConstrainedLanguage, key gone, exportable key, bad signature, no answer, PowerShell that could not start', async () => {
  const clm = windowsStandIn({ tpm: fixture('win32', 'cng-constrained-language.json') });
  await assert.rejects(new WindowsCngKeyStore({ skipTpm: false, workDir: tempDir('cng'), run: clm.run }).info(),
    (e: unknown) => isAgentError(e) && e.code === 'WINDOWS_KEY_CONSTRAINED_LANGUAGE' && /AppLocker\/WDAC/.test(e.remedy ?? ''));

  const gone = windowsStandIn();
  const store = new WindowsCngKeyStore({ skipTpm: true, workDir: tempDir('cng'), run: gone.run });
  await assert.rejects(store.sign('sw:DeviceTrust-00112233445566778899aabbccddeeff', Buffer.from('x')),
    (e: unknown) => isAgentError(e) && e.code === 'WINDOWS_KEY_KEY_MISSING' && /0x80090016/.test(e.message) && /--forceRenewal/.test(e.remedy ?? ''));
  assert.equal(await store.find('sw:DeviceTrust-00112233445566778899aabbccddeeff'), undefined, 'a key that is gone is "not found", not an error');

  const exportable = windowsStandIn({ createAnswer: (cmd) => {
    const { publicKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
    return ok(JSON.stringify({ ok: true, data: { exists: true, name: cmd.env!.DTA_KEY_NAME, provider: SOFTWARE_PROVIDER, algorithm: 'ECDSA_P256', exportPolicy: 'AllowExport', exportable: true, publicBlob: spkiToCngPublicBlob(publicKey).toString('base64') } }));
  } });
  await assert.rejects(new WindowsCngKeyStore({ skipTpm: true, workDir: tempDir('cng'), run: exportable.run }).generate('P-256', 'k'),
    (e: unknown) => isAgentError(e) && e.code === 'WINDOWS_KEY_EXPORTABLE');

  const forged = windowsStandIn({ signAnswer: () => ok(JSON.stringify({ ok: true, data: { signature: crypto.randomBytes(64).toString('base64') } })) });
  const fs2 = new WindowsCngKeyStore({ skipTpm: true, workDir: tempDir('cng'), run: forged.run });
  const k = await fs2.generate('P-256', 'k');
  await assert.rejects(fs2.sign(k.id, Buffer.from('x')), (e: unknown) => isAgentError(e) && e.code === 'WINDOWS_KEY_BAD_SIGNATURE');

  const hung = new WindowsCngKeyStore({ skipTpm: false, workDir: tempDir('cng'), run: () => new Promise(() => undefined), deadlineMs: 50 });
  await assert.rejects(hung.info(), (e: unknown) => isAgentError(e) && e.code === 'WINDOWS_KEY_TIMEOUT' && /did not answer within 30 s/.test(e.remedy ?? ''));

  const clixml = parseCngAnswer(fail(fixture('win32', 'clixml-command-not-found.txt')));
  assert.equal(clixml.ok, false);
  assert.ok(!clixml.ok && clixml.message.length > 10, 'PowerShell\'s own error (CLIXML) is decoded for the message');

  const badLink = windowsStandIn({ repair: fail(fixture('win32', 'certutil-repairstore-no-key.txt')) });
  const bl = new WindowsCngKeyStore({ skipTpm: true, workDir: tempDir('cng'), run: badLink.run });
  const k2 = await bl.generate('P-256', 'k');
  const pem = issueWith(writeCaKey(), k2.spki, '/CN=dev', tempDir('cngiss'));
  await assert.rejects(bl.attach(k2.id, { certPem: pem, chainPem: [], label: 'l' }),
    (e: unknown) => isAgentError(e) && e.code === 'WINDOWS_KEY_KEY_MISSING' && /0x80090011/.test(e.message) && /--forceRenewal/.test(e.remedy ?? ''));
  const other = issueWith(writeCaKey(), crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'der' }), '/CN=dev', tempDir('cngiss'));
  await assert.rejects(bl.attach(k2.id, { certPem: other, chainPem: [], label: 'l' }), (e: unknown) => isAgentError(e) && e.code === 'WINDOWS_KEY_MISMATCH');
});

test('a command past its deadline is killed and answers 124 (the base runner)', async () => {
  const t0 = Date.now();
  const res = await runCommand({ file: 'sleep', args: ['5'], timeoutMs: 200 });
  assert.equal(res.code, 124);
  assert.ok(Date.now() - t0 < 3000);
});

test('the Windows and macOS platforms hand a key store, so no key.pem is written there', () => {
  const config = { stateDir: tempDir('st'), nssDbDir: tempDir('nss'), browserPolicyDirs: [], firefoxPolicyDirs: [] };
  assert.ok(createWin32Platform(config).keys instanceof WindowsCngKeyStore);
  assert.equal(createDarwinPlatform(config, { env: { HOME: '/Users/alice' } }).keys?.constructor.name, 'MacKeyStore');
});

test('issue 25.1: the TPM probe makes a NAMED key and deletes it (an unnamed one is ephemeral, which the Platform Crypto Provider refuses)', async () => {
  const probe = win32CngCommands.probe(TPM_PROVIDER);
  const script = decodePowershell(probe);
  assert.match(probe.env!.DTA_KEY_NAME!, /^DeviceTrustProbe-[0-9a-f]{32}$/, 'a fresh name per probe');
  assert.notEqual(win32CngCommands.probe(TPM_PROVIDER).env!.DTA_KEY_NAME, probe.env!.DTA_KEY_NAME);
  assert.match(script, /\[System\.Security\.Cryptography\.CngKey\]::Create\(\[System\.Security\.Cryptography\.CngAlgorithm\]::ECDsaP256, \$env:DTA_KEY_NAME, \$p\)/);
  assert.doesNotMatch(script, /::Create\([^)]*\$null/, 'never an ephemeral (unnamed) key');
  assert.match(script, /finally \{ \$k\.Delete\(\) \}/, 'the probe key is deleted whatever happens');
  // The probe's name is never taken for a device key: nothing opens, signs with or sweeps it.
  const { parseCngKeyId } = await import('../../src-main/platform/win32-cng.js');
  assert.equal(parseCngKeyId(`tpm:${probe.env!.DTA_KEY_NAME}`), undefined);
  // With a TPM that answers the named probe, the TPM is chosen (not the software provider).
  const win = windowsStandIn();
  const store = new WindowsCngKeyStore({ skipTpm: false, workDir: tempDir('cng'), run: win.run });
  assert.equal((await store.info()).protection, 'tpm');
});

test('issue 25.1: non-exportability is decided by an export attempt, not by the export-policy flag the TPM reports', async () => {
  for (const name of ['create', 'find'] as const) {
    const s = win32CngScripts[name];
    assert.match(s, /try \{ \$null = \$key\.Export\(\[System\.Security\.Cryptography\.CngKeyBlobFormat\]::Pkcs8PrivateBlob\) \} catch \{ \$exportable = \$false \}/, `${name} tries the export`);
    assert.match(s, /exportable = \$exportable/, `${name} answers the attempt's outcome`);
  }
  // A TPM key that reports AllowPlaintextExport (the provider keeps its own policy) but cannot be exported is used.
  const tpmFlag = windowsStandIn({ createAnswer: (cmd) => {
    const pair = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
    tpmFlag.keys.set(cmd.env!.DTA_KEY_NAME!, { provider: TPM_PROVIDER, ...pair, algorithm: 'P-256' });
    return ok(JSON.stringify({ ok: true, data: { exists: true, name: cmd.env!.DTA_KEY_NAME, provider: TPM_PROVIDER, algorithm: 'ECDSA_P256', exportPolicy: 'AllowPlaintextExport', exportable: false, publicBlob: spkiToCngPublicBlob(pair.publicKey).toString('base64') } }));
  } });
  const key = await new WindowsCngKeyStore({ skipTpm: false, workDir: tempDir('cng'), run: tpmFlag.run }).generate('P-256', 'k');
  assert.equal(key.protection, 'tpm');
  // An answer without the attempt's outcome is not trusted.
  const old = windowsStandIn({ createAnswer: (cmd) => ok(JSON.stringify({ ok: true, data: { exists: true, name: cmd.env!.DTA_KEY_NAME, provider: SOFTWARE_PROVIDER, algorithm: 'ECDSA_P256', exportPolicy: 'None', publicBlob: spkiToCngPublicBlob(crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey).toString('base64') } })) });
  await assert.rejects(new WindowsCngKeyStore({ skipTpm: true, workDir: tempDir('cng'), run: old.run }).generate('P-256', 'k'), (e: unknown) => isAgentError(e) && e.code === 'WINDOWS_KEY_ANSWER');
});

test('issue 25.5: SCEP keeps its key in CNG — RSA keys are made for signing AND decryption, the CA\'s answer key is decrypted in the provider, SHA-1/SHA-512 signatures too', async () => {
  assert.match(win32CngScripts.create, /if \(\$env:DTA_ALGORITHM -eq 'RSA-2048'\) \{[\s\S]*\$p\.KeyUsage = \[System\.Security\.Cryptography\.CngKeyUsages\]::Signing -bor \[System\.Security\.Cryptography\.CngKeyUsages\]::Decryption/);
  assert.match(win32CngScripts.decrypt, /\$rsa\.Decrypt\(\[System\.Convert\]::FromBase64String\(\$env:DTA_CIPHERTEXT\), \[System\.Security\.Cryptography\.RSAEncryptionPadding\]::Pkcs1\)/);
  const dec = win32CngCommands.decrypt(TPM_PROVIDER, 'DeviceTrust-00112233445566778899aabbccddeeff', Buffer.from('c'));
  assert.deepEqual(Object.keys(dec.env!).sort(), ['DTA_CIPHERTEXT', 'DTA_KEY_NAME', 'DTA_PROVIDER'], 'the ciphertext goes through the environment');
  const win = windowsStandIn();
  const store = new WindowsCngKeyStore({ skipTpm: false, workDir: tempDir('cng'), run: win.run });
  const k = await store.generate('RSA-2048', 'scep');
  const key = await keyInStore(store, k);
  assert.equal(typeof key.decrypt, 'function', 'the core keeps SCEP on the store (core/enrollment/pass.ts drops a store without decrypt)');
  const cek = crypto.randomBytes(32);
  const pub = crypto.createPublicKey({ key: k.spki, format: 'der', type: 'spki' });
  const wrapped = crypto.publicEncrypt({ key: pub, padding: crypto.constants.RSA_PKCS1_PADDING }, cek);
  assert.deepEqual(await key.decrypt!(wrapped), cek, 'the content-encryption key comes back from the provider');
  for (const h of ['sha1', 'sha512'] as const) {
    const sig = await store.sign(k.id, Buffer.from('pkiMessage'), h);
    assert.ok(crypto.verify(h, Buffer.from('pkiMessage'), pub, sig), `${h} signature verifies`);
    assert.equal(win.calls.at(-1)!.env!.DTA_HASH, h.toUpperCase());
  }
  const ec = await store.generate('P-256', 'k');
  await store.sign(ec.id, Buffer.from('x'), 'sha1');
  assert.equal(win.calls.at(-1)!.env!.DTA_HASH, 'SHA256', 'ECDSA stays SHA-256');
});

test('issue 25.2: the CNG scripts ship as .ps1 files (AppLocker/WDAC run allowed or signed FILES in FullLanguage) and run with -File only when intact', async () => {
  const { cngScriptFiles, isOurScriptFile, shippedScriptCommand } = await import('../../src-main/platform/win32-cng.js');
  const files = cngScriptFiles();
  assert.deepEqual(files.map((f) => f.file).sort(), Object.keys(win32CngScripts).map((n) => `dta-cng-${n}.ps1`).sort());
  for (const f of files) {
    assert.doesNotMatch(f.content, /[^\r]\n/, `${f.file}: CRLF throughout`);
    assert.match(f.content, /^[\x00-\x7f]*$/, `${f.file}: ASCII (signs as is)`);
  }
  const dir = 'C:\\Program Files\\Device Trust Agent\\resources\\headless\\ps';
  const probe = files.find((f) => f.name === 'probe')!;
  const sig = '# SIG # Begin signature block\r\n# MIIFuQYJKoZIhvcNAQcCoIIFqjCCBaYCAQExCzAJBgUrDgMCGgUAMGkGCisGAQQB\r\n# gjcCAQSgWzBZMDQGCisGAQQBgjcCAR4wJgIDAQAABBAfzDtgWUsITrck0sYpfvNR\r\n# SIG # End signature block\r\n';
  assert.ok(isOurScriptFile(probe.content, probe.content));
  assert.ok(isOurScriptFile(`\uFEFF${probe.content}${sig}`, probe.content), 'a BOM and an Authenticode block (Set-AuthenticodeSignature) are ours');
  assert.ok(!isOurScriptFile(probe.content.replace('Delete()', 'Dispose()'), probe.content), 'an edited script is not');
  assert.ok(!isOurScriptFile(`${probe.content}Remove-Item C:\\x\r\n`, probe.content), 'nor one with code appended');
  const cmd = win32CngCommands.probe(TPM_PROVIDER);
  const read = (f: string) => (f === `${dir}\\dta-cng-probe.ps1` ? probe.content + sig : undefined);
  const viaFile = shippedScriptCommand(cmd, dir, read)!;
  assert.deepEqual(viaFile.args, ['-NoLogo', '-NoProfile', '-NonInteractive', '-ExecutionPolicy', 'Bypass', '-OutputFormat', 'Text', '-File', `${dir}\\dta-cng-probe.ps1`]);
  assert.deepEqual(viaFile.env, cmd.env, 'inputs still through the environment');
  assert.equal(viaFile.timeoutMs, CNG_TIMEOUT_MS);
  assert.equal(shippedScriptCommand(cmd, dir, () => undefined), undefined, 'no file: -EncodedCommand');
  assert.equal(shippedScriptCommand(cmd, dir, () => 'Write-Output hi'), undefined, 'a foreign file is never run');
  // The store runs the file when it is there (every script, TPM probe included) and the encoded command when not.
  const win = windowsStandIn();
  const byName = new Map(files.map((f) => [`${dir}\\${f.file}`, f.content]));
  const ran: string[][] = [];
  const store = new WindowsCngKeyStore({ skipTpm: false, workDir: tempDir('cng'), scriptDir: dir, readScript: (f) => byName.get(f), run: async (c) => {
    ran.push(c.args);
    if (c.args.at(-2) !== '-File') return win.run(c);
    const f = files.find((x) => `${dir}\\${x.file}` === c.args.at(-1))!;
    return win.run({ ...c, args: [...c.args.slice(0, -2), '-EncodedCommand', Buffer.from(win32CngScripts[f.name], 'utf16le').toString('base64')] });
  } });
  const k = await store.generate('P-256', 'k');
  await store.sign(k.id, Buffer.from('x'));
  assert.ok(ran.length >= 3 && ran.every((a) => a.at(-2) === '-File'), 'probe, create, sign: all from the shipped files');
  // A ConstrainedLanguage answer says what an administrator does about it: sign or allow the files.
  const clm = windowsStandIn({ tpm: fixture('win32', 'cng-constrained-language.json') });
  await assert.rejects(new WindowsCngKeyStore({ skipTpm: false, workDir: tempDir('cng'), run: clm.run }).info(),
    (e: unknown) => isAgentError(e) && /dta-cng-\*\.ps1/.test(e.remedy ?? '') && /Set-AuthenticodeSignature/.test(e.remedy ?? ''));
});

test('one-time PKCS#12 passwords never look like a command-line option (they follow certutil -p)', () => {
  for (let i = 0; i < 2000; i++) assert.match(oneTimePassword(), /^[0-9a-f]{48}$/);
});
