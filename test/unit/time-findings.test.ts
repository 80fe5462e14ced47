/**
 * The pure pieces behind the time and pacing rules: clock anomalies found and repaired, Retry-After parsed and
 * honoured with jitter (never beyond its cap), refusals about time named with the measured offset, and the
 * renewal window clamped to a short-lived certificate.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AgentError } from '../../src-main/base/errors.js';
import { clockFinding, isTimeRefusal } from '../../src-main/core/time/clock-finding.js';
import { effectiveWindow } from '../../src-main/core/time/renewal-window.js';
import { findClockAnomalies, repairRecord, repairTimes } from '../../src-main/core/scheduler/anomaly.js';
import { deadlines } from '../../src-main/core/scheduler/plan.js';
import { DEFAULT_POLICY, retryDelay } from '../../src-main/core/scheduler/policy.js';
import { emptyRecord } from '../../src-main/core/scheduler/record.js';
import { stateForFailure } from '../../src-main/core/scheduler/states.js';
import { parseRetryAfter, withServerTime } from '../../src-main/core/time/server-time.js';

const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;
const NOW = Date.parse('2026-06-01T12:00:00Z');
const iso = (ms: number) => new Date(ms).toISOString();

test('a last pass recorded 340 days ahead is an anomaly: reported with both times, a check due now, the grid from now', () => {
  const ahead = NOW + 340 * DAY;
  const record = { ...emptyRecord(), anchor: iso(ahead - 10 * DAY), lastPass: { at: iso(ahead), trigger: 'manual' as const, outcome: 'failed' as const, message: 'x' }, failures: 1, retryAt: iso(ahead + HOUR) };
  const found = findClockAnomalies(DEFAULT_POLICY, record, NOW, { hold: { at: iso(ahead), until: iso(ahead + 6 * HOUR) } });
  assert.deepEqual(found.map((a) => a.what).sort(), ['first pass (daily grid)', 'last pass', 'rejection hold', 'retry (backoff)']);
  assert.equal(found.find((a) => a.what === 'last pass')!.recorded, iso(ahead));
  assert.equal(found[0]!.now, iso(NOW));
  const fixed = repairRecord(record, found, NOW);
  assert.equal(fixed.lastPass!.at, iso(NOW));
  assert.equal(fixed.retryAt, undefined);
  assert.match(fixed.clockCheck!.detail, /340 days ahead/);
  const d = deadlines(DEFAULT_POLICY, { record: fixed, cert: undefined, configured: true, configFingerprint: 'c' }, NOW);
  assert.equal(d[0]!.reason, 'clock');
  assert.equal(d[0]!.at, NOW);
  const hold = repairTimes({ hold: { at: iso(ahead), until: iso(ahead + 6 * HOUR) } }, NOW).hold!;
  assert.deepEqual(hold, { at: iso(NOW), until: iso(NOW + 6 * HOUR) }, 'the hold keeps its length from now');
  // Ordinary futures are not anomalies: a retry within the longest backoff, a minute of jitter between processes.
  assert.deepEqual(findClockAnomalies(DEFAULT_POLICY, { ...emptyRecord(), retryAt: iso(NOW + 20 * HOUR), lastPass: { at: iso(NOW + MIN), trigger: 'daily', outcome: 'nothing-to-do', message: '' } }, NOW), []);
});

test('Retry-After: seconds or an HTTP date, honoured when longer than the backoff, jittered upward, capped at a day', () => {
  assert.equal(parseRetryAfter('120', NOW), 120_000);
  assert.equal(parseRetryAfter(new Date(NOW + 90_000).toUTCString(), NOW), 90_000);
  for (const bad of ['', '-5', 'soon', '0', new Date(NOW - 1000).toUTCString()]) assert.equal(parseRetryAfter(bad, NOW), undefined, bad);
  const e = withServerTime(new AgentError('retry-later', 'SERVER_UNAVAILABLE', 'busy'), 429, { 'retry-after': '3600', date: new Date(NOW + 5000).toUTCString() }, NOW);
  assert.equal(e.retryAfterMs, 3_600_000);
  const notRetry = withServerTime(new AgentError('rejected', 'X', 'no'), 400, { 'retry-after': '3600' }, NOW);
  assert.equal(notRetry.retryAfterMs, undefined, 'only 429/503 retry-later answers carry it');
  const far = 200 * DAY;
  assert.equal(retryDelay(DEFAULT_POLICY, 1, far, undefined, () => 0.5), MIN);
  assert.equal(retryDelay(DEFAULT_POLICY, 1, far, HOUR, () => 0), HOUR, 'at least the Retry-After');
  assert.equal(retryDelay(DEFAULT_POLICY, 1, far, HOUR, () => 1), 1.25 * HOUR, 'plus up to 25 % so a fleet does not return in the same second');
  assert.equal(retryDelay(DEFAULT_POLICY, 1, far, 30 * DAY, () => 1), DAY, 'a hostile Retry-After cannot park the agent');
});

test('refusals about time become CLOCK_SKEW with the measured offset; other refusals are left alone', () => {
  const nbf = new AgentError('rejected', 'E0000_INVALID_TOKEN', 'The org at x refused the request (HTTP 401): "The renewal token is not valid: "nbf" claim timestamp check failed".');
  (nbf as AgentError & { serverClockOffsetMs?: number }).serverClockOffsetMs = -340 * DAY;
  const f = clockFinding(nbf, 'the org', { localNow: NOW })!;
  assert.equal(f.code, 'CLOCK_SKEW');
  assert.equal(f.failure, 'retry-later', 'retried with backoff, not stuck, not a re-enrollment');
  assert.match(f.message, /340 days ahead of the org's \(its Date header\)/);
  assert.equal(stateForFailure(f.failure, f.code), 'CLOCK_WRONG');
  const scepBadTime = new AgentError('rejected', 'SCEP_REJECTED', 'The SCEP CA at h rejected the RenewalReq request: x (failInfo badTime).');
  assert.match(clockFinding(scepBadTime, 'the SCEP CA', { sntpOffsetMs: 2 * HOUR })!.message, /2\.0 h behind the domain controller's \(SNTP\)/);
  const tls = new AgentError('bad-answer', 'TLS_UNTRUSTED', 'The TLS certificate could not be verified', undefined, { cause: Object.assign(new Error('certificate has expired'), { code: 'CERT_HAS_EXPIRED' }) });
  assert.ok(isTimeRefusal(tls));
  assert.equal(clockFinding(new AgentError('rejected', 'USER_NOT_ACTIVE', 'The user is not active.'), 'the org'), undefined);
  assert.equal(clockFinding(new AgentError('rejected', 'E0000_INVALID_TOKEN', 'carries certificate 1, which is revoked'), 'the org'), undefined);
});

test('the renewal window is clamped to a third of a short-lived certificate, and left alone otherwise', () => {
  const ten = effectiveWindow(NOW, NOW + 10 * DAY, 14 * DAY);
  assert.equal(ten.clamped, true);
  assert.equal(ten.windowMs, Math.floor((10 * DAY) / 3));
  const year = effectiveWindow(NOW, NOW + 365 * DAY, 14 * DAY);
  assert.deepEqual([year.clamped, year.windowMs], [false, 14 * DAY]);
});
