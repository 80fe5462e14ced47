/**
 * The scheduler with the real pass against the lab org: a renewal at the certificate's chosen moment while
 * the org is down (retries with backoff, recovery), recorded in state.json and the event log; and the real
 * `daemon` command as a long-running process (one per state directory, clean stop, survives a SIGKILL).
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { loadConfig } from '../../src-main/core/config.js';
import { createPassEngine } from '../../src-main/core/scheduler/create-pass-engine.js';
import { systemClock } from '../../src-main/core/scheduler/clock.js';
import type { AttemptResult } from '../../src-main/core/scheduler/pass-engine.js';
import { policyWith } from '../../src-main/core/scheduler/policy.js';
import { Scheduler } from '../../src-main/core/scheduler/scheduler.js';
import { Trace } from '../../src-main/base/trace.js';
import { type Profile, runAgent, spawnAgent } from '../support/agent.js';
import { labOrgForSuite } from '../support/lab-org.js';
import { nssUserCerts } from '../support/nss.js';
import { readEvents, readState } from '../support/state.js';
import { waitFor } from '../support/wait.js';
import { testContext } from '../support/context.js';

/** Polls every 50 ms (the daemon's output and the scheduler's attempts change quickly). */
const until = <T>(what: string, fn: () => T | undefined, timeoutMs = 20_000) => waitFor(what, fn, timeoutMs, 50);

