/**
 * The macOS device key store (issue 13, macOS): a Secure Enclave CTK identity made by sc_auth (p-256-ne), else a
 * non-extractable login-keychain key; signing through the Security framework from JXA. No Mac here: command lines
 * are checked as data, the JXA program is at least parsed as JavaScript, the tools are played by a stand-in that
 * answers in their documented (reconstructed, see test/fixtures/darwin/README.md) formats with keys held here, and
 * the parsers run over real artefacts made with OpenSSL/Node (CSRs, DER ECDSA signatures).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import type { Command, CommandResult } from '../../src-main/base/exec.js';
import { isAgentError } from '../../src-main/base/errors.js';
import { createCsr, keyInStore } from '../../src-main/core/keys/keys.js';
import { darwinKeyCommands, derEcdsaToRaw, hasSecureEnclave, hashOfSpki, jxaKeysProgram, MacKeyStore, parseCtkIdentities, parseJxaAnswer, spkiFromCsr } from '../../src-main/platform/darwin-keys.js';
import { MacKeychainStore, publicKeyHash } from '../../src-main/platform/darwin-store.js';
import { tempDir } from '../support/agent.js';
import { fail, fixture, ok } from '../support/commands.js';
import { macStandIn } from '../support/darwin-keys.js';

/** The JXA program as shipped (src-main/platform/helpers/darwin-keys.jxa). */
const JXA_KEYS = jxaKeysProgram();

test('command lines as data: sc_auth makes a non-exportable Secure Enclave identity; the JXA program takes its inputs from the environment', () => {
  assert.deepEqual(darwinKeyCommands.createIdentity('device-trust-key-ab12', 'device-trust-key-ab12'),
    { file: '/usr/sbin/sc_auth', args: ['create-ctk-identity', '-l', 'device-trust-key-ab12', '-k', 'p-256-ne', '-t', 'none', '-N', 'device-trust-key-ab12'], timeoutMs: 30_000 });
  assert.deepEqual(darwinKeyCommands.createCsr('AB', '/t/r.csr', 'cn').args, ['create-ctk-csr', '-h', 'AB', '-f', '/t/r.csr', '-N', 'cn']);
  assert.deepEqual(darwinKeyCommands.importCertificate('/t/d.cer').args, ['import-ctk-certificate', '-f', '/t/d.cer']);
  assert.deepEqual(darwinKeyCommands.deleteIdentity('AB').args, ['delete-ctk-identity', '-h', 'AB']);
  assert.deepEqual(darwinKeyCommands.listIdentities().args, ['list-ctk-identities', '-t', 'sha1', '-e', 'hex']);
  const sign = darwinKeyCommands.sign('token', 'A581E5404ED157C4C73FFDBDFC1339E0D873FCAE', 'P-256', Buffer.from('payload'));
  assert.deepEqual(sign.args, ['-l', 'JavaScript', '-e', JXA_KEYS]);
  assert.deepEqual(sign.env, { DTA_OP: 'sign', DTA_WHERE: 'token', DTA_ALGORITHM: 'P-256', DTA_KEY_HASH_B64: Buffer.from('A581E5404ED157C4C73FFDBDFC1339E0D873FCAE', 'hex').toString('base64'), DTA_DATA_B64: Buffer.from('payload').toString('base64') });
  assert.doesNotThrow(() => new Function(JXA_KEYS), 'the JXA program is valid JavaScript');
  for (const s of ['priv.setObjectForKey(no, c($.kSecAttrIsExtractable))', 'priv.setObjectForKey(yes, c($.kSecAttrIsPermanent))', '$.kSecKeyAlgorithmECDSASignatureMessageX962SHA256', 'c($.kSecAttrAccessGroupToken)']) {
    assert.ok(JXA_KEYS.includes(s), s);
  }
});

