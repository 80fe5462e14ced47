/**
 * Host patterns by the Public Suffix List (core/certificates/host-patterns.ts, tldts): the org's domain is its registrable
 * domain, so an org hosted under a shared suffix (github.io, s3.amazonaws.com) cannot hand the device certificate
 * to every other tenant there; a suffix is admitted only when an admin lists it in managed configuration.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { checkHostPatterns, isPublicSuffix, orgDomain } from '../../src-main/core/certificates/host-patterns.js';
import { loadConfig } from '../../src-main/core/config.js';
import { hostPatternOptions } from '../../src-main/core/certificates/host-patterns.js';

const ok = (orgUrl: string, pattern: string, extra: { allowList?: string[]; allowListManaged?: boolean } = {}) =>
  checkHostPatterns([pattern], { orgUrl, ...extra });

describe('the org domain is the registrable domain (Public Suffix List)', () => {
  for (const [url, domain] of [
    ['https://acme.okta.com', 'okta.com'],
    ['https://acme.okta-emea.com/x', 'okta-emea.com'],
    ['https://acme.github.io', 'acme.github.io'],
    ['https://acme.s3.amazonaws.com', 'acme.s3.amazonaws.com'],
    ['https://id.acme.co.uk', 'acme.co.uk'],
    ['https://localhost:8443', 'localhost'],
    ['https://127.0.0.1:8443', '127.0.0.1'],
    ['https://[::1]:8443', '::1'],
    ['https://idp.lab.test', 'lab.test'],
  ] as const) {
    test(`${url} → ${domain}`, () => assert.equal(orgDomain(url), domain));
  }
  test('public suffixes, ICANN and private', () => {
    for (const s of ['github.io', 's3.amazonaws.com', 'co.uk', 'blogspot.com']) assert.equal(isPublicSuffix(s), true, s);
    for (const s of ['okta.com', 'acme.github.io', 'amazonaws.com', 'localhost', '127.0.0.1', 'lab.test']) assert.equal(isPublicSuffix(s), false, s);
  });
});

describe('patterns at a public suffix are refused; the org\'s own are kept', () => {
  const cases: [string, string, boolean][] = [
    // The vendor's own domain, as the original agent writes it: still allowed.
    ['https://acme.okta.com', 'https://[*.]okta.com', true],
    ['https://acme.okta.com', 'https://acme.okta.com:8443/path', true],
    // An org hosted under a shared suffix: its own host yes, the suffix (every tenant) no.
    ['https://acme.github.io', 'https://acme.github.io', true],
    ['https://acme.github.io', 'https://[*.]acme.github.io', true],
    ['https://acme.github.io', 'https://[*.]github.io', false],
    ['https://acme.github.io', 'https://github.io', false],
    ['https://acme.github.io', 'https://other.github.io', false],
    ['https://acme.s3.amazonaws.com', 'https://[*.]s3.amazonaws.com', false],
    ['https://acme.s3.amazonaws.com', 'https://[*.]amazonaws.com', false],
    ['https://acme.s3.amazonaws.com', 'https://acme.s3.amazonaws.com', true],
    ['https://id.acme.co.uk', 'https://[*.]acme.co.uk', true],
    ['https://id.acme.co.uk', 'https://[*.]co.uk', false],
    ['https://id.acme.co.uk', 'https://other.co.uk', false],
    // Addresses, localhost and the lab's .test hosts.
    ['https://127.0.0.1:8443', 'https://127.0.0.1:8443', true],
    ['https://127.0.0.1:8443', 'https://[*.]127.0.0.1', false],
    ['https://localhost:8443', 'https://localhost:9443', true],
    ['https://localhost:8443', 'https://[*.]localhost', false],
    ['https://idp.lab.test', 'https://[*.]lab.test', true],
    ['https://idp.lab.test', 'https://[*.]test', false],
    ['https://idp.lab.test', 'https://other.test', false],
    // Never a bare wildcard.
    ['https://acme.okta.com', '*', false],
    ['https://acme.okta.com', 'https://*', false],
  ];
  for (const [orgUrl, pattern, accepted] of cases) {
    test(`${orgUrl}: ${pattern} is ${accepted ? 'accepted' : 'refused'}`, () => {
      const r = ok(orgUrl, pattern);
      assert.equal(r.accepted.length, accepted ? 1 : 0, JSON.stringify(r));
      if (!accepted) assert.ok(r.refused[0]!.reason.length > 10);
    });
  }
  test('the refusal of a suffix says what it is and who can allow it', () => {
    const r = ok('https://acme.github.io', 'https://[*.]github.io');
    assert.match(r.refused[0]!.reason, /github\.io is a public suffix .*hostPatternAllowList in the managed configuration/);
  });
});

describe('an admin can allow a suffix in managed configuration; a user cannot', () => {
  test('managed: the listed suffix is admitted, nothing else is', () => {
    const managed = { allowList: ['github.io'], allowListManaged: true };
    assert.equal(ok('https://acme.github.io', 'https://[*.]github.io', managed).accepted.length, 1);
    assert.equal(ok('https://acme.github.io', 'https://[*.]s3.amazonaws.com', managed).accepted.length, 0);
    assert.equal(ok('https://acme.github.io', '*', managed).accepted.length, 0, 'never *');
    assert.equal(ok('https://acme.github.io', 'https://[*.]io', { allowList: ['io'], allowListManaged: true }).accepted.length, 0, 'never a wildcard over a top-level domain');
  });
  test('the same list from the user\'s own configuration admits no suffix, nor the tenants under it', () => {
    const user = { allowList: ['github.io', 'partner.example'], allowListManaged: false };
    assert.equal(ok('https://acme.github.io', 'https://[*.]github.io', user).accepted.length, 0);
    assert.equal(ok('https://acme.github.io', 'https://evil.github.io', user).accepted.length, 0);
    assert.equal(ok('https://acme.github.io', 'https://[*.]partner.example', user).accepted.length, 1, 'an ordinary domain still counts');
  });
  test('where the allow list came from is read from the configuration sources', () => {
    const env = { HOME: '/nonexistent', DTA_ORG_URL: 'https://acme.github.io', XDG_CONFIG_HOME: '/nonexistent' };
    const none = { description: 'none', read: () => [] };
    const admin = { description: 'test', read: () => [{ origin: 'managed.json', values: { hostPatternAllowList: ['github.io'] } }] };
    assert.equal(hostPatternOptions(loadConfig({ env, managed: none, cli: { hostPatternAllowList: 'github.io' } })).allowListManaged, false);
    assert.equal(hostPatternOptions(loadConfig({ env, managed: admin })).allowListManaged, true);
  });
});
