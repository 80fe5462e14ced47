/**
 * The daemon's isolated passes (cli/pass-child.ts, core/scheduler/isolated.ts) with real child processes: a child
 * that hangs is killed at the pass deadline and the pass is recorded as failed (retry-later, with a next deadline);
 * a child that dies without a result is recorded too; a child's result keeps its error's exit class.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';
import { AgentError, ExitCode, exitCodeFor, isAgentError } from '../../src-main/base/errors.js';
import { childPasses } from '../../src-main/cli/pass-child.js';
import { attemptToWire, isolatedEngine } from '../../src-main/core/scheduler/isolated.js';
import { PassEngine, type AttemptResult } from '../../src-main/core/scheduler/pass-engine.js';
import { DEFAULT_POLICY } from '../../src-main/core/scheduler/policy.js';
import { ModelWorld } from '../support/model-agent.js';

/** A child program: `node -e CODE` (the job arguments follow and are ignored). */
const node = (code: string) => [process.execPath, '-e', code, '--'];

test('a child pass that hangs is killed at the deadline; the pass is recorded as failed with a next deadline', async () => {
  let pid = 0;
  const iso = childPasses({ argv: [], deadlineMs: () => 700, program: node('process.on("SIGTERM", () => {}); setInterval(() => {}, 1000)'), debug: (l) => (pid = Number(/child process (\d+)/.exec(l)?.[1])) });
  const t0 = Date.now();
  await assert.rejects(iso.attempt('daily'), (e) => isAgentError(e) && e.code === 'PASS_TIMEOUT' && e.failure === 'retry-later');
  assert.ok(Date.now() - t0 < 5000, 'killed at its deadline, not left running');
  assert.ok(pid > 0 && !fs.existsSync(`/proc/${pid}`) || process.platform !== 'linux', 'the hung child is gone');

  const now = Date.parse('2026-03-02T10:00:00Z');
  const world = new ModelWorld(() => now);
  const engine = isolatedEngine(iso, (failure) => new PassEngine({ store: world.store, lock: world.lock, policy: DEFAULT_POLICY, now: () => now, pass: () => Promise.reject(failure) }));
  const r = await engine.attempt('manual');
  assert.ok(r.ran);
  assert.equal(r.report.ok, false);
  assert.equal(r.report.code, 'PASS_TIMEOUT');
  assert.ok(r.state.next && r.state.next.at > now, 'always a next deadline');
  assert.equal(world.store.load().record.failures, 1, 'recorded in the schedule');
  assert.equal(world.locked, false, 'the lock is released');
});

test('a child that dies without a result is recorded as a failed pass (not lost, not a crash of the daemon)', async () => {
  const iso = childPasses({ argv: [], deadlineMs: () => 10_000, program: node('process.exit(3)') });
  await assert.rejects(iso.attempt('daily'), /exited with code 3/);
  const now = Date.parse('2026-03-02T10:00:00Z');
  const world = new ModelWorld(() => now);
  const r = await isolatedEngine(iso, (failure) => new PassEngine({ store: world.store, lock: world.lock, policy: DEFAULT_POLICY, now: () => now, pass: () => Promise.reject(failure) })).attempt('manual');
  assert.ok(r.ran && !r.report.ok && r.report.code === 'PASS_CRASHED');
  assert.equal(world.store.load().record.failures, 1);
  await assert.rejects(childPasses({ argv: [], deadlineMs: () => 10_000, program: node('process.send({ attempt: { nonsense: 1 } })') }).attempt('daily'), /malformed/);
});

test("a child's result crosses back with its error's exit class and its posture line", async () => {
  const error = new AgentError('config', 'ORG_URL_MISSING', 'No org URL is configured.', 'Set OrgUrl.');
  const sent = attemptToWire({ ran: true, trigger: 'logon', report: { ok: false, outcome: 'failed', message: error.message }, error } as unknown as AttemptResult);
  const iso = childPasses({ argv: [], deadlineMs: () => 10_000, program: node(`process.send(${JSON.stringify({ attempt: sent })}, () => process.disconnect())`) });
  const r = await iso.attempt('logon');
  assert.ok(r.ran && r.error);
  assert.ok(r.error instanceof AgentError);
  assert.equal(r.error.code, 'ORG_URL_MISSING');
  assert.equal(r.error.remedy, 'Set OrgUrl.');
  assert.equal(exitCodeFor(r.error), exitCodeFor(error));
  assert.notEqual(exitCodeFor(r.error), ExitCode.OK);
  const p = childPasses({ argv: [], deadlineMs: () => 10_000, program: node('process.send({ posture: "posture (start): 5 pass" }, () => process.disconnect())') });
  assert.equal(await p.posture('start'), 'posture (start): 5 pass');
});