test('parsers: sc_auth identities, Secure Enclave presence, a request sc_auth writes (PEM or DER), DER ECDSA signatures', () => {
  const rows = parseCtkIdentities(fixture('darwin', 'sc_auth-list-ctk-identities.txt'));
  assert.deepEqual(rows.map((r) => [r.keyType, r.hash, r.label]), [['p-256', 'A581E5404ED157C4C73FFDBDFC1339E0D873FCAE', 'ssh-exportable']], 'the header line is not an identity');

  assert.equal(hasSecureEnclave(ok('1\n'), undefined), true, 'Apple silicon');
  assert.equal(hasSecureEnclave(fail(fixture('darwin', 'sysctl-arm64-unknown.txt')), ok(fixture('darwin', 'system_profiler-ibridge-t2.json'))), true, 'Intel with T2');
  assert.equal(hasSecureEnclave(ok('0\n'), ok(fixture('darwin', 'system_profiler-ibridge-none.json'))), false, 'Intel without T2');

  const dir = tempDir('csr');
  execFileSync('openssl', ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', path.join(dir, 'k.pem'), '-subj', '/CN=x', '-out', path.join(dir, 'r.csr')], { stdio: 'ignore' });
  execFileSync('openssl', ['req', '-in', path.join(dir, 'r.csr'), '-outform', 'DER', '-out', path.join(dir, 'r.der')], { stdio: 'ignore' });
  const expected = crypto.createPublicKey(fs.readFileSync(path.join(dir, 'k.pem'))).export({ type: 'spki', format: 'der' });
  assert.deepEqual(spkiFromCsr(fs.readFileSync(path.join(dir, 'r.csr'))), expected, 'PEM request');
  assert.deepEqual(spkiFromCsr(fs.readFileSync(path.join(dir, 'r.der'))), expected, 'DER request');
  const tampered = fs.readFileSync(path.join(dir, 'r.der'));
  tampered.writeUInt8(tampered.readUInt8(tampered.length - 5) ^ 0x01, tampered.length - 5);
  assert.throws(() => spkiFromCsr(tampered), /signature does not verify|cannot use/);

  const { privateKey, publicKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  for (let i = 0; i < 20; i++) {
    const data = crypto.randomBytes(40);
    const der = crypto.sign('sha256', data, { key: privateKey, dsaEncoding: 'der' });
    assert.ok(crypto.verify('sha256', data, { key: publicKey, dsaEncoding: 'ieee-p1363' }, derEcdsaToRaw(der)), 'r‖s of 32 bytes each, leading zeros handled');
  }
  const certPem = fixture('darwin', 'device-cert.pem');
  assert.equal(hashOfSpki(crypto.createPublicKey(certPem).export({ type: 'spki', format: 'der' })), publicKeyHash(certPem), 'the same public-key hash the keychain labels keys with');

  assert.deepEqual(parseJxaAnswer(fail(fixture('darwin', 'osascript-reference-error.txt'))), { ok: false, status: -2700, message: "execution error: Error: ReferenceError: Can't find variable: SecKeyCreateSignature (-2700)" });
});

function issueFor(spki: Buffer, cn: string): string {
  const dir = tempDir('iss');
  const ca = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  fs.writeFileSync(path.join(dir, 'ca.key'), ca.export({ type: 'pkcs8', format: 'pem' }));
  fs.writeFileSync(path.join(dir, 'pub.pem'), crypto.createPublicKey({ key: spki, format: 'der', type: 'spki' }).export({ type: 'spki', format: 'pem' }));
  execFileSync('openssl', ['req', '-x509', '-new', '-key', path.join(dir, 'ca.key'), '-subj', '/CN=MTLS Certificate Authority', '-days', '2', '-out', path.join(dir, 'ca.crt')], { stdio: 'ignore' });
  return execFileSync('openssl', ['x509', '-new', '-force_pubkey', path.join(dir, 'pub.pem'), '-subj', `/CN=${cn}`, '-CA', path.join(dir, 'ca.crt'), '-CAkey', path.join(dir, 'ca.key'), '-days', '2'], { encoding: 'utf8' });
}

function store(run: (c: Command) => Promise<CommandResult>, skipTpm = false) {
  const kc = path.join(tempDir('kc'), 'login.keychain-db');
  fs.writeFileSync(kc, '');
  const keychain = new MacKeychainStore({ keychain: kc, workDir: tempDir('w'), agentPath: '/Applications/Device Trust.app', run });
  return new MacKeyStore({ skipTpm, workDir: tempDir('w'), keychain, keychainPath: kc, run });
}

test('Secure Enclave: the identity is made by sc_auth (p-256-ne), the agent\'s CSR is signed through the keychain and verifies, the certificate is attached, removal deletes the identity', async () => {
  const m = macStandIn();
  const s = store(m.run);
  const info = await s.info();
  assert.deepEqual([info.protection, info.reason], ['tpm', 'Secure Enclave through a CryptoTokenKit identity (sc_auth)']);
  const k = await s.generate('P-256', 'device-trust-key');
  assert.match(k.id, /^se:[0-9A-F]{40}$/);
  assert.equal(k.protection, 'tpm');
  const key = await keyInStore(s, k);
  const csr = await createCsr(key, 'CN=f784e4a2-6026-4aef-8e15-a5c31aa7374e');
  assert.equal(execFileSync('openssl', ['req', '-noout', '-verify'], { input: csr, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] }), '', 'openssl accepts the request');
  const signs = m.calls.filter((c) => c.env?.DTA_OP === 'sign');
  assert.equal(signs.length, 1);
  assert.equal(signs[0]!.env!.DTA_WHERE, 'token', 'signed by the CTK (Secure Enclave) key');

  const certPem = issueFor(k.spki, 'f784e4a2-6026-4aef-8e15-a5c31aa7374e');
  const stored = await s.attach(k.id, { certPem, chainPem: [], label: 'device-trust' });
  assert.equal(stored.id, new crypto.X509Certificate(certPem).fingerprint.replace(/:/g, ''));
  assert.equal([...m.identities.values()][0]!.cert, certPem.trim() + '\n', 'the issued certificate went to the identity (DER file)');
  await s.remove(k.id);
  assert.equal(m.identities.size, 0, 'identity (key and certificate) deleted');
  await s.remove(k.id);

  await assert.rejects(store(macStandIn().run).generate('RSA-2048', 'k'), (e: unknown) => isAgentError(e) && e.code === 'MAC_KEY_ALGORITHM' && /P-256/.test(e.remedy ?? ''));
});

test('no Secure Enclave, an older macOS, or SkipTPM: a non-extractable login-keychain key, and status says why', async () => {
  for (const [m, reason] of [
    [macStandIn({ arm64: ok('0\n') }), /no Secure Enclave/],
    [macStandIn({ usage: fixture('darwin', 'sc_auth-usage-old.txt') }), /no CTK identities/],
  ] as const) {
    const s = store(m.run);
    const info = await s.info();
    assert.equal(info.protection, 'software');
    assert.match(info.reason, reason);
  }
  const m = macStandIn();
  const s = store(m.run, true);
  assert.equal((await s.info()).reason, 'SkipTPM=true');
  assert.equal(m.calls.length, 0, 'SkipTPM: nothing probed');
  for (const alg of ['P-256', 'RSA-2048'] as const) {
    const k = await s.generate(alg, 'device-trust-key');
    assert.match(k.id, alg === 'P-256' ? /^kc-ec:/ : /^kc-rsa:/);
    assert.equal(m.calls.at(-1)!.env!.DTA_OP, 'create');
    const sig = await s.sign(k.id, Buffer.from('token'));
    const pub = crypto.createPublicKey({ key: k.spki, format: 'der', type: 'spki' });
    assert.ok(crypto.verify('sha256', Buffer.from('token'), alg === 'P-256' ? { key: pub, dsaEncoding: 'ieee-p1363' } : pub, sig));
    const certPem = issueFor(k.spki, 'dev');
    const stored = await s.attach(k.id, { certPem, chainPem: [], label: 'device-trust' });
    assert.equal(stored.pem.trim(), certPem.trim(), 'listed as an identity (certificate with its key) in the login keychain');
    await s.remove(k.id);
    assert.equal(m.certs.length, 0);
    assert.equal(m.keychain.size, 0);
    assert.equal(await s.find(k.id), undefined);
  }
});

test('failures say what to do: locked keychain, key gone, extractable key, forged signature, wrong certificate, certificate not joined, no answer', async () => {
  const locked = store(macStandIn({ jxa: () => ok(JSON.stringify({ ok: false, status: -25308, message: 'SecKeyCreateRandomKey: User interaction is not allowed.' })) }).run, true);
  await assert.rejects(locked.generate('P-256', 'k'), (e: unknown) => isAgentError(e) && /OSStatus -25308/.test(e.message) && /logged in/.test(e.remedy ?? ''));

  const gone = store(macStandIn().run, true);
  await assert.rejects(gone.sign('kc-ec:A581E5404ED157C4C73FFDBDFC1339E0D873FCAE', Buffer.from('x')), (e: unknown) => isAgentError(e) && e.code === 'KEY_MISSING' && /--forceRenewal/.test(e.remedy ?? ''));

  const extractable = store(macStandIn({ jxa: (env) => env.DTA_OP === 'create' ? ok(JSON.stringify({ ok: true, data: { exists: true, label: 'k', publicKey: Buffer.concat([Buffer.from([4]), crypto.randomBytes(64)]).toString('base64'), extractable: true } })) : undefined }).run, true);
  await assert.rejects(extractable.generate('P-256', 'k'), (e: unknown) => isAgentError(e) && e.code === 'MAC_KEY_EXTRACTABLE');

  const forged = macStandIn({ jxa: (env) => env.DTA_OP === 'sign' ? ok(JSON.stringify({ ok: true, data: { signature: crypto.sign('sha256', Buffer.from('x'), { key: crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey, dsaEncoding: 'der' }).toString('base64') } })) : undefined });
  const fs1 = store(forged.run, true);
  const k = await fs1.generate('P-256', 'k');
  await assert.rejects(fs1.sign(k.id, Buffer.from('x')), (e: unknown) => isAgentError(e) && e.code === 'MAC_KEY_BAD_SIGNATURE');
  const other = issueFor(crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'der' }), 'dev');
  await assert.rejects(fs1.attach(k.id, { certPem: other, chainPem: [], label: 'l' }), (e: unknown) => isAgentError(e) && e.code === 'MAC_KEY_MISMATCH');

  const lost = macStandIn({ jxa: (env) => env.DTA_OP === 'certs' ? ok(JSON.stringify({ ok: true, data: [] })) : undefined });
  const ls = store(lost.run);
  const se = await ls.generate('P-256', 'k');
  await assert.rejects(ls.attach(se.id, { certPem: issueFor(se.spki, 'dev'), chainPem: [], label: 'l' }),
    (e: unknown) => isAgentError(e) && e.code === 'MAC_KEY_NOT_JOINED' && /sc_auth list-ctk-identities/.test(e.remedy ?? ''));

  const timeout = store(macStandIn({ jxa: () => ({ code: 124, stdout: '', stderr: '' }) }).run, true);
  await assert.rejects(timeout.generate('P-256', 'k'), (e: unknown) => isAgentError(e) && e.code === 'MAC_KEY_TIMEOUT' && /password prompt/.test(e.remedy ?? ''));
});

