/**
 * The macOS keychain store is a thin layer over /usr/bin/security: exact command lines, parsing of its outputs
 * (test/fixtures/darwin, with their provenance) including its errors, and the store's decisions driven by them.
 * The key and the certificate are imported as two items (macOS 15 ignores -x on the PKCS#12 path) and the key's
 * Extractable attribute is read back: an extractable key is deleted again.
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
  darwinCommands, identityServices, installedApps, loginKeychain, MacKeychainStore, MAC_TRUSTED_APPS, opensslKeyPem, parseDumpKeychainKeys, parseFindCertificate, parseFindIdentity, parseSecurityError, publicKeyHash,
} from '../../src-main/platform/darwin-store.js';
import { tempDir } from '../support/agent.js';
import { fail, fixture, ok, scripted } from '../support/commands.js';

const KEYCHAIN = '/Users/alice/Library/Keychains/login.keychain-db';
const OURS = 'CBDEE0FA55397CB83B775D3DD78B9FC817452D32';
const AGENT = '/Applications/Device Trust Agent.app/Contents/MacOS/Device Trust Agent';

test('command lines: import with a non-extractable key limited to the agent and the browsers; identity by SHA-1', () => {
  assert.equal(loginKeychain('/Users/alice'), KEYCHAIN);
  assert.deepEqual(darwinCommands.importKey('/tmp/p/device-key.pem', KEYCHAIN, [AGENT, ...MAC_TRUSTED_APPS]).args, [
    'import', '/tmp/p/device-key.pem', '-k', KEYCHAIN, '-t', 'priv', '-f', 'openssl', '-x',
    '-T', AGENT, '-T', '/Applications/Safari.app', '-T', '/Applications/Google Chrome.app', '-T', '/Applications/Microsoft Edge.app', '-T', '/Applications/Firefox.app',
  ]);
  assert.ok(!darwinCommands.importKey('p', KEYCHAIN, []).args.includes('-A'), 'never "any application"');
  assert.deepEqual(darwinCommands.importCertificate('/tmp/p/c.pem', KEYCHAIN).args, ['import', '/tmp/p/c.pem', '-k', KEYCHAIN, '-t', 'cert']);
  assert.deepEqual(darwinCommands.dumpKeychain(KEYCHAIN).args, ['dump-keychain', KEYCHAIN], 'attributes only: no -d (decrypted data), no -a (access lists)');
  assert.deepEqual(installedApps([AGENT, ...MAC_TRUSTED_APPS], (p) => p === AGENT || p === '/Applications/Safari.app'), [AGENT, '/Applications/Safari.app'],
    'security import aborts on a -T path that does not exist: a Mac without Edge or Firefox must still enroll');
  assert.deepEqual(darwinCommands.findIdentities(KEYCHAIN), { file: '/usr/bin/security', args: ['find-identity', KEYCHAIN] });
  assert.deepEqual(darwinCommands.findCertificates(KEYCHAIN), { file: '/usr/bin/security', args: ['find-certificate', '-a', '-Z', '-p', KEYCHAIN] });
  assert.deepEqual(darwinCommands.deleteIdentity(OURS, KEYCHAIN), { file: '/usr/bin/security', args: ['delete-identity', '-Z', OURS, KEYCHAIN] });
  assert.deepEqual(darwinCommands.setIdentityPreference(OURS, 'https://example.okta.com/', KEYCHAIN).args, ['set-identity-preference', '-Z', OURS, '-s', 'https://example.okta.com/', KEYCHAIN]);
  assert.deepEqual(darwinCommands.clearIdentityPreference('https://example.okta.com/', KEYCHAIN).args, ['set-identity-preference', '-n', '-s', 'https://example.okta.com/', KEYCHAIN]);
});

test('identity-preference services cover each mTLS host pattern', () => {
  assert.deepEqual(identityServices(['https://[*.]example.okta.com', 'https://localhost:8443']), [
    'https://example.okta.com/', 'https://example.okta.com/ (com.apple.Safari)', '*.example.okta.com', 'https://localhost:8443/', 'https://localhost:8443/ (com.apple.Safari)']);
  assert.deepEqual(identityServices(['https://a.example'], []), ['https://a.example/']);
});

test('find-identity: all matching identities (valid or not), with the reason an identity is invalid', () => {
  assert.deepEqual(parseFindIdentity(fixture('darwin', 'security-find-identity.txt')), [
    { sha1: '1C29689A46A2846DF1AC5CD7BAC3BC5A14C45898', name: 'Alice Example S/MIME' },
    { sha1: OURS, name: 'f784e4a2-6026-4aef-8e15-a5c31aa7374e', problem: 'CSSMERR_TP_NOT_TRUSTED' },
  ], 'the untrusted lab chain does not hide our identity');
  assert.deepEqual(parseFindIdentity(fixture('darwin', 'security-find-identity-none.txt')), []);
});

test('find-certificate -a -Z -p: hashes and PEM per certificate', () => {
  const certs = parseFindCertificate(fixture('darwin', 'security-find-certificate.txt'));
  assert.deepEqual(certs.map((c) => c.sha1), ['1C29689A46A2846DF1AC5CD7BAC3BC5A14C45898', OURS]);
  assert.equal(certs[1]!.sha256, '76C7C22B77379CCC0A28BA12D14E9A8B74BF2F58E7C64E547E96431E464B6509');
  assert.equal(new X509Certificate(certs[1]!.pem).fingerprint.replace(/:/g, ''), OURS, 'the PEM belongs to the hashes above it');
});

test('error outputs: item already exists, wrong password, interaction not allowed, access denied, not found', () => {
  const e = (name: string) => parseSecurityError({ stdout: '', stderr: fixture('darwin', name) });
  assert.deepEqual(e('security-import-already-exists.txt'), { kind: 'already-exists', message: 'The specified item already exists in the keychain.' });
  assert.equal(e('security-import-wrong-password.txt').kind, 'wrong-password');
  assert.equal(e('security-import-interaction-not-allowed.txt').kind, 'interaction-not-allowed');
  assert.deepEqual(e('security-import-access-denied.txt'), { kind: 'access-denied', message: 'Write permissions error.' });
  assert.equal(e('security-delete-identity-not-found.txt').kind, 'not-found');
});

function identity() {
  const dir = tempDir('mac');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem'),
    '-subj', '/CN=f784e4a2-6026-4aef-8e15-a5c31aa7374e', '-days', '2'], { stdio: 'ignore' });
  const certPem = fs.readFileSync(path.join(dir, 'cert.pem'), 'utf8');
  const sha1 = new X509Certificate(certPem).fingerprint.replace(/:/g, '');
  const keychain = path.join(dir, 'login.keychain-db');
  fs.writeFileSync(keychain, '');
  const findIdentity = fixture('darwin', 'security-find-identity.txt').replaceAll(OURS, sha1);
  const findCerts = fixture('darwin', 'security-find-certificate.txt').replaceAll(OURS, sha1).replace(fixture('darwin', 'device-cert.pem').trim(), certPem.trim());
  return { dir, certPem, keyPem: fs.readFileSync(path.join(dir, 'key.pem'), 'utf8'), sha1, keychain, findIdentity, findCerts };
}

const verb = (c: Command) => c.args[0];
const dump = (id: { certPem: string }, extractable: boolean) => fixture('darwin', 'security-dump-keychain-keys.txt')
  .replace('@OUR_LABEL@', publicKeyHash(id.certPem)).replace('@OTHER_LABEL@', '8F02E7B104F6198597BDDE54831E18DAFB1EB330')
  .replace('@OUR_EXTRACTABLE@', extractable ? '0x00000001' : '0x00000000').replace('@OUR_NEVER_EXTRACTABLE@', extractable ? '0x00000000' : '0x00000001');

test('dump-keychain: private-key records by number (label = public-key hash, 16 = Extractable), other items ignored', () => {
  const id = identity();
  const keys = parseDumpKeychainKeys(dump(id, false));
  assert.equal(keys.length, 2);
  assert.deepEqual(keys[0], { labelHex: '8F02E7B104F6198597BDDE54831E18DAFB1EB330', printName: 'Imported Private Key', extractable: true, sensitive: true });
  assert.deepEqual(keys[1], { labelHex: publicKeyHash(id.certPem), printName: 'device-trust', extractable: false, sensitive: true });
  assert.equal(parseDumpKeychainKeys(dump(id, true))[1]!.extractable, true);
  assert.equal(publicKeyHash(id.certPem).length, 40);
  assert.match(opensslKeyPem(id.keyPem), /^-----BEGIN EC PRIVATE KEY-----/, 'SEC1, the "openssl" format security reads');
});

test('install: key and certificate imported separately (-x, -T only for installed apps), found as an identity, key checked non-extractable', async () => {
  const id = identity();
  let keyFileSeen = '';
  const tool = scripted((cmd) => {
    if (verb(cmd) === 'import' && cmd.args.includes('priv')) {
      keyFileSeen = cmd.args[1]!;
      assert.match(fs.readFileSync(keyFileSeen, 'utf8'), /BEGIN EC PRIVATE KEY/);
      assert.equal(fs.statSync(keyFileSeen).mode & 0o777, 0o600);
      return ok(fixture('darwin', 'security-import-ok.txt'));
    }
    if (verb(cmd) === 'import') {
      assert.ok(!fs.existsSync(keyFileSeen), 'the key file is gone before the certificate is imported');
      return ok('1 certificate imported.\n');
    }
    if (verb(cmd) === 'find-identity') return ok(id.findIdentity);
    if (verb(cmd) === 'find-certificate') return ok(id.findCerts);
    if (verb(cmd) === 'dump-keychain') return ok(dump(id, false));
    throw new Error(`unexpected ${cmd.args.join(' ')}`);
  });
  const store = new MacKeychainStore({ keychain: id.keychain, workDir: tempDir('macwork'), agentPath: AGENT, run: tool.run, exists: (p) => p !== '/Applications/Firefox.app' && p !== '/Applications/Microsoft Edge.app' });
  const stored = await store.install({ certPem: id.certPem, keyPem: id.keyPem, chainPem: [id.certPem], label: 'device-trust-x' });
  assert.equal(stored.id, id.sha1);
  assert.deepEqual(tool.calls.map(verb), ['import', 'import', 'find-identity', 'find-certificate', 'dump-keychain']);
  const t = tool.calls[0]!.args.flatMap((a, i, all) => (all[i - 1] === '-T' ? [a] : []));
  assert.deepEqual(t, [AGENT, '/Applications/Safari.app', '/Applications/Google Chrome.app'], 'no -T for Edge and Firefox, which are not installed');
  assert.equal(store.keyCheck, 'non-extractable (checked)');
});

test('install: a key macOS left extractable is deleted again and the install fails', async () => {
  const id = identity();
  const tool = scripted((cmd) => (verb(cmd) === 'import' ? ok() : verb(cmd) === 'find-identity' ? ok(id.findIdentity) : verb(cmd) === 'find-certificate' ? ok(id.findCerts)
    : verb(cmd) === 'dump-keychain' ? ok(dump(id, true)) : ok()));
  await assert.rejects(new MacKeychainStore({ keychain: id.keychain, workDir: tempDir('macwork'), agentPath: AGENT, run: tool.run, exists: () => true }).install({ certPem: id.certPem, keyPem: id.keyPem, chainPem: [], label: 'x' }),
    (e: unknown) => isAgentError(e) && e.code === 'KEYCHAIN_KEY_EXTRACTABLE');
  assert.deepEqual(tool.calls.at(-1)!.args, ['delete-identity', '-Z', id.sha1, id.keychain]);
});

test('install: "already exists" from an interrupted earlier run is fine; "interaction not allowed" is a clear error', async () => {
  const id = identity();
  const again = scripted((cmd) => (verb(cmd) === 'import' ? fail(fixture('darwin', 'security-import-already-exists.txt')) : verb(cmd) === 'find-identity' ? ok(id.findIdentity) : verb(cmd) === 'find-certificate' ? ok(id.findCerts) : ok(dump(id, false))));
  const stored = await new MacKeychainStore({ keychain: id.keychain, workDir: tempDir('macwork'), agentPath: AGENT, run: again.run, exists: () => true }).install({ certPem: id.certPem, keyPem: id.keyPem, chainPem: [], label: 'x' });
  assert.equal(stored.id, id.sha1);

  const locked = scripted((cmd) => (verb(cmd) === 'import' ? fail(fixture('darwin', 'security-import-interaction-not-allowed.txt')) : ok()));
  await assert.rejects(new MacKeychainStore({ keychain: id.keychain, workDir: tempDir('macwork'), agentPath: AGENT, run: locked.run, exists: () => true }).install({ certPem: id.certPem, keyPem: id.keyPem, chainPem: [], label: 'x' }),
    (e: unknown) => isAgentError(e) && e.code === 'KEYCHAIN_INTERACTION_NOT_ALLOWED' && /User interaction is not allowed/.test(e.message) && /locked/.test(e.remedy ?? ''));
});

test('list joins identities with their certificates; remove deletes the identity and tolerates "not found"', async () => {
  const id = identity();
  const tool = scripted((cmd) => (verb(cmd) === 'find-identity' ? ok(id.findIdentity) : verb(cmd) === 'find-certificate' ? ok(id.findCerts) : fail(fixture('darwin', 'security-delete-identity-not-found.txt'))));
  const store = new MacKeychainStore({ keychain: id.keychain, workDir: tempDir('macwork'), agentPath: AGENT, run: tool.run });
  const listed = await store.list();
  assert.deepEqual(listed.map((c) => c.id), ['1C29689A46A2846DF1AC5CD7BAC3BC5A14C45898', id.sha1]);
  await store.remove(id.sha1);
  assert.deepEqual(tool.calls.at(-1)!.args, ['delete-identity', '-Z', id.sha1, id.keychain]);
});

test('issue 25.11: security failures are decided from its exit status (the OSStatus low byte) where it has one, whatever the message says', async () => {
  const { parseSecurityError: p } = await import('../../src-main/platform/darwin-store.js');
  // The statuses as `security` exits with them, with messages that alone would say something else (or nothing).
  assert.equal(p({ code: 44, stdout: '', stderr: 'security: SecKeychainSearchCopyNext: Das angegebene Objekt wurde nicht gefunden.\n' }).kind, 'not-found');
  assert.equal(p({ code: 45, stdout: '', stderr: 'security: SecKeychainItemImport: …\n' }).kind, 'already-exists');
  assert.equal(p({ code: 36, stdout: '', stderr: '' }).kind, 'interaction-not-allowed');
  assert.equal(p({ code: 51, stdout: '', stderr: '' }).kind, 'wrong-password');
  // Exit 1 carries no status: the English message (which `security` does not translate) is the fallback.
  assert.equal(p({ code: 1, stdout: '', stderr: fixture('darwin', 'security-import-already-exists.txt') }).kind, 'already-exists');
  assert.equal(p({ code: 1, stdout: '', stderr: 'security: something new\n' }).kind, 'other');
});
