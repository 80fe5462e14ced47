import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { redact } from '../../src-main/base/safe-text.js';
import { Trace } from '../../src-main/base/trace.js';
import { autoSelectEntries, writeChromiumPolicies } from '../../src-main/platform/browser-policy.js';
import { tempDir } from '../support/agent.js';

const JWT = 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZUBMQUIuVEVTVCJ9.c2lnbmF0dXJlc2lnbmF0dXJl';

test('tokens, Negotiate blobs and private keys are redacted from log text', () => {
  const text = `user token ${JWT}; Authorization: Negotiate YIIFbgYGKwYBBQUCoIIFYjCCBV6gDTALBgkqhkiG9xIBAgKiggVLBIIFR2CCBUMGCSqGSIb3EgECAgEAboIFMjCCBS6gAwIBBaEDAgEOogcDBQAg
-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg
-----END PRIVATE KEY-----`;
  const out = redact(text);
  assert.ok(!out.includes(JWT));
  assert.ok(!out.includes('YIIFbgYGKwYBBQUC'));
  assert.ok(!out.includes('MIGHAgEAMBMGByqGSM49'));
  assert.match(out, /Negotiate \[redacted\]/);
  assert.match(out, /\[private key redacted\]/);
});

test('--debug shows tokens only with --show-tokens', () => {
  const lines: string[] = [];
  new Trace((l) => lines.push(l), false).secret('User token', JWT);
  assert.ok(!lines.join('\n').includes(JWT));
  assert.match(lines.join('\n'), /--show-tokens/);
  const shown: string[] = [];
  new Trace((l) => shown.push(l), true).secret('User token', JWT);
  assert.ok(shown.join('\n').includes(JWT));
});

test('AutoSelectCertificateForUrls entries follow the documented format', () => {
  const [entry] = autoSelectEntries(['https://[*.]example.okta.com'], 'MTLS Certificate Authority');
  assert.equal(entry, '{"pattern":"https://[*.]example.okta.com","filter":{"ISSUER":{"CN":"MTLS Certificate Authority"}}}');
});

test('the policy file is written atomically, world-readable, and unwritable directories are reported', () => {
  const dir = path.join(tempDir('pol'), 'managed');
  const blocked = path.join(tempDir('pol'), 'file-not-dir');
  fs.writeFileSync(blocked, 'x');
  const res = writeChromiumPolicies([dir, path.join(blocked, 'managed')], ['https://localhost:8443'], 'MTLS Certificate Authority');
  assert.deepEqual(res.written, [path.join(dir, 'device-trust-agent.json')]);
  assert.equal(res.skipped.length, 1);
  const policy = JSON.parse(fs.readFileSync(res.written[0]!, 'utf8'));
  assert.equal(JSON.parse(policy.AutoSelectCertificateForUrls[0]).filter.ISSUER.CN, 'MTLS Certificate Authority');
  assert.equal(fs.statSync(res.written[0]!).mode & 0o777, 0o644);
  assert.deepEqual(fs.readdirSync(dir), ['device-trust-agent.json'], 'no temp files left behind');
});