test('issue 25.7: sc_auth create-ctk-csr writes PATH.csr, which is read; a failed creation leaves no identity; the orphan sweep sees Secure Enclave identities', async () => {
  const { csrOutputFiles, ctkLabelFor, coreLabelOfCtk } = await import('../../src-main/platform/darwin-keys.js');
  const { sweepOrphanKeys, newKeyLabel, KEY_LABEL_PREFIX } = await import('../../src-main/core/keys/orphan-keys.js');
  assert.deepEqual(csrOutputFiles('/t/request'), ['/t/request.csr', '/t/request'], 'PATH.csr first (what sc_auth writes), PATH itself as a fallback');
  const m = macStandIn();
  const s = store(m.run);
  const k = await s.generate('P-256', newKeyLabel(Date.now() - 3600_000));
  assert.match(k.id, /^se:/, 'the request sc_auth wrote as request.csr was found and read');
  const csrCall = m.calls.find((c) => c.args[0] === 'create-ctk-csr')!;
  assert.doesNotMatch(csrCall.args[csrCall.args.indexOf('-f') + 1]!, /\.csr$/, 'the agent hands sc_auth the path without the extension sc_auth adds');

  // Each failed attempt used to leave an identity behind: now it is deleted.
  const broken = macStandIn({ csrFails: 'sc_auth: could not create the request\n' });
  await assert.rejects(store(broken.run).generate('P-256', newKeyLabel(Date.now())), (e: unknown) => isAgentError(e) && /create-ctk-csr/.test(e.message));
  assert.equal(broken.identities.size, 0, 'the identity made for the failed attempt was removed');
  assert.ok(broken.calls.some((c) => c.args[0] === 'delete-ctk-identity'));

  // Labels: the core's label survives the round trip through sc_auth's no-space label, so the sweep knows the age.
  const label = newKeyLabel(1765000000_000);
  assert.equal(coreLabelOfCtk(ctkLabelFor(label, '0123456789ab'), KEY_LABEL_PREFIX), label);
  assert.equal(coreLabelOfCtk('ssh-exportable', KEY_LABEL_PREFIX), undefined, 'identities that are not ours are never listed');
  // An orphan (no certificate, no key reference) is swept; the identity that is not ours is left alone.
  const listed = await s.listOwnKeys(KEY_LABEL_PREFIX);
  assert.deepEqual(listed.map((e) => [e.id, e.hasCertificate]), [[k.id, false]]);
  const swept = await sweepOrphanKeys(s, tempDir('sweep'));
  assert.deepEqual(swept.removed, [k.id]);
  assert.equal(m.identities.size, 0);
  // With its certificate attached, the key is not an orphan.
  const k2 = await s.generate('P-256', newKeyLabel(Date.now() - 3600_000));
  await s.attach(k2.id, { certPem: issueFor(k2.spki, 'f784e4a2-6026-4aef-8e15-a5c31aa7374e'), chainPem: [], label: 'device-trust' });
  assert.deepEqual((await s.listOwnKeys(KEY_LABEL_PREFIX)).map((e) => e.hasCertificate), [true]);
  assert.deepEqual((await sweepOrphanKeys(s, tempDir('sweep'))).removed, []);
});

