/**
 * The findings rules over probe results. The network cases (IWA failover, slow targets, KDC down, clock skew,
 * a TLS-inspecting middlebox, agent pools) are tested end to end in test/integration; here the rules are fed
 * results of the same shape for the cases that are slow or awkward to stage there (certificates in odd states,
 * the delegated-auth window at chosen times, an org blocked while internal servers answer), plus the parsers
 * of krb5.conf and captured klist output.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DELEGATED_AUTH_WINDOW_MS, evaluateFindings, worstSeverity, type FindingsInput } from '../../src-main/core/diagnostics/findings.js';
import { parseKlist, parseKrb5Conf, splitHostPort } from '../../src-main/core/diagnostics/directory.js';
import type { AgentPool, ProbeResult } from '../../src-main/core/diagnostics/types.js';
import type { OrgConfig } from '../../src-main/core/enrollment/protocol.js';

const NOW = new Date('2026-06-10T12:00:00Z');
const org: OrgConfig = {
  orgId: 'o', orgName: 'Acme', readOnly: false,
  iwa: { primary: 'https://iwa1.acme.test/IWA', backups: ['https://iwa2.acme.test/IWA'], failoverMode: 'REDIRECT_TO_BACKUP' },
  mtls: { url: 'https://mtls.acme.okta.com/check', hostPatterns: [] },
  ca: { issuerCN: 'MTLS Certificate Authority', chainPem: ['-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----'] },
  certificate: { validitySeconds: 1, renewalWindowSeconds: 1 },
};

function probe(id: string, kind: ProbeResult['kind'], status: ProbeResult['status'], facts: Record<string, unknown> = {}, error?: { code: string; message: string }): ProbeResult {
  return { id, kind, target: id, status, ms: 5, stages: [], facts, ...(error ? { error } : {}) };
}

function input(probes: ProbeResult[], extra: Partial<FindingsInput> = {}): FindingsInput {
  return { orgUrl: 'https://acme.okta.com', org, orgFromCache: false, probes, pools: undefined, now: NOW, lastSignIn: undefined, ...extra };
}
const codes = (i: FindingsInput) => evaluateFindings(i).map((f) => f.code);
const cert = (facts: Record<string, unknown>) => probe('certificate', 'certificate', 'ok', { issuerCN: 'MTLS Certificate Authority', count: 1, keyPresent: true, current: { serialNumber: 'ab', notAfter: '2027-01-01T00:00:00Z' }, ...facts });

test('TLS interception: the mTLS endpoint saw no certificate although one was presented', () => {
  const f = evaluateFindings(input([probe('mtls', 'mtls', 'ok', { presented: 'ab12', trusted: false, reason: 'no-certificate' }), cert({})]));
  const i = f.find((x) => x.code === 'TLS_INTERCEPTION')!;
  assert.equal(i.severity, 'error');
  assert.match(i.evidence[0]!, /ab12 was presented, but the mTLS endpoint saw no client certificate/);
  assert.match(i.remedy, /mtls\.acme\.okta\.com.*\*\.okta\.com/);
  assert.ok(!f.some((x) => x.code === 'CERT_NOT_TRUSTED'), 'not blamed on the certificate');
});

test('TLS interception: a security product\'s CA in the presented chain', () => {
  const tls = { protocol: 'TLSv1.3', chain: [{ subject: 'acme.okta.com', issuer: 'Zscaler Intermediate Root CA (zscaler.net)', validTo: '' }], rootIssuer: 'Zscaler Root CA' };
  const f = evaluateFindings(input([probe('org', 'org', 'ok', { tls })]));
  assert.match(f.find((x) => x.code === 'TLS_INTERCEPTION')!.evidence[0]!, /org: the server certificate was issued by "Zscaler/);
});

test('certificate missing, duplicated, expiring, expired, key gone; user not active', () => {
  const missing = evaluateFindings(input([probe('certificate', 'certificate', 'ok', { count: 0, issuerCN: 'MTLS Certificate Authority', lastRun: { at: 'x', code: 'USER_NOT_ACTIVE', message: 'The org refused enrollment because the user is not active.' } })]));
  assert.deepEqual(missing.map((f) => f.code).sort(), ['CERT_MISSING', 'USER_NOT_ACTIVE']);
  assert.match(missing.find((f) => f.code === 'CERT_MISSING')!.cause, /USER_NOT_ACTIVE/);
  assert.ok(codes(input([cert({ count: 2, certificates: [{ serialNumber: 'a', notAfter: 'x' }, { serialNumber: 'b', notAfter: 'y' }] })])).includes('CERT_DUPLICATED'));
  assert.ok(codes(input([cert({ current: { serialNumber: 'ab', notAfter: '2026-06-20T00:00:00Z' } })])).includes('CERT_EXPIRING'));
  assert.ok(codes(input([cert({ current: { serialNumber: 'ab', notAfter: '2026-12-20T00:00:00Z', renewFrom: '2026-06-01T00:00:00Z' } })])).includes('CERT_EXPIRING'), 'inside the renewal window');
  assert.ok(codes(input([cert({ current: { serialNumber: 'ab', notAfter: '2026-06-01T00:00:00Z' } })])).includes('CERT_EXPIRED'));
  assert.ok(codes(input([cert({ keyPresent: false })])).includes('CERT_KEY_MISSING'));
  assert.deepEqual(codes(input([cert({})])), [], 'a healthy certificate gives no finding');
});

test('a missing Kerberos ticket is an error before enrollment and a warning after (renewal needs no IWA)', () => {
  const noTicket = probe('kerberos:user', 'kerberos', 'fail', {}, { code: 'KERBEROS_NO_TICKET', message: 'No Kerberos ticket' });
  const before = evaluateFindings(input([noTicket, probe('certificate', 'certificate', 'ok', { count: 0 })])).find((f) => f.code === 'NO_KERBEROS_TICKET')!;
  const after = evaluateFindings(input([noTicket, cert({})])).find((f) => f.code === 'NO_KERBEROS_TICKET')!;
  assert.equal(before.severity, 'error');
  assert.equal(after.severity, 'warning');
  assert.match(before.cause, /not domain-joined|local account/);
});

test('the org blocked while internal servers answer: the allowlist is missing the identity provider\'s domains', () => {
  const f = evaluateFindings(input([probe('org', 'org', 'timeout', {}, { code: 'TIMEOUT', message: 'no answer' }), probe('iwa:primary', 'iwa', 'ok')]));
  const b = f.find((x) => x.code === 'IDP_BLOCKED')!;
  assert.match(b.remedy, /acme\.okta\.com, \*\.okta\.com, \*\.okta-emea\.com, \*\.okta-gov\.com/);
});

const adPool = (status: string, agents: { name: string; operationalStatus: string; lastConnection: number }[]): AgentPool => ({ id: 'p', name: 'ACME.TEST', type: 'AD', operationalStatus: status, agents: agents.map((a, i) => ({ id: `a${i}`, ...a })) });

test('all AD agents down: the delegated-authentication window is computed from the last sign-in the agent saw', () => {
  const pools = [adPool('DISRUPTED', [{ name: 'DC01', operationalStatus: 'DISRUPTED', lastConnection: NOW.getTime() - 7200_000 }])];
  const seen = new Date(NOW.getTime() - 2 * 86_400_000).toISOString();
  const open = evaluateFindings(input([], { pools, lastSignIn: { at: seen, how: 'enrollment', principal: 'alice@ACME.TEST' } })).find((f) => f.code === 'AD_AGENTS_DOWN')!;
  assert.equal(open.severity, 'warning');
  const ends = new Date(Date.parse(seen) + DELEGATED_AUTH_WINDOW_MS).toISOString();
  assert.ok(open.evidence.some((e) => e.includes(`window ends ${ends} (in 3.0 days)`)), open.evidence.join('\n'));
  assert.match(open.cause, /5 days.*password.*suspended, deactivated or disabled.*expires/);
  const old = new Date(NOW.getTime() - 6 * 86_400_000).toISOString();
  const closed = evaluateFindings(input([], { pools, lastSignIn: { at: old, how: 'enrollment' } })).find((f) => f.code === 'AD_AGENTS_DOWN')!;
  assert.equal(closed.severity, 'error');
  assert.ok(closed.evidence.some((e) => /window ended .* \(1\.0 days ago\)/.test(e)), closed.evidence.join('\n'));
  const none = evaluateFindings(input([], { pools })).find((f) => f.code === 'AD_AGENTS_DOWN')!;
  assert.equal(none.severity, 'error');
  assert.ok(none.evidence.includes('this agent has seen no successful sign-in'));
  const healthy = [adPool('OPERATIONAL', [{ name: 'DC01', operationalStatus: 'OPERATIONAL', lastConnection: NOW.getTime() }])];
  assert.deepEqual(codes(input([], { pools: healthy })), []);
});

test('the org shows the IWA offline although it answers us: the AD agent\'s health check is blocked', () => {
  const pools: AgentPool[] = [{ id: 'i', name: 'IWA', type: 'IWA', operationalStatus: 'DEGRADED', agents: [{ id: 'x', name: 'IWA-PRIMARY', operationalStatus: 'DISRUPTED' }] }];
  assert.ok(codes(input([probe('iwa:primary', 'iwa', 'ok'), probe('iwa:backup:1', 'iwa', 'ok')], { pools })).includes('IWA_HEALTH_CHECK_BLOCKED'));
});

test('the worst finding decides', () => {
  assert.equal(worstSeverity([]), 'ok');
  assert.equal(worstSeverity(evaluateFindings(input([], { org: { ...org, readOnly: true } }))), 'warning');
});

test('krb5.conf: default realm and the realm\'s KDCs', () => {
  const conf = parseKrb5Conf(`[libdefaults]
  default_realm = ACME.TEST   # comment
[realms]
  ACME.TEST = {
    kdc = dc1.acme.test
    kdc = dc2.acme.test:750
    admin_server = dc1.acme.test
  }
  OTHER = {
    kdc = [fd00::1]:88
  }
[domain_realm]
  .acme.test = ACME.TEST
`);
  assert.equal(conf.defaultRealm, 'ACME.TEST');
  assert.deepEqual(conf.kdcs, { 'ACME.TEST': ['dc1.acme.test', 'dc2.acme.test:750'], OTHER: ['[fd00::1]:88'] });
  assert.deepEqual(splitHostPort('dc2.acme.test:750'), { host: 'dc2.acme.test', port: 750 });
  assert.deepEqual(splitHostPort('dc1.acme.test'), { host: 'dc1.acme.test', port: 88 });
  assert.deepEqual(splitHostPort('[fd00::1]:88'), { host: 'fd00::1', port: 88 });
});

test('klist output (captured from MIT klist 1.20 in the C locale)', () => {
  const k = parseKlist(`Ticket cache: FILE:/tmp/k5/realm/ccache-alice_LAB.TEST-1
Default principal: alice@LAB.TEST

Valid starting     Expires            Service principal
11/23/26 19:20:06  11/24/26 05:20:06  krbtgt/LAB.TEST@LAB.TEST
	renew until 11/24/26 19:20:06
`);
  assert.equal(k.principal, 'alice@LAB.TEST');
  assert.equal(k.ccache, 'FILE:/tmp/k5/realm/ccache-alice_LAB.TEST-1');
  assert.deepEqual(k.tgtExpires, new Date(2026, 10, 24, 5, 20, 6));
  assert.deepEqual(parseKlist('klist: No credentials cache found (filename: /tmp/krb5cc_0)\n'), { ccache: undefined, principal: undefined, tgtExpires: undefined });
});
