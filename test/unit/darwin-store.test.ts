/**
 * The macOS keychain store is a thin layer over /usr/bin/security: exact command lines, parsing of its outputs
 * (test/fixtures/darwin, with their provenance) including its errors, and the store's decisions driven by them.
 * The PKCS#12 step uses the same openssl options as macOS's LibreSSL; here OpenSSL 3 proves the bundle opens.
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
  darwinCommands, identityServices, loginKeychain, MacKeychainStore, MAC_TRUSTED_APPS, parseFindCertificate, parseFindIdentity, parseSecurityError,
} from '../../src-main/platform/darwin-store.js';
import { tempDir } from '../support/agent.js';
import { fail, fixture, ok, scripted } from '../support/commands.js';

const KEYCHAIN = '/Users/alice/Library/Keychains/login.keychain-db';
const OURS = 'CBDEE0FA55397CB83B775D3DD78B9FC817452D32';
const AGENT = '/Applications/Device Trust Agent.app/Contents/MacOS/Device Trust Agent';

test('command lines: import with a non-extractable key limited to the agent and the browsers; identity by SHA-1', () => {
  assert.equal(loginKeychain('/Users/alice'), KEYCHAIN);
  assert.deepEqual(darwinCommands.importPkcs12('/tmp/p/bundle.p12', 'pw', KEYCHAIN, [AGENT, ...MAC_TRUSTED_APPS]).args, [
    'import', '/tmp/p/bundle.p12', '-k', KEYCHAIN, '-f', 'pkcs12', '-P', 'pw', '-x',
    '-T', AGENT, '-T', '/Applications/Safari.app', '-T', '/Applications/Google Chrome.app', '-T', '/Applications/Microsoft Edge.app', '-T', '/Applications/Firefox.app',
  ]);
  assert.ok(!darwinCommands.importPkcs12('p', 'pw', KEYCHAIN, []).args.includes('-A'), 'never "any application"');
  assert.deepEqual(darwinCommands.makePkcs12('k.pem', 'c.pem', 'ch.pem', 'device-trust-1', 'out.p12'), {
    file: '/usr/bin/openssl',
    args: ['pkcs12', '-export', '-inkey', 'k.pem', '-in', 'c.pem', '-certfile', 'ch.pem', '-name', 'device-trust-1', '-keypbe', 'PBE-SHA1-3DES', '-certpbe', 'PBE-SHA1-3DES', '-macalg', 'sha1', '-passout', 'env:DTA_P12_PASSWORD', '-out', 'out.p12'],
  });
  assert.deepEqual(darwinCommands.findIdentities(KEYCHAIN), { file: '/usr/bin/security', args: ['find-identity', KEYCHAIN] });
  assert.deepEqual(darwinCommands.findCertificates(KEYCHAIN), { file: '/usr/bin/security', args: ['find-certificate', '-a', '-Z', '-p', KEYCHAIN] });
  assert.deepEqual(darwinCommands.deleteIdentity(OURS, KEYCHAIN), { file: '/usr/bin/security', args: ['delete-identity', '-Z', OURS, KEYCHAIN] });
  assert.deepEqual(darwinCommands.setIdentityPreference(OURS, 'https://example.okta.com/', KEYCHAIN).args, ['set-identity-preference', '-Z', OURS, '-s', 'https://example.okta.com/', KEYCHAIN]);
  assert.deepEqual(darwinCommands.clearIdentityPreference('https://example.okta.com/', KEYCHAIN).args, ['set-identity-preference', '-n', '-s', 'https://example.okta.com/', KEYCHAIN]);
});

test('identity-preference services cover each mTLS host pattern', () => {
  assert.deepEqual(identityServices(['https://[*.]example.okta.com', 'https://localhost:8443']), ['https://example.okta.com/', '*.example.okta.com', 'https://localhost:8443/']);
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

const verb = (c: Command) => (c.file === '/usr/bin/openssl' ? 'openssl' : c.args[0]);

test('install: the bundle is made with the system openssl (password via the environment), imported, and found as an identity', async () => {
  const id = identity();
  const tool = scripted((cmd) => {
    if (verb(cmd) === 'openssl') {
      // Run the same openssl command here: the bundle must open with the one-time password.
      execFileSync('openssl', cmd.args, { env: { ...process.env, ...cmd.env } });
      const out = cmd.args[cmd.args.indexOf('-out') + 1]!;
      execFileSync('openssl', ['pkcs12', '-in', out, '-passin', 'env:DTA_P12_PASSWORD', '-nodes', ...(/^OpenSSL 3/.test(execFileSync('openssl', ['version'], { encoding: 'utf8' })) ? ['-legacy'] : [])],
        { env: { ...process.env, ...cmd.env }, stdio: 'ignore' });
      assert.ok(!cmd.args.some((a) => a === cmd.env!.DTA_P12_PASSWORD), 'not on the openssl command line');
      return ok();
    }
    if (verb(cmd) === 'import') return ok(fixture('darwin', 'security-import-ok.txt'));
    if (verb(cmd) === 'find-identity') return ok(id.findIdentity);
    if (verb(cmd) === 'find-certificate') return ok(id.findCerts);
    throw new Error(`unexpected ${cmd.args.join(' ')}`);
  });
  const store = new MacKeychainStore({ keychain: id.keychain, workDir: tempDir('macwork'), agentPath: AGENT, run: tool.run });
  const stored = await store.install({ certPem: id.certPem, keyPem: id.keyPem, chainPem: [id.certPem], label: 'device-trust-x' });
  assert.equal(stored.id, id.sha1);
  assert.deepEqual(tool.calls.map(verb), ['openssl', 'import', 'find-identity', 'find-certificate']);
  const imp = tool.calls[1]!;
  assert.ok(imp.args.includes('-x') && imp.args.includes(AGENT));
  assert.ok(!fs.existsSync(imp.args[1]!), 'the PKCS#12 is deleted after the import');
});

test('install: "already exists" from an interrupted earlier run is fine; "interaction not allowed" is a clear error', async () => {
  const id = identity();
  const again = scripted((cmd) => (verb(cmd) === 'import' ? fail(fixture('darwin', 'security-import-already-exists.txt')) : verb(cmd) === 'find-identity' ? ok(id.findIdentity) : verb(cmd) === 'find-certificate' ? ok(id.findCerts) : ok()));
  const stored = await new MacKeychainStore({ keychain: id.keychain, workDir: tempDir('macwork'), agentPath: AGENT, run: again.run }).install({ certPem: id.certPem, keyPem: id.keyPem, chainPem: [], label: 'x' });
  assert.equal(stored.id, id.sha1);

  const locked = scripted((cmd) => (verb(cmd) === 'import' ? fail(fixture('darwin', 'security-import-interaction-not-allowed.txt')) : ok()));
  await assert.rejects(new MacKeychainStore({ keychain: id.keychain, workDir: tempDir('macwork'), agentPath: AGENT, run: locked.run }).install({ certPem: id.certPem, keyPem: id.keyPem, chainPem: [], label: 'x' }),
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