describe('scheduler and daemon against the lab org', () => {
  const org = labOrgForSuite();
  const profile = () => org.profile();

  test('renewal at the chosen moment with the org down: retries, then renews with the renewal token when it returns', async () => {
    // Minutes become seconds: a 60 s certificate whose 55 s window opens 5 s after issuance, with the
    // renewal moment drawn from the window's first 2 %, and retries after about one second.
    org.lab.switches.validitySeconds = 60;
    org.lab.switches.renewalWindowSeconds = 55;
    const policy = policyWith({ renewalSpread: 0.02, tickMs: 250, backoffMs: [1000], backoffJitter: 0.1, coalesceMs: 0 });
    const p = profile();
    const loaded = () => loadConfig({ env: { ...process.env, ...p.env } });
    const { engine, store } = createPassEngine({ loadConfig: loaded, context: testContext(), stateDir: p.stateDir, side: 'user', trace: () => new Trace(undefined), respectRenewalMoment: true, policy });
    const attempts: AttemptResult[] = [];
    const sched = new Scheduler({ engine, store, clock: systemClock, policy, onAttempt: (r) => attempts.push(r) });
    try {
      sched.start('install');
      await until('the install-time enrollment', () => attempts.find((a) => a.ran && a.report.outcome === 'enrolled'));
      const first = readState(p);
      const renewAt = Date.parse(first.schedule.renewal.renewAt);
      assert.equal(first.schedule.state, 'ENROLLED');
      assert.ok(renewAt - Date.parse(first.current.renewFrom) <= 0.02 * 55_000 + 1, 'the moment lies in the first 2 % of the window');
      org.lab.switches.orgDown = true;
      await until('two failed attempts', () => attempts.filter((a) => a.ran && !a.report.ok).length >= 2 || undefined, 15_000);
      const failed = attempts.filter((a): a is Extract<AttemptResult, { ran: true }> => a.ran && !a.report.ok);
      assert.equal(failed[0]!.trigger, 'renewal');
      assert.equal(failed[1]!.trigger, 'retry');
      assert.equal(failed[0]!.state.state, 'ORG_UNREACHABLE');
      assert.equal(readState(p).schedule.state, 'ORG_UNREACHABLE');
      const mark = org.lab.received.length;
      org.lab.switches.orgDown = false;
      const renewed = await until('the renewal', () => attempts.find((a) => a.ran && a.report.outcome === 'renewed'), 15_000);
      assert.ok(renewed.ran && renewed.trigger === 'retry');
      assert.ok(org.lab.received.slice(mark).some((q) => q.url.endsWith('/api/v1/device-trust/renew')), 'renewed with the renewal token');
      const s = readState(p);
      assert.equal(s.schedule.state, 'ENROLLED');
      assert.equal(s.schedule.failures, 0);
      assert.notEqual(s.current.serialNumber, first.current.serialNumber);
      assert.equal(s.schedule.renewal.sha256, s.current.sha256, 'a new moment for the new certificate');
      assert.deepEqual(nssUserCerts(p.nssDb).map((c) => c.serial), [s.current.serialNumber]);
      const changes = readEvents(p).filter((e) => e.id === 1300).map((e) => e.data.to);
      assert.deepEqual(changes.slice(-2), ['ORG_UNREACHABLE', 'ENROLLED'], 'state changes are in the event log');
    } finally {
      await sched.stop();
      org.lab.switches.orgDown = false;
      org.lab.switches.validitySeconds = 365 * 86400;
      org.lab.switches.renewalWindowSeconds = 30 * 86400;
    }
  });

  test('a truncated state file is reported and rebuilt from the store; the renewal moment comes back unchanged', async () => {
    const p = profile();
    assert.equal((await runAgent(['run'], p.env)).code, 0);
    const before = JSON.parse((await runAgent(['schedule', '--json'], p.env)).stdout);
    const file = path.join(p.stateDir, 'state.json');
    fs.writeFileSync(file, fs.readFileSync(file, 'utf8').slice(0, 40)); // a crash mid-write on a filesystem without atomic rename
    const next = await runAgent(['daemon', '--once', '--trigger', 'logon'], p.env);
    assert.equal(next.code, 10, next.stdout + next.stderr);
    assert.match(next.stdout, /logon pass: nothing-to-do — ENROLLED/);
    assert.ok(fs.readdirSync(p.stateDir).some((f) => f.startsWith('state.json.corrupt-')), 'the bad file is kept aside');
    assert.ok(readEvents(p).some((e) => e.id === 1104), 'event 1104: corrupt state rebuilt');
    const after = JSON.parse((await runAgent(['schedule', '--json'], p.env)).stdout);
    assert.equal(after.state, 'ENROLLED');
    assert.equal(after.renewAt, before.renewAt, 'the same certificate, the same moment');
    assert.equal(readState(p).current.serialNumber, nssUserCerts(p.nssDb)[0]!.serial);
  });

  function startDaemon(p: Profile, args: string[] = []): { child: ChildProcess; out: () => string; exited: Promise<number | null> } {
    const child = spawnAgent(['daemon', ...args], p.env);
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    child.stderr!.on('data', (d) => (out += d));
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    return { child, out: () => out, exited };
  }

  test('the daemon: enrolls at start (logon), shows in schedule and status, one per state directory, stops cleanly', async () => {
    const p = profile();
    const d = startDaemon(p);
    try {
      await until('the logon pass', () => /logon pass: enrolled — ENROLLED; next daily at/.test(d.out()) || undefined);
      assert.match(d.out(), /user daemon started \(pid \d+, .*network watch: (ip-monitor|poll)\)/);
      const sched = JSON.parse((await runAgent(['schedule', '--json'], p.env)).stdout);
      assert.equal(sched.state, 'ENROLLED');
      assert.equal(sched.daemon.pid, d.child.pid);
      assert.equal(sched.nextAttempt.reason, 'daily');
      assert.ok(Math.abs(Date.parse(sched.nextAttempt.at) - Date.parse(sched.lastPass.at) - 86_400_000) < 1000);
      assert.deepEqual(sched.upcoming.map((u: { reason: string }) => u.reason).slice(0, 3), ['daily', 'daily', 'daily']);
      const status = JSON.parse((await runAgent(['status', '--json'], p.env)).stdout);
      assert.equal(status.state, 'ENROLLED', 'the existing field is kept');
      assert.equal(status.schedule.state, 'ENROLLED');
      assert.equal(status.schedule.daemon.pid, d.child.pid);

      const second = await runAgent(['daemon'], p.env);
      assert.equal(second.code, 0);
      assert.match(second.stdout, /already running \(pid \d+/);
      const once = await runAgent(['daemon', '--once'], p.env);
      assert.equal(once.code, 10);
      assert.match(once.stdout, /it does the scheduled passes/);
      assert.equal((await runAgent(['run'], p.env)).code, 10, 'a manual run works beside the idle daemon');

      d.child.kill('SIGTERM');
      assert.equal(await d.exited, 0);
      assert.match(d.out(), /user daemon stopped \(SIGTERM\)/);
      assert.ok(!fs.existsSync(path.join(p.stateDir, 'daemon.lock')));
    } finally {
      d.child.kill('SIGKILL');
    }

    // A SIGKILLed daemon leaves its lock behind; the next daemon starts anyway, and does not re-run the pass.
    const k = startDaemon(p);
    await until('second daemon', () => /daemon started/.test(k.out()) || undefined);
    k.child.kill('SIGKILL');
    await k.exited;
    assert.ok(fs.existsSync(path.join(p.stateDir, 'daemon.lock')));
    const n = startDaemon(p);
    try {
      await until('third daemon', () => /logon: skipped \(a pass ran \d+ s ago\)/.test(n.out()) || undefined);
      n.child.kill('SIGTERM');
      assert.equal(await n.exited, 0);
    } finally {
      n.child.kill('SIGKILL');
    }
    // Nothing is due now: the timer's one-shot says so and exits 10.
    const timer = await runAgent(['daemon', '--once', '--trigger', 'timer'], p.env);
    assert.equal(timer.code, 10);
    assert.match(timer.stdout, /timer: skipped \(next pass at .* \(daily\)\)/);
  });
});
