import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { test } from 'node:test';
import { applyPass, deadlines, effectiveReport, namedState, type Snapshot } from '../../src-main/core/scheduler/plan.js';
import { backoffDelay, chooseRenewal, DEFAULT_POLICY as P } from '../../src-main/core/scheduler/policy.js';
import { emptyRecord } from '../../src-main/core/scheduler/record.js';
import { AGENT_STATES, stateForFailure } from '../../src-main/core/scheduler/states.js';
import { seededRandom } from '../support/random.js';

const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;
const NOW = Date.parse('2026-03-01T10:00:00Z');
const sha = () => crypto.randomBytes(32).toString('hex');

test('backoff: 1, 10, 100, 1000 minutes, then every 19 h (under a day even with jitter), each with ±25 % jitter', () => {
  const far = 200 * DAY;
  for (const [n, base] of [[1, MIN], [2, 10 * MIN], [3, 100 * MIN], [4, 1000 * MIN], [5, 19 * HOUR], [9, 19 * HOUR]] as const) {
    assert.equal(backoffDelay(P, n, far, () => 0.5), base, `step ${n} without jitter`);
    const lo = backoffDelay(P, n, far, () => 0);
    const hi = backoffDelay(P, n, far, () => 0.999999);
    assert.ok(Math.abs(lo - 0.75 * base) < base * 1e-5, `step ${n} low`);
    assert.ok(Math.abs(hi - 1.25 * base) < base * 1e-5, `step ${n} high: the cap (a day) applies before the jitter`);
  }
});

test('backoff is capped by urgency: no certificate → 4 h; near expiry → an eighth of the time left, at least an hour', () => {
  assert.equal(backoffDelay(P, 9, undefined, () => 0.5), 4 * HOUR);
  assert.equal(backoffDelay(P, 9, 2 * DAY, () => 0.5), 6 * HOUR);
  assert.equal(backoffDelay(P, 9, 3 * HOUR, () => 0.5), HOUR);
  assert.equal(backoffDelay(P, 1, 3 * HOUR, () => 0.5), MIN, 'short steps are not lengthened');
});

test('the renewal moment: in the first two thirds of the window, fixed per certificate, spread across a fleet', () => {
  const notAfter = NOW + 365 * DAY;
  const windowStart = notAfter - 30 * DAY;
  const s = sha();
  const a = chooseRenewal(P, s, notAfter, windowStart);
  assert.deepEqual(chooseRenewal(P, s, notAfter, windowStart), a, 'the same certificate always gets the same moment');
  const buckets = new Array(10).fill(0);
  for (let i = 0; i < 20_000; i++) {
    const at = Date.parse(chooseRenewal(P, sha(), notAfter, windowStart).renewAt);
    assert.ok(at >= windowStart && at <= windowStart + 20 * DAY);
    buckets[Math.min(9, Math.floor(((at - windowStart) / (20 * DAY)) * 10))]++;
  }
  for (const b of buckets) assert.ok(b > 1700 && b < 2300, `uniform over the spread: ${buckets.join(',')}`);
});

test('failures map to named states; rejections, revocation, a missing key and bad configuration are stuck', () => {
  assert.equal(stateForFailure('retry-later', 'UNREACHABLE'), 'ORG_UNREACHABLE');
  assert.equal(stateForFailure('retry-later', 'SERVER_UNAVAILABLE'), 'ORG_UNREACHABLE');
  assert.equal(stateForFailure('retry-later', 'IWA_UNREACHABLE'), 'IWA_UNREACHABLE');
  assert.equal(stateForFailure('retry-later', 'KDC_UNREACHABLE'), 'IWA_UNREACHABLE');
  assert.equal(stateForFailure('retry-later', 'ORG_READ_ONLY'), 'READ_ONLY_ORG');
  assert.equal(stateForFailure('rejected', 'USER_NOT_ACTIVE'), 'REJECTED');
  assert.equal(stateForFailure('rejected', 'CERT_REVOKED'), 'REVOKED');
  assert.equal(stateForFailure('local', 'KEY_MISSING'), 'KEY_MISSING');
  assert.equal(stateForFailure('bad-answer', 'TLS_UNTRUSTED'), 'ANSWER_REFUSED');
  assert.equal(stateForFailure('config', 'NOT_CONFIGURED'), 'NOT_CONFIGURED');
  assert.equal(stateForFailure('config', 'CONFIG_INVALID'), 'NEED_CONFIGURATION');
  for (const [name, def] of Object.entries(AGENT_STATES)) {
    if (def.stuck) assert.ok('action' in def && def.action, `${name} says what a person must do`);
  }
});

function snap(over: Partial<Snapshot> = {}): Snapshot {
  return { record: emptyRecord(), cert: undefined, configured: true, configFingerprint: 'c1', ...over };
}

