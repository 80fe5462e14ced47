/**
 * A fake clock drives the real scheduler (Scheduler + PassEngine + the planning rules) through a simulated
 * year against a model of the org: enrollment at install, daily passes on the install time's grid, a sleep
 * and its single catch-up pass, one renewal at the certificate's chosen moment while the org is down (backoff,
 * then recovery), and no pass ever overlapping another. Assertions are on passes and named states.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PassEngine, type AttemptResult } from '../../src-main/core/scheduler/pass-engine.js';
import { DEFAULT_POLICY } from '../../src-main/core/scheduler/policy.js';
import { nextDeadline } from '../../src-main/core/scheduler/plan.js';
import { Scheduler } from '../../src-main/core/scheduler/scheduler.js';
import { FakeClock } from '../support/fake-clock.js';
import { ModelWorld } from '../support/model-agent.js';
import { seededRandom } from '../support/random.js';

const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;
const T0 = Date.parse('2026-01-05T09:00:00.000Z');

function setup(seed = 7) {
  const clock = new FakeClock(T0);
  const world = new ModelWorld(() => clock.now());
  const policy = DEFAULT_POLICY;
  const engine = new PassEngine({ store: world.store, lock: world.lock, pass: world.pass, now: () => clock.now(), policy, random: seededRandom(seed) });
  const attempts: (AttemptResult & { at: number })[] = [];
  const sched = new Scheduler({ engine, store: world.store, clock, policy, onAttempt: (r) => attempts.push({ ...r, at: clock.now() }) });
  const settle = () => (sched.isRunning ? sched.idle() : undefined);
  const ran = () => attempts.filter((a): a is Extract<AttemptResult, { ran: true }> & { at: number } => a.ran);
  return { clock, world, policy, engine, sched, settle, attempts, ran };
}

test('a simulated year: install, daily passes, sleep and catch-up, renewal with the org down, recovery, never two at once', async () => {
  const { clock, world, policy, engine, sched, settle, ran } = setup();
  const t = performance.now();

  // Install-time pass: enrolls.
  sched.start('install');
  await sched.idle();
  assert.equal(ran().length, 1);
  assert.equal(ran()[0]!.trigger, 'install');
  assert.equal(ran()[0]!.report.outcome, 'enrolled');
  assert.equal(ran()[0]!.state.state, 'ENROLLED');
  const first = world.cert!;
  const renewAt = Date.parse(world.record.renewal!.renewAt);
  assert.ok(renewAt >= first.windowStart && renewAt <= first.windowStart + (first.notAfter - first.windowStart) * policy.renewalSpread,
    'the renewal moment lies in the first part of the renewal window');

  // 100 days: one daily pass every 24 hours on the install time's grid, nothing else.
  await clock.advance(100 * DAY + HOUR, settle);
  const daily = ran().slice(1);
  assert.equal(daily.length, 100);
  daily.forEach((p, i) => {
    assert.equal(p.trigger, 'daily');
    assert.equal(p.at, T0 + (i + 1) * DAY, `daily pass ${i + 1} on the grid`);
    assert.equal(p.state.state, 'ENROLLED');
  });

  // The laptop sleeps for three days and a bit: on wake, exactly one catch-up pass, within one tick.
  const beforeSleep = ran().length;
  clock.suspend(3 * DAY + 5 * HOUR);
  const wokeAt = clock.now();
  await clock.advance(6 * HOUR, settle);
  const catchUp = ran().slice(beforeSleep);
  assert.equal(catchUp.length, 1, 'one pass on wake, not one per missed day');
  assert.equal(catchUp[0]!.trigger, 'daily');
  assert.ok(catchUp[0]!.at - wokeAt <= policy.tickMs, `caught up ${catchUp[0]!.at - wokeAt} ms after wake`);
  assert.ok(sched.wakeUps >= 1, 'the wake-up was noticed');
  // …and the next daily pass is back on the grid.
  const nextSlot = T0 + Math.ceil((catchUp[0]!.at + policy.dailyMinSpacingMs - T0) / DAY) * DAY;
  await clock.advanceTo(nextSlot + MIN, settle);
  assert.equal(ran().at(-1)!.at, nextSlot);
  assert.equal(ran().at(-1)!.trigger, 'daily');

  // Up to two hours before the renewal moment: nothing renewed yet. Then the org goes down for three days.
  await clock.advanceTo(renewAt - 2 * HOUR, settle);
  assert.equal(world.passes.filter((p) => p.outcome === 'renewed').length, 0, 'no renewal before the chosen moment');
  world.orgDown = true;
  const downFrom = ran().length;
  await clock.advanceTo(renewAt + 3 * DAY, settle);
  const during = ran().slice(downFrom).filter((p) => p.at >= renewAt);
  assert.equal(during[0]!.trigger, 'renewal');
  assert.equal(during[0]!.at, renewAt, 'the first attempt is at the renewal moment');
  assert.ok(during.every((p) => !p.report.ok && p.state.state === 'ORG_UNREACHABLE'), during.map((p) => p.state.state).join());
  assert.deepEqual(during.slice(1, 4).map((p) => p.trigger), ['retry', 'retry', 'retry']);
  const gaps = during.slice(1).map((p, i) => p.at - during[i]!.at);
  [1, 10, 100].forEach((m, i) => {
    assert.ok(gaps[i]! >= 0.75 * m * MIN && gaps[i]! <= 1.25 * m * MIN, `retry ${i + 1} after ${gaps[i]! / MIN} min (backoff ${m} min ±25 %)`);
  });
  assert.ok(Math.max(...gaps) <= 1.25 * DAY, 'retries never more than a day (plus jitter) apart');
  assert.ok(during.length >= 6 && during.length <= 10, `${during.length} attempts in three days (patient, not a storm)`);

  // The org returns: the next retry renews, the state goes back to ENROLLED, the backoff resets.
  world.orgDown = false;
  const upAt = clock.now();
  await clock.advance(2 * DAY, settle);
  const renewed = ran().find((p) => p.report.outcome === 'renewed')!;
  assert.ok(renewed, 'renewed after the org came back');
  assert.ok(renewed.at - upAt <= DAY, 'within a day of the org returning');
  assert.equal(renewed.state.state, 'ENROLLED');
  assert.equal(world.record.failures, 0);
  assert.ok(renewed.at < first.notAfter, 'renewed before expiry');
  assert.notEqual(world.cert!.sha256, first.sha256);

  // Events arriving while a pass runs never start a second one: a network change queues behind it, and
  // another process (a second engine on the same lock, like a manual `run`) is told it is busy.
  let otherProcess: AttemptResult | undefined;
  world.duringPass = () => {
    sched.trigger('network');
    void engine.attempt('manual').then((r) => (otherProcess = r));
  };
  await clock.advance(DAY, settle);
  world.duringPass = undefined;
  assert.ok(otherProcess && !otherProcess.ran && otherProcess.why === 'busy', 'a concurrent pass is refused');

  // The rest of the year.
  await clock.advanceTo(T0 + 365 * DAY, settle);
  const outcomes = world.passes.map((p) => p.outcome);
  assert.equal(outcomes.filter((o) => o === 'enrolled').length, 1, 'enrolled once');
  assert.equal(outcomes.filter((o) => o === 'renewed').length, 1, 'renewed once in the year');
  assert.equal(world.maxInFlight, 1, 'never two passes at once');
  const times = world.passes.map((p) => p.at);
  assert.ok(times.every((x, i) => i === 0 || x > times[i - 1]!), 'no pass twice at the same moment');
  assert.ok(world.passes.length > 360 && world.passes.length < 380, `${world.passes.length} passes in the year`);
  assert.equal(sched.state().state, 'ENROLLED');
  await sched.stop();
  console.log(`simulated year: ${world.passes.length} passes, ${(performance.now() - t).toFixed(0)} ms`);
});

test('stuck states wait for a person but keep a deadline: one recheck a day, a network change does not help, a logon or a config change does', async () => {
  const { clock, world, sched, settle, ran, policy } = setup(3);
  sched.start('install');
  await sched.idle();
  world.revoked.add(world.cert!.sha256);
  await clock.advance(DAY + MIN, settle);
  const revoked = ran().at(-1)!;
  assert.equal(revoked.state.state, 'REVOKED');
  assert.equal(revoked.state.stuck, true);
  assert.match(revoked.state.action ?? '', /forceRenewal/);
  assert.equal(revoked.state.next?.reason, 'recheck', 'a stuck agent with a certificate still has a next deadline');
  assert.equal(revoked.state.next!.at, revoked.at + policy.stuckRecheckMs);

  const n = ran().length;
  await clock.advance(30 * DAY, settle);
  const rechecks = ran().slice(n);
  assert.equal(rechecks.length, 30, 'one recheck a day while stuck (no retry storm)');
  assert.ok(rechecks.every((p) => p.trigger === 'recheck' && p.state.state === 'REVOKED' && p.state.next !== undefined));
  const m = ran().length;
  sched.trigger('network');
  await sched.idle();
  assert.equal(ran().length, m, 'a network change does not run a stuck agent');

  await clock.advance(6 * HOUR, settle);
  sched.trigger('logon');
  await sched.idle();
  assert.equal(ran().length, m + 1, 'a logon runs a pass (a person may have acted)');
  assert.equal(ran().at(-1)!.state.state, 'REVOKED');

  // The admin reinstates the device and the configuration is changed: the agent notices by itself.
  world.revoked.clear();
  world.configFingerprint = 'config-2';
  await clock.advance(2 * MIN, settle);
  assert.equal(ran().length, m + 2);
  assert.equal(ran().at(-1)!.trigger, 'config');
  assert.equal(ran().at(-1)!.state.state, 'ENROLLED');
  await sched.stop();
});

test('unreachable keeps trying; without a certificate the retries are at most four hours (plus jitter) apart; a network change pulls the retry in', async () => {
  const { clock, world, sched, settle, ran, policy } = setup(5);
  world.orgDown = true;
  sched.start('install');
  await sched.idle();
  assert.equal(ran()[0]!.state.state, 'ORG_UNREACHABLE');
  assert.equal(ran()[0]!.state.stuck, false);
  await clock.advance(2 * DAY, settle);
  const gaps = ran().slice(1).map((p, i) => p.at - ran()[i]!.at);
  assert.ok(Math.max(...gaps) <= 1.25 * policy.backoffCapNoCertMs, `max gap ${Math.max(...gaps) / HOUR} h`);
  assert.ok(ran().length >= 12, `${ran().length} attempts in two days`);

  // VPN comes up: the network trigger (debounced by the watcher) runs a pass now, not at the next retry.
  world.orgDown = false;
  const pending = world.record.retryAt!;
  sched.trigger('network');
  await sched.idle();
  const last = ran().at(-1)!;
  assert.equal(last.trigger, 'network');
  assert.equal(last.report.outcome, 'enrolled');
  assert.ok(last.at < Date.parse(pending));
  await sched.stop();
});

test('two schedulers sharing one state (the daemon and a timer one-shot) run a due pass once', async () => {
  const { clock, world, policy, sched, settle } = setup(11);
  sched.start('install');
  await sched.idle();
  const other = new PassEngine({ store: world.store, lock: world.lock, pass: world.pass, now: () => clock.now(), policy });
  await clock.advance(DAY - 1, settle);
  const n = world.passes.length;
  await clock.advance(1, settle); // the daily deadline: the daemon runs it…
  const late = await other.attempt('timer'); // …and the one-shot, right after, finds nothing due
  assert.equal(world.passes.length, n + 1);
  assert.ok(!late.ran && late.why === 'skipped', JSON.stringify(late));
  await sched.stop();
});

test('a schedule that cannot be saved (full or read-only disk) does not loop: the daemon keeps its plan in memory, one pass a day', async () => {
  const { clock, world, sched, settle, ran } = setup(13);
  sched.start('install');
  await sched.idle();
  const save = world.store.save;
  world.store.save = () => {
    throw Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' });
  };
  const n = ran().length;
  await clock.advance(3 * DAY + HOUR, settle); // each daily deadline comes and cannot be recorded as done
  const unsaved = ran().slice(n);
  assert.equal(unsaved.length, 3, `one pass a day while the schedule cannot be saved (${unsaved.length})`);
  assert.ok(unsaved.every((p) => p.ran && p.saveError?.includes('ENOSPC')), 'each pass says the schedule could not be saved');
  world.store.save = save;
  const m = ran().length;
  await clock.advance(2 * DAY, settle);
  assert.equal(ran().length - m, 2, 'still one pass a day once it can be saved');
  assert.equal(Date.parse(world.record.lastPass!.at), ran().at(-1)!.at, 'and the record on disk is current again');
  await sched.stop();
});

test('a state file that reads back stale (a sync tool or roaming profile restoring it) does not make a pass loop: a still-due deadline waits a minute', { timeout: 20_000 }, async () => {
  const { clock, world, sched, settle, ran, policy } = setup(17);
  sched.start('install');
  await sched.idle();
  await clock.advance(DAY - MIN, settle);
  const stale = world.store.load();
  let reads = 0;
  world.store.load = () => {
    // A loop would never yield to the timers that end a test: break it here so the assertions below can fail.
    if (reads > 10_000) throw new Error('pass loop: the state was read 10,000 times');
    return structuredClone(stale); // every write is undone before the next read…
  };
  world.store.changeToken = () => `stale-${reads++}`; // …and the file looks changed each time
  const n = ran().length;
  await clock.advance(HOUR, settle);
  const during = ran().slice(n);
  assert.ok(during.length >= 2, `the due pass is retried (${during.length})`);
  assert.ok(during.length <= HOUR / policy.busyRetryMs + 1, `${during.length} passes in an hour: at most one a minute, never back to back`);
  const gaps = during.slice(1).map((p, i) => p.at - during[i]!.at);
  assert.ok(gaps.every((g) => g >= policy.busyRetryMs), `gaps ${gaps.map((g) => g / 1000).join(', ')} s`);
  await sched.stop();
});

/**
 * Property test: random (seeded) sequences of clock jumps (± minutes to ± a year), suspends, crashes, org
 * outages with Retry-After, read-only periods and CA refusals over simulated years. After each step: the agent
 * has a next deadline and it is never more than a day and a half away (so a clock that ran ahead and came back
 * cannot park the schedule); no certificate is renewed twice or before its window; and every certificate whose
 * renewal moment was followed by a day of reachability (org up, not read-only, CA willing, clock right, awake)
 * before its expiry was renewed before it expired. Reproduce a failure with DTA_PROPERTY_SEED=<seed>.
 */
