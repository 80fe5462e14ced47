/**
 * The one output-safety layer (base/safe-text.ts) and the sinks routed through it; the host-pattern rules and CA
 * continuity. Sinks are exercised through their real writers (event log file, state file, support bundle zip,
 * IPC guard, syslog command line), not by calling the layer directly.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { X509Certificate, webcrypto } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { createRootCa, randomSerial, x509, type KeyedCertificate } from '../../lab/ca.js';
import { clearSecrets, neutralizeJsonControls, redact, registerSecret, safeJson, safeText, serverText, stripControls } from '../../src-main/base/safe-text.js';
import { checkCaContinuity } from '../../src-main/core/certificates/ca-continuity.js';
import { loadConfig } from '../../src-main/core/config.js';
import { writeSupportBundle } from '../../src-main/core/diagnostics/bundle.js';
import { EventLog } from '../../src-main/core/events.js';
import { checkHostPatterns, orgDomain } from '../../src-main/core/certificates/host-patterns.js';
import { loadState, saveState } from '../../src-main/core/state/state.js';
import type { StatusView } from '../../src-main/ipc/contract.js';
import { dispatch, type Handlers } from '../../src-main/ipc/guard.js';
import { eventSinkCommands } from '../../src-main/platform/event-sinks.js';
import { tempDir } from '../support/agent.js';
import { testContext } from '../support/context.js';

// eslint-disable-next-line no-control-regex
const RAW_CONTROL = /[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e]/;
const HOSTILE = 'A\x1b[2J\x1b[1;1H\x1b]0;owned title\x07B\x07C\x9b31mD\r\nE\u202eF\x00G';
const JWT = 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4eHh4eHgifQ.c2lnbmF0dXJlLXNpZ25hdHVyZQ';

describe('output safety: control characters, length, secrets', () => {
  test('terminal escape sequences are removed and other controls shown as visible escapes', () => {
    const one = stripControls(HOSTILE);
    assert.doesNotMatch(one, RAW_CONTROL);
    assert.doesNotMatch(one, /owned title|\[2J/);
    assert.match(one, /A\s*B\\x07C/);
    assert.match(one, /E<U\+202E>F\\x00G/);
    assert.ok(!one.includes('\n'), 'one line unless asked');
    assert.ok(stripControls('a\nb\tc', { multiline: true }).includes('\n'), 'multiline keeps line breaks');
  });

  test('server text is one line, capped at 2,000 characters; sinks cap any string at 8,000', () => {
    const s = serverText('x'.repeat(100_000));
    assert.ok(s.length < 2100, `${s.length}`);
    assert.match(s, /98000 more characters cut/);
    assert.ok(safeText('y'.repeat(50_000)).length < 8100);
    assert.equal(safeText('short'), 'short');
  });

  test('secrets are redacted by shape: JWT, bearer/SSWS/Basic/Negotiate, URL passwords, PEM keys, authorization headers', () => {
    const text = `jwt ${JWT}; Bearer abcdefgh12345678; SSWS 00abcdefghijabcdefghijabcdefghijabcdefghij12; Basic YWxpY2U6c2VjcmV0MTIz; `
      + `http://bob:hunter2pass@proxy.example:3128; authorization: Token9876543210; -----BEGIN EC PRIVATE KEY-----\nMHcCAQEE\n-----END EC PRIVATE KEY-----`;
    const out = redact(text);
    for (const leaked of [JWT, 'abcdefgh12345678', '00abcdefghij', 'YWxpY2U6c2VjcmV0MTIz', 'hunter2pass', 'Token9876543210', 'MHcCAQEE']) {
      assert.ok(!out.includes(leaked), `${leaked} leaked: ${out}`);
    }
    assert.match(out, /http:\/\/bob:\[redacted\]@proxy\.example/);
  });

  test('secrets are redacted by value: whatever the configuration marks secret (challenge, proxy passwords)', () => {
    clearSecrets();
    const dir = tempDir('cfg');
    loadConfig({ env: { HOME: dir, DTA_STATE_DIR: dir, DTA_SCEP_CHALLENGE: 'chal-Q9z!x', DTA_HTTP_PROXY: 'http://u:pr%40xy-pw@127.0.0.1:3128', https_proxy: 'http://v:envPw-77@127.0.0.1:1' } });
    const out = redact('the CA said: challenge chal-Q9z!x wrong; proxy pw pr@xy-pw or pr%40xy-pw; env envPw-77');
    assert.doesNotMatch(out, /chal-Q9z!x|pr@xy-pw|pr%40xy-pw|envPw-77/);
    registerSecret('adm1n-token-value');
    assert.equal(redact('x adm1n-token-value y'), 'x [secret redacted] y');
    registerSecret('true');
    assert.equal(redact('{"skip":true}'), '{"skip":true}', 'a value too short to be told from ordinary text is not registered');
    clearSecrets();
  });

  test('safeJson cleans every string of a value, keys included; JSON escapes of controls are neutralized', () => {
    const v = safeJson({ a: [HOSTILE, 1, true, null], [`k\x1b[2J`]: { b: JWT } });
    assert.doesNotMatch(JSON.stringify(v), /\\u001b|\\u0007|eyJhbGciOiJFUzI1NiJ9\.eyJ/);
    const text = neutralizeJsonControls(JSON.stringify({ m: 'a\x1b[2Jb\x07' }));
    assert.doesNotMatch(JSON.parse(text).m, RAW_CONTROL);
    assert.equal(JSON.parse(text).m, 'a\\u001b[2Jb\\u0007');
  });
});

describe('every sink goes through the layer', () => {
  test('the event log file and the platform log line', () => {
    const dir = tempDir('ev');
    const seen: string[] = [];
    const log = new EventLog(dir, 'user', { sinks: [(e) => seen.push(eventSinkCommands.logger(e).input!.replace(/\n$/, ""))] });
    log.record('REJECTED', `refused: ${HOSTILE} ${JWT} ${'z'.repeat(20_000)}`, { summary: HOSTILE, token: `Bearer abcdefghijklmnop` });
    const file = fs.readFileSync(path.join(dir, 'events.jsonl'), 'utf8');
    for (const text of [file, JSON.stringify(JSON.parse(file)), seen[0]!]) {
      assert.doesNotMatch(text, RAW_CONTROL);
      assert.doesNotMatch(text, /\\u001b|\\u0007|eyJhbGciOiJFUzI1NiJ9\.eyJ|abcdefghijklmnop/);
    }
    assert.ok(file.length < 12_000, `the line is capped (${file.length})`);
    assert.ok(seen[0]!.length <= 2000);
  });

  test('state.json: a last-run message quoting a server is stored clean', () => {
    const dir = tempDir('st');
    const { state } = loadState(dir);
    saveState(dir, { ...state, lastRun: { at: new Date().toISOString(), task: 'user', outcome: 'failed', code: 'X', message: `${HOSTILE} ${JWT} ${'q'.repeat(200_000)}` } });
    const text = fs.readFileSync(path.join(dir, 'state.json'), 'utf8');
    assert.ok(text.length < 10_000, `state.json stays small (${text.length})`);
    assert.doesNotMatch(JSON.stringify(JSON.parse(text)), /\\u001b|\\u0007|eyJhbGciOiJFUzI1NiJ9\.eyJ/);
    assert.equal(loadState(dir).state.lastRun?.code, 'X', 'and still reads back');
  });

  test('IPC answers (and so the dashboard)', async () => {
    const status = { trust: 'trusted', headline: `h ${HOSTILE}`, state: 'ENROLLED', summary: `s ${JWT}`, deviceId: 'd', deviceName: 'n', certificatesInStore: 1, busy: null } as StatusView;
    const h = { 'status:get': async () => status } as unknown as Handlers;
    const r = await dispatch('status:get', {}, { frameUrl: 'app://dashboard/index.html', isMainFrame: true }, h, { allowedOrigins: ['app://dashboard'] });
    assert.ok(r.ok);
    assert.doesNotMatch(JSON.stringify(r), /\\u001b|\\u0007|eyJhbGciOiJFUzI1NiJ9\.eyJ/);
  });

  test('the support bundle: config.json has no scepChallenge or proxy password, no file has a control character', async () => {
    clearSecrets();
    const dir = tempDir('bundle');
    const loaded = loadConfig({ env: { HOME: dir, DTA_STATE_DIR: path.join(dir, 'state'), DTA_SCEP_CHALLENGE: 'bundle-Chal-123', DTA_HTTP_PROXY: 'http://u:bundleProxyPw@127.0.0.1:3128', DTA_MANAGED_CONFIG_DIR: path.join(dir, 'm') } });
    new EventLog(loaded.config.stateDir, 'user', { sinks: [] }).record('REJECTED', `server said ${HOSTILE} bundle-Chal-123`);
    const file = path.join(dir, 'b.zip');
    await writeSupportBundle({ loaded, context: testContext(), file, diagnose: false, secrets: null, platform: null, env: { HOME: dir }, version: 'test' });
    const text = execFileSync('unzip', ['-p', file], { encoding: 'utf8' });
    assert.doesNotMatch(text, /bundle-Chal-123|bundleProxyPw/);
    assert.match(text, /"scepChallenge": "\[redacted\]"/);
    assert.doesNotMatch(text, RAW_CONTROL);
    clearSecrets();
  });
});

describe('host patterns from the server', () => {
  const org = 'https://acme.okta.com';
  test('the org domain', () => {
    assert.equal(orgDomain('https://acme.okta.com'), 'okta.com');
    assert.equal(orgDomain('https://id.acme.co.uk'), 'acme.co.uk');
    assert.equal(orgDomain('https://acme.github.io'), 'acme.github.io');
    assert.equal(orgDomain('https://localhost:8443'), 'localhost');
    assert.equal(orgDomain('https://127.0.0.1:8443'), '127.0.0.1');
  });
  for (const [pattern, ok] of [
    ['https://[*.]okta.com', true], ['https://acme.okta.com', true], ['https://acme.okta.com:8443/path', true], ['https://login.okta.com/', true],
    ['*', false], ['https://*', false], ['https://*.com', false], ['https://[*.]com', false], ['[*.]okta.com', false], ['http://acme.okta.com', false],
    ['https://evil.example.net', false], ['https://okta.com.evil.net', false], ['https://apps.partner.example', true], ['https://[*.]partner.example', true], ['file:///etc/passwd', false],
  ] as const) {
    test(`${ok ? 'accepted' : 'refused'}: ${pattern}`, () => {
      const r = checkHostPatterns([pattern], { orgUrl: org, allowList: ['partner.example'] });
      assert.equal(r.accepted.length, ok ? 1 : 0, JSON.stringify(r));
      if (!ok) assert.ok(r.refused[0]!.reason.length > 10);
    });
  }
});

describe('CA continuity', () => {
  async function ca(name: string, signer?: KeyedCertificate, key?: webcrypto.CryptoKeyPair): Promise<KeyedCertificate> {
    if (!signer && !key) return createRootCa(name, 30);
    const keys = key ?? ((await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair);
    const s = signer!;
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: randomSerial(), subject: `CN=${name}`, issuer: s.cert.subject, notBefore: new Date(Date.now() - 60_000), notAfter: new Date(Date.now() + 86_400_000),
      publicKey: keys.publicKey, signingKey: s.privateKey, signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
      extensions: [new x509.BasicConstraintsExtension(true, 1, true)],
    });
    return { cert, privateKey: keys.privateKey };
  }
  const pem = (k: KeyedCertificate) => k.cert.toString('pem');

  test('same chain, rollover signed by the old root, cross-signed new root, pinned, and an unrelated CA', async () => {
    const root = await ca('Root');
    const issuing = await ca('Issuing', root);
    const old = [pem(issuing), pem(root)];
    assert.deepEqual(checkCaContinuity(old, old), { ok: true, how: 'same', added: [] });

    const issuing2 = await ca('Issuing', root);
    assert.equal((checkCaContinuity(old, [pem(issuing2), pem(root)]) as { how: string }).how, 'rollover');

    const root2 = await createRootCa('Root 2', 30);
    const root2Keys = { publicKey: await root2.cert.publicKey.export(), privateKey: root2.privateKey } as webcrypto.CryptoKeyPair;
    const cross = await ca('Root 2', root, root2Keys);
    const issuing3 = await ca('Issuing', root2);
    assert.equal(checkCaContinuity(old, [pem(issuing3), pem(root2)]).ok, false, 'a new root nobody vouches for');
    assert.equal((checkCaContinuity(old, [pem(issuing3), pem(cross), pem(root2)]) as { how: string }).how, 'rollover', 'cross-signed by the old root');

    const rogueRoot = await createRootCa('Root', 30);
    const rogue = await ca('Issuing', rogueRoot);
    const refused = checkCaContinuity(old, [pem(rogue), pem(rogueRoot)]);
    assert.equal(refused.ok, false);
    const fps = [rogue, rogueRoot].map((k) => new X509Certificate(pem(k)).fingerprint256.replace(/:/g, '').toLowerCase());
    assert.equal((checkCaContinuity(old, [pem(rogue), pem(rogueRoot)], [fps[1]!]) as { how: string }).how, 'pinned', 'the admin pinned the new root');
    assert.equal((checkCaContinuity(old, [pem(rogue), pem(rogueRoot)], [fps[0]!]) as { how: string }).how, 'pinned', 'the admin pinned the new issuing CA (its root adds nothing)');
  });
});
