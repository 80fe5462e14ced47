import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkWithRetries, DEFAULT_HEALTH_POLICY, HealthMonitor, HealthPolicySchema, TargetHealth } from '../../src-main/core/diagnostics/health.js';

const policy = DEFAULT_HEALTH_POLICY;

function clock(start = Date.parse('2026-05-01T08:00:00Z')) {
  let t = start;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

test('the defaults are the access gateway health policy: 60 s, 3 s, 3 retries, 3 failures, 2 successes, 360 s', () => {
  assert.deepEqual(policy, { intervalMs: 60_000, timeoutMs: 3000, maxRetries: 3, failureThreshold: 3, successThreshold: 2, recoveryCooldownMs: 360_000 });
  assert.equal(HealthPolicySchema.safeParse({ ...policy, failureThreshold: 0 }).success, false);
});

test('OFFLINE only after the failure threshold; DEGRADED before', () => {
  const c = clock();
  const h = new TargetHealth('iwa:primary', policy, c.now);
  h.observe(true);
  assert.equal(h.state, 'ONLINE');
  c.advance(60_000);
  assert.deepEqual(h.observe(false).map((t) => t.to), ['DEGRADED']);
  c.advance(60_000);
  assert.deepEqual(h.observe(false), []);
  assert.equal(h.state, 'DEGRADED', 'two failures are not yet three');
  c.advance(60_000);
  const [t] = h.observe(false, 3000, 'timeout');
  assert.equal(t!.to, 'OFFLINE');
  assert.equal(t!.at, '2026-05-01T08:03:00.000Z');
  assert.match(t!.reason, /3 consecutive failed check\(s\): timeout/);
});

test('a success in between resets the failure count (it must be consecutive)', () => {
  const c = clock();
  const h = new TargetHealth('org', policy, c.now);
  for (const ok of [true, false, false, true, false, false]) {
    c.advance(60_000);
    h.observe(ok);
  }
  assert.equal(h.state, 'DEGRADED');
});

test('ONLINE again only after the success threshold AND the cool-down, and a failure during the cool-down starts over', () => {
  const c = clock();
  const h = new TargetHealth('kdc', policy, c.now);
  for (let i = 0; i < 3; i++) {
    c.advance(60_000);
    h.observe(false);
  }
  assert.equal(h.state, 'OFFLINE');
  c.advance(60_000);
  h.observe(true);
  assert.equal(h.state, 'OFFLINE', 'one success is below the threshold');
  c.advance(60_000);
  h.observe(true);
  assert.equal(h.state, 'OFFLINE', 'threshold reached: cooling down, not yet ONLINE');
  const coolFrom = c.now();
  assert.equal(h.snapshot().recoveringUntil, new Date(coolFrom + 360_000).toISOString());
  c.advance(120_000);
  h.observe(false); // a relapse during the cool-down
  assert.equal(h.state, 'OFFLINE');
  assert.equal(h.snapshot().recoveringUntil, null);
  for (let i = 0; i < 2; i++) {
    c.advance(60_000);
    h.observe(true);
  }
  const restart = c.now();
  c.advance(359_000);
  assert.equal(h.snapshot().state, 'OFFLINE', '1 s before the cool-down ends');
  c.advance(1_000);
  const snap = h.snapshot();
  assert.equal(snap.state, 'ONLINE');
  assert.equal(snap.since, new Date(restart + 360_000).toISOString(), 'the transition is dated at the end of the cool-down');
  assert.deepEqual(snap.transitions.map((t) => t.to), ['DEGRADED', 'OFFLINE', 'ONLINE']);
});

test('DEGRADED (never OFFLINE) recovers after the success threshold without a cool-down', () => {
  const c = clock();
  const h = new TargetHealth('crl', policy, c.now);
  h.observe(true);
  h.observe(false);
  h.observe(true);
  assert.equal(h.state, 'DEGRADED');
  h.observe(true);
  assert.equal(h.state, 'ONLINE');
});

test('history and transitions are bounded', () => {
  const c = clock();
  const h = new TargetHealth('x', { ...policy, failureThreshold: 1, successThreshold: 1, recoveryCooldownMs: 0 }, c.now, 50);
  for (let i = 0; i < 500; i++) {
    c.advance(1000);
    h.observe(i % 2 === 0);
  }
  assert.equal(h.history.length, 50);
  assert.ok(h.transitions.length <= 100);
  assert.equal(h.history.at(-1)!.at, new Date(c.now()).toISOString());
});

test('the monitor keeps one model per target', () => {
  const c = clock();
  const m = new HealthMonitor(policy, c.now);
  m.observe('a', true);
  m.observe('b', false);
  assert.deepEqual(m.snapshots().map((s) => [s.target, s.state]), [['a', 'ONLINE'], ['b', 'DEGRADED']]);
});

test('a check retries up to maxRetries times before it counts as failed', async () => {
  let calls = 0;
  assert.deepEqual(await checkWithRetries(async () => ++calls === 3, 3), { ok: true, attempts: 3 });
  calls = 0;
  assert.deepEqual(await checkWithRetries(async () => (++calls, false), 3), { ok: false, attempts: 4 });
});