test('property: clock jumps, suspends, crashes, outages, read-only periods and CA refusals over simulated years', { timeout: 120_000 }, async () => {
  // Fixed seeds in the suite (a CI run must be reproducible); DTA_PROPERTY_SEED explores others.
  // 2 and 11 found the two bugs fixed on 2026-12-01 (a pass loop at a fractional deadline; a pass straddling two steps).
  const seeds = process.env.DTA_PROPERTY_SEED ? [Number(process.env.DTA_PROPERTY_SEED)] : [101, 202, 303, 2, 11];
  for (const seed of seeds) {
    console.log(`property seed ${seed} (reproduce: DTA_PROPERTY_SEED=${seed})`);
    const rnd = seededRandom(seed);
    const pick = <T>(xs: T[]): T => xs[Math.floor(rnd() * xs.length)]!;
    const between = (lo: number, hi: number) => lo + (hi - lo) * rnd();
    const clock = new FakeClock(T0);
    let offset = 0; // device clock minus true time
    const world = new ModelWorld(() => clock.now(), 365 * DAY, 30 * DAY, () => clock.now() - offset);
    const policy = { ...DEFAULT_POLICY, tickMs: 30 * MIN };
    let sched!: Scheduler;
    const boot = (why: 'install' | 'logon') => {
      const engine = new PassEngine({ store: world.store, lock: world.lock, pass: world.pass, now: () => clock.now(), policy, random: seededRandom(seed + world.passes.length) });
      sched = new Scheduler({ engine, store: world.store, clock, policy });
      sched.start(why);
    };
    const settle = () => (sched.isRunning ? sched.idle() : undefined);
    boot('install');
    await sched.idle();

    // Longest stretch of true time, after each certificate's renewal moment, in which renewal was possible.
    const good = new Map<string, { run: number; best: number }>();
    let suspended = false;
    const reachable = () => !world.orgDown && !world.readOnly && !world.caRefusesRenewal && Math.abs(offset) <= 5 * MIN && !suspended;
    const account = (from: number, to: number, ok: boolean) => {
      for (const c of world.issued) {
        if (c.renewedAt !== undefined) continue;
        const renewAt = world.record.renewal?.sha256 === c.sha256 ? Date.parse(world.record.renewal.renewAt) : c.windowStart;
        const lo = Math.max(from, renewAt);
        const hi = Math.min(to, c.notAfter);
        const g = good.get(c.sha256) ?? { run: 0, best: 0 };
        if (!ok) g.run = 0;
        else if (hi > lo) g.run += hi - lo;
        g.best = Math.max(g.best, g.run);
        good.set(c.sha256, g);
      }
    };
    const trueNow = () => clock.now() - offset;
    let steps = 0;
    const kinds: Record<string, number> = {};
    while (trueNow() < T0 + 3 * 365 * DAY) {
      const kind = pick(['quiet', 'quiet', 'quiet', 'jump', 'fix-clock', 'suspend', 'crash', 'outage', 'read-only', 'ca-refuses']);
      kinds[kind] = (kinds[kind] ?? 0) + 1;
      const t0 = trueNow();
      let dur = between(HOUR, 20 * DAY);
      switch (kind) {
        case 'jump': {
          const size = pick([between(MIN, HOUR), between(HOUR, 3 * DAY), between(3 * DAY, 365 * DAY)]) * (rnd() < 0.5 ? -1 : 1);
          clock.jump(size);
          offset += size;
          dur = between(MIN, 5 * DAY);
          break;
        }
        case 'fix-clock':
          clock.jump(-offset);
          offset = 0;
          break;
        case 'suspend':
          suspended = true;
          dur = between(HOUR, 10 * DAY);
          account(t0, t0 + dur, false);
          clock.suspend(dur);
          suspended = false;
          dur = between(MIN, HOUR);
          break;
        case 'crash':
          await sched.stop();
          world.locked = false;
          dur = between(MIN, 10 * MIN);
          await clock.advance(dur, settle);
          boot('logon');
          await settle();
          break;
        case 'outage':
          world.orgDown = true;
          world.retryAfterMs = pick([undefined, between(MIN, HOUR)]);
          dur = pick([between(MIN, HOUR), between(HOUR, 2 * DAY), between(2 * DAY, 40 * DAY)]);
          break;
        case 'read-only':
          world.readOnly = true;
          dur = between(HOUR, 3 * DAY);
          break;
        case 'ca-refuses':
          world.caRefusesRenewal = true;
          dur = between(HOUR, 20 * DAY);
          break;
      }
      if (kind !== 'crash') {
        // Advance in slices of at most an hour so that reachability is accounted for as it changes.
        let left = dur;
        while (left > 0) {
          const slice = Math.min(HOUR, left);
          const from = trueNow();
          const ok = reachable();
          await clock.advance(slice, settle);
          account(from, trueNow(), ok);
          left -= slice;
        }
      }
      world.orgDown = false;
      world.readOnly = false;
      world.caRefusesRenewal = false;
      world.retryAfterMs = undefined;
      steps++;

      if (process.env.DTA_PROPERTY_TRACE) console.log(`step ${steps} ${kind} dur=${(dur / HOUR).toFixed(1)}h offset=${(offset / DAY).toFixed(2)}d device=${new Date(clock.now()).toISOString()} passes=${world.passes.length} last=${JSON.stringify(world.passes.at(-1))}`);
      const ctx = `seed ${seed}, step ${steps} (${kind}), device clock ${new Date(clock.now()).toISOString()}, offset ${Math.round(offset / 1000)} s`;
      // After each step the agent has a deadline, and not one parked far away.
      await clock.advance(MIN, settle);
      // No pass straddles two steps: the next step changes the world (and the clock) only between passes.
      await settle();
      const next = nextDeadline(policy, world.store.load(), clock.now());
      assert.ok(next, `a next deadline (${ctx})`);
      assert.ok(next.at - clock.now() <= 1.5 * DAY, `next deadline ${new Date(next.at).toISOString()} (${next.reason}) is at most a day and a half away (${ctx})`);
      // Never twice in one window; never before the window opened.
      for (const c of world.issued) {
        if (c.renewedAt !== undefined) assert.ok(c.renewedAt >= c.windowStart - 5 * MIN, `renewed at ${new Date(c.renewedAt).toISOString()} (true time), inside its window from ${new Date(c.windowStart).toISOString()} (${ctx}); last passes: ${JSON.stringify(world.passes.slice(-4).map((p) => ({ ...p, at: new Date(p.at).toISOString() })))}`);
      }
      const renewedTwice = world.issued.filter((c) => c.renewedAt !== undefined).length > world.issued.length - 1;
      assert.ok(!renewedTwice, `each certificate replaced at most once (${ctx})`);
      // Renewed before expiry whenever a day of reachability followed the renewal moment.
      for (const c of world.issued) {
        if (c.notAfter > trueNow()) continue;
        const g = good.get(c.sha256);
        if (g && g.best >= DAY) assert.ok(c.renewedAt !== undefined && c.renewedAt < c.notAfter, `renewed before expiry after ${(g.best / DAY).toFixed(2)} reachable days (${ctx})`);
      }
      assert.equal(world.maxInFlight, 1, 'never two passes at once');
    }
    await sched.stop();
    const renewedInTime = world.issued.filter((c) => c.renewedAt !== undefined && c.renewedAt < c.notAfter).length;
    console.log(`  ${steps} steps ${JSON.stringify(kinds)}; ${world.passes.length} passes; ${world.issued.length} certificates, ${renewedInTime} renewed before expiry; ${world.anomalies} clock anomalies repaired`);
    assert.ok(world.issued.length >= 3, 'three years: at least two renewals or re-enrollments');
  }
});