test('issue 25.8: the software keychain key gets an access list naming the installed browsers (not only osascript)', async () => {
  assert.match(JXA_KEYS, /SecTrustedApplicationCreateFromPath\(p, app\)/);
  assert.match(JXA_KEYS, /for \(const p of \[null\]\.concat\(apps\)\)/, 'the calling program (NULL path) stays trusted: it signs the renewal tokens');
  assert.match(JXA_KEYS, /SecAccessCreate\(\$\(arg\('DTA_LABEL'\)\), trusted, access\)/);
  assert.match(JXA_KEYS, /priv\.setObjectForKey\(c\(access\[0\]\), c\(\$\.kSecAttrAccess\)\)/, 'the access object goes with the private key attributes');
  assert.doesNotThrow(() => new Function(JXA_KEYS), 'the JXA program is valid JavaScript');
  const m = macStandIn();
  const s = new MacKeyStore({ skipTpm: true, workDir: tempDir('mk'), keychain: new MacKeychainStore({ keychain: '/Users/a/Library/Keychains/login.keychain-db', workDir: tempDir('mk'), agentPath: '/x', run: m.run }), keychainPath: '/Users/a/Library/Keychains/login.keychain-db', run: m.run,
    exists: (p) => p === '/Applications/Safari.app' || p === '/Applications/Google Chrome.app' });
  await s.generate('P-256', 'device-trust-key 1765000000');
  const create = m.calls.find((c) => c.env?.DTA_OP === 'create')!;
  assert.deepEqual(create.env!.DTA_TRUSTED_APPS!.split('\n'), ['/Applications/Safari.app', '/Applications/Google Chrome.app'], 'only browsers that exist (a missing path would fail the whole call)');
});