test('deadlines: first run now; then daily on the first pass\'s grid, the renewal moment, retry and expiry', () => {
  assert.deepEqual(deadlines(P, snap(), NOW).map((d) => d.reason), ['first-run']);
  const cert = { sha256: sha(), notAfter: NOW + 365 * DAY, windowStart: NOW + 335 * DAY };
  let s = snap({ cert });
  s = { ...s, record: applyPass(P, s, 'install', { ok: true, outcome: 'enrolled', message: 'ok' }, NOW, seededRandom(1)) };
  const d = deadlines(P, s, NOW + HOUR);
  assert.deepEqual(d.map((x) => x.reason), ['daily', 'renewal', 'expiry']);
  assert.equal(d[0]!.at, NOW + DAY);
  assert.equal(d[1]!.at, Date.parse(s.record.renewal!.renewAt));
  // A logon pass at 15:00 counts as the day's check: the next daily pass stays on the 10:00 grid, next day.
  s = { ...s, record: applyPass(P, s, 'logon', { ok: true, outcome: 'nothing-to-do', message: 'ok' }, NOW + DAY + 5 * HOUR, seededRandom(1)) };
  assert.equal(deadlines(P, s, NOW + DAY + 6 * HOUR)[0]!.at, NOW + 2 * DAY);
  // A wall clock set back by a week does not push the next pass a week away.
  assert.ok(deadlines(P, s, NOW - 7 * DAY)[0]!.at <= NOW - 7 * DAY + 2 * DAY);
});

test('a failure schedules one retry (drawn once); a stuck failure schedules a daily recheck (sooner when the configuration changes)', () => {
  let s = snap();
  s = { ...s, record: applyPass(P, s, 'install', { ok: false, outcome: 'failed', failure: 'retry-later', code: 'UNREACHABLE', message: 'down' }, NOW, () => 0.5) };
  assert.equal(s.record.failures, 1);
  assert.equal(s.record.retryAt, new Date(NOW + MIN).toISOString());
  assert.equal(namedState(P, s, NOW).state, 'ORG_UNREACHABLE');
  assert.equal(namedState(P, s, NOW).next?.reason, 'retry');

  s = { ...s, record: applyPass(P, s, 'retry', { ok: false, outcome: 'failed', failure: 'rejected', code: 'USER_NOT_ACTIVE', message: 'deactivated', remedy: 'Ask an admin.' }, NOW + MIN, () => 0.5) };
  const st = namedState(P, s, NOW + 2 * MIN);
  assert.equal(st.state, 'REJECTED');
  assert.equal(st.stuck, true);
  assert.equal(st.action, 'Ask an admin.', 'the remedy of the error is what to do');
  // Every state has a next deadline: stuck without a certificate still looks again daily (issue 24).
  assert.equal(st.next?.reason, 'recheck');
  assert.equal(st.next?.at, NOW + MIN + DAY);
  assert.deepEqual(deadlines(P, s, NOW + 30 * DAY).map((d) => d.reason), ['recheck']);
  assert.deepEqual(deadlines(P, { ...s, configFingerprint: 'c2' }, NOW + 30 * DAY).map((d) => d.reason), ['config']);
});

test('"nothing to do" at or after the renewal moment (the org was unreachable) counts as a failure to retry', () => {
  const cert = { sha256: sha(), notAfter: NOW + 10 * DAY, windowStart: NOW - 20 * DAY };
  const s = snap({ cert });
  const r = effectiveReport(P, { ok: true, outcome: 'nothing-to-do', message: 'the org was not reachable for checks' }, s, NOW);
  assert.equal(r.ok, false);
  assert.equal(r.code, 'RENEWAL_POSTPONED');
  assert.equal(stateForFailure(r.failure!, r.code), 'ORG_UNREACHABLE');
  const early = snap({ cert: { ...cert, windowStart: NOW + 5 * DAY, notAfter: NOW + 35 * DAY } });
  assert.equal(effectiveReport(P, { ok: true, outcome: 'nothing-to-do', message: 'fine' }, early, NOW).ok, true);
});

test('named states: not configured, not enrolled, enrolled, renewal due, expired, running', () => {
  assert.equal(namedState(P, snap({ configured: false }), NOW).state, 'NOT_CONFIGURED');
  assert.equal(namedState(P, snap(), NOW).state, 'NOT_ENROLLED');
  const cert = { sha256: sha(), notAfter: NOW + 40 * DAY, windowStart: NOW + 10 * DAY };
  const base = snap({ cert, record: { ...emptyRecord(), lastPass: { at: new Date(NOW).toISOString(), trigger: 'daily', outcome: 'nothing-to-do', message: 'ok' } } });
  assert.equal(namedState(P, base, NOW).state, 'ENROLLED');
  assert.equal(namedState(P, base, NOW + 31 * DAY).state, 'RENEWAL_DUE');
  assert.equal(namedState(P, base, NOW + 41 * DAY).state, 'EXPIRED');
  assert.equal(namedState(P, base, NOW, 'daily').state, 'CHECKING');
  assert.equal(namedState(P, snap(), NOW, 'install').state, 'ENROLLING');
});
