/**
 * The one watch cycle (core/diagnostics/watch.ts) that `diagnose --watch` and the dashboard both run: scripted
 * diagnostics answers in, health transitions, retries and event-log records out. And neither caller keeps a
 * health model or a retry loop of its own.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { DEFAULT_HEALTH_POLICY, type HealthPolicy } from '../../src-main/core/diagnostics/health.js';
import type { DiagnoseReport, Finding, ProbeResult } from '../../src-main/core/diagnostics/types.js';
import { DiagnoseWatch } from '../../src-main/core/diagnostics/watch.js';
import { EventLog } from '../../src-main/core/events.js';
import { tempDir } from '../support/agent.js';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

function probe(id: string, ok: boolean): ProbeResult {
  return { id, kind: 'org', target: id, status: ok ? 'ok' : 'fail', ms: 5, stages: [], ...(ok ? {} : { error: { code: 'DOWN', message: `${id} did not answer` } }), facts: {} } as ProbeResult;
}

function report(probes: Record<string, boolean>, findings: string[] = []): DiagnoseReport {
  return {
    generatedAt: new Date().toISOString(),
    probes: Object.entries(probes).map(([id, ok]) => probe(id, ok)),
    findings: findings.map((code) => ({ code, severity: 'warning', title: code, evidence: [], cause: '', remedy: '', probes: [] }) as Finding),
    worst: findings.length ? 'warning' : 'ok',
    durationMs: 10,
  } as unknown as DiagnoseReport;
}

/** Answers in order; each call of the cycle's `diagnose` takes the next one. */
function scripted(answers: DiagnoseReport[]): { diagnose: () => Promise<DiagnoseReport>; calls: () => number } {
  let i = 0;
  return { diagnose: async () => answers[Math.min(i++, answers.length - 1)]!, calls: () => i };
}

const policy: HealthPolicy = { ...DEFAULT_HEALTH_POLICY, maxRetries: 1, failureThreshold: 2, successThreshold: 1, recoveryCooldownMs: 0 };

function eventsIn(): { log: EventLog } {
  return { log: new EventLog(tempDir('watch-'), 'diagnose', { sinks: [] }) };
}

test('a failed target is checked again before it counts; one good answer keeps it ONLINE', async () => {
  const watch = new DiagnoseWatch(policy);
  const { log } = eventsIn();
  const s = scripted([report({ org: true, 'iwa:primary': false }), report({ org: true, 'iwa:primary': true })]);
  const retries: string[] = [];
  const c = await watch.cycle(s.diagnose, log, { onRetry: (n, of) => retries.push(`${n}/${of}`) });
  assert.equal(s.calls(), 2, 'one re-check of the failed target');
  assert.deepEqual(retries, ['1/1']);
  assert.equal(c.report.health!.find((h) => h.target === 'iwa:primary')!.state, 'ONLINE');
  assert.equal(watch.target('iwa:primary').snapshot().state, 'ONLINE');
});

test('a target that keeps failing goes DEGRADED, then OFFLINE at the threshold, and back ONLINE; each move is an event once', async () => {
  const watch = new DiagnoseWatch(policy);
  const { log } = eventsIn();
  const down = report({ org: true, 'iwa:primary': false }, ['IWA_PRIMARY_DOWN']);
  const up = report({ org: true, 'iwa:primary': true });
  const states: string[] = [];
  const changed: boolean[] = [];
  for (const answer of [down, down, down, up]) {
    const c = await watch.cycle(async () => answer, log);
    states.push(c.report.health!.find((h) => h.target === 'iwa:primary')!.state);
    changed.push(c.findingsChanged);
  }
  assert.deepEqual(states, ['DEGRADED', 'OFFLINE', 'OFFLINE', 'ONLINE']);
  assert.deepEqual(changed, [true, false, false, true], 'findings are recorded on the first cycle and when they change');
  // The quiet first ONLINE (org) is not recorded; every other move and each change of findings is, once.
  const summary = log.read().map((e) => (e.data && 'to' in (e.data as object) ? `${(e.data as { target: string }).target}→${(e.data as { to: string }).to}` : `findings ${e.level}`));
  assert.deepEqual(summary, ['iwa:primary→DEGRADED', 'findings warning', 'iwa:primary→OFFLINE', 'iwa:primary→ONLINE', 'findings info']);
});

test('a stopping watch does not wait for re-checks', async () => {
  const watch = new DiagnoseWatch({ ...policy, maxRetries: 3 });
  const { log } = eventsIn();
  const s = scripted([report({ org: false })]);
  await watch.cycle(s.diagnose, log, { stop: () => true });
  assert.equal(s.calls(), 1);
});

test('diagnose --watch and the dashboard run this cycle, with no health model or retry loop of their own', () => {
  for (const file of ['src-main/cli/commands/diagnose.ts', 'src-main/ipc/service.ts']) {
    const src = fs.readFileSync(path.join(REPO, file), 'utf8');
    assert.ok(/new DiagnoseWatch\(/.test(src), `${file} does not run the shared cycle`);
    assert.ok(!/new HealthMonitor\(|\.observe\(|< [\w.]*maxRetries/.test(src), `${file} keeps a health model or retry loop of its own`);
  }
});
