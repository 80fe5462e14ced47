/**
 * The posture core: hysteresis (a change is announced after N identical observations), the device task's
 * shared file (written 0644 in a 0755 directory; trusted only when root-owned and writable by nobody else, and
 * only while fresh), the user task taking the device task's answers for what needs root, events, and the
 * metrics rows for the fleet's Prometheus exporter.
 */
import { machineContext, runPostureChecks } from '../../src-main/platform/posture/index.js';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { applyHysteresis, evaluatePosture, mergeDeviceResults } from '../../src-main/core/posture/evaluate.js';
import { resolvePostureSettings } from '../../src-main/core/posture/settings.js';
import { postureMetrics, readSharedPostureFile, writePostureFile, type PostureFile, type StoredPostureResult } from '../../src-main/core/posture/snapshot.js';
import { EventLog } from '../../src-main/core/events.js';
import { tempDir } from '../support/agent.js';

const r = (check: string, status: StoredPostureResult['status'], extra: Partial<StoredPostureResult> = {}): StoredPostureResult => ({ check, title: check, status, summary: `${check} is ${status}`, evidence: [], ...extra });

test('hysteresis: first sight is announced; a different result only after N identical observations; a flicker is not', () => {
  let s = applyHysteresis(undefined, [r('firewall', 'PASS')], 2);
  assert.deepEqual(s.changes.map((c) => [c.check, c.from, c.to]), [['firewall', undefined, 'PASS']]);
  s = applyHysteresis(s, [r('firewall', 'FAIL')], 2);
  assert.equal(s.changes.length, 0);
  assert.equal(s.confirmed.firewall, 'PASS');
  s = applyHysteresis(s, [r('firewall', 'PASS')], 2);
  assert.equal(s.changes.length, 0, 'a single FAIL between PASSes is a flicker');
  assert.deepEqual(s.pending, {});
  s = applyHysteresis(s, [r('firewall', 'FAIL')], 2);
  s = applyHysteresis(s, [r('firewall', 'FAIL')], 2);
  assert.deepEqual(s.changes.map((c) => [c.from, c.to]), [['PASS', 'FAIL']]);
  assert.equal(applyHysteresis(s, [r('firewall', 'PASS')], 1).changes.length, 1, 'confirmations 1: at once');
});

test('the shared file: 0644 in a 0755 directory; trusted only when root-owned, not writable by others', (t) => {
  if (process.getuid?.() !== 0) return t.skip('skipped: needs root to own and chown the shared file');
  const dir = path.join(tempDir('shared'), 'device-trust-agent-shared');
  const file = path.join(dir, 'posture.json');
  const data: PostureFile = { version: 1, at: new Date().toISOString(), task: 'device', platform: 'linux', results: [r('firewall', 'PASS')], confirmed: {}, pending: {} };
  writePostureFile(file, data, true);
  assert.equal(fs.statSync(file).mode & 0o777, 0o644);
  assert.equal(fs.statSync(dir).mode & 0o777, 0o755);
  assert.equal(readSharedPostureFile(file)?.results[0]?.status, 'PASS');
  fs.chmodSync(dir, 0o777);
  assert.equal(readSharedPostureFile(file), undefined, 'a world-writable directory: anyone could have replaced it');
  fs.chmodSync(dir, 0o755);
  fs.chownSync(file, 65534, 65534);
  assert.equal(readSharedPostureFile(file), undefined, 'not written by root');
});

test('the user task takes the device task\'s answer only for what needs root, and only while it is fresh', () => {
  const now = new Date('2026-11-30T12:00:00Z');
  const own = [r('firewall', 'UNKNOWN', { needsPrivilege: true, why: 'needs root' }), r('screen-lock', 'PASS')];
  const device: PostureFile = { version: 1, at: '2026-11-30T11:30:00Z', task: 'device', platform: 'linux', results: [r('firewall', 'FAIL', { evidence: ['nft: no input chain'] }), r('screen-lock', 'UNKNOWN', { why: 'root' })], confirmed: {}, pending: {} };
  const merged = mergeDeviceResults(own, device, now, 3 * 3600_000);
  assert.equal(merged[0]!.status, 'FAIL');
  assert.equal(merged[0]!.source, 'device');
  assert.match(merged[0]!.evidence.at(-1)!, /answered by the device task at 2026-11-30T11:30:00Z/);
  assert.equal(merged[1]!.status, 'PASS', 'the user task\'s own answer stands');
  const stale = mergeDeviceResults(own, { ...device, at: '2026-11-29T00:00:00Z' }, now, 3 * 3600_000);
  assert.equal(stale[0]!.status, 'UNKNOWN');
  assert.match(stale[0]!.why!, /too old/);
  assert.match(mergeDeviceResults(own, undefined, now, 1)[0]!.why!, /has not written its answers yet/);
});

test('device facts come from the device side: a user-side PASS is replaced by the device task\'s answer; without one it is marked user-reported', () => {
  const now = new Date('2026-11-30T12:00:00Z');
  const own = [r('disk-encryption', 'PASS', { evidence: ['cryptsetup isLuks: a LUKS header'] }), r('firewall', 'PASS'), r('screen-lock', 'PASS')];
  const device: PostureFile = { version: 1, at: '2026-11-30T11:30:00Z', task: 'device', platform: 'linux', results: [r('disk-encryption', 'FAIL', { evidence: ['no crypt layer'] }), r('screen-lock', 'FAIL')], confirmed: {}, pending: {} };
  const merged = mergeDeviceResults(own, device, now, 3 * 3600_000);
  assert.deepEqual(merged.map((x) => [x.check, x.status, x.source]), [['disk-encryption', 'FAIL', 'device'], ['firewall', 'PASS', 'user'], ['screen-lock', 'PASS', 'user']]);
  // A shared file written by a user task (task: user) is not the device side.
  const planted = mergeDeviceResults(own, { ...device, task: 'user' }, now, 3 * 3600_000);
  assert.deepEqual(planted.map((x) => x.source), ['user', 'user', 'user']);
  assert.deepEqual(mergeDeviceResults(own, undefined, now, 1).map((x) => x.source), ['user', 'user', 'user']);
});

test('a posture pass stores its results, records events for changes (not for a first PASS), and gives metrics rows', async () => {
  const stateDir = tempDir('posture-pass');
  const events = new EventLog(stateDir, 'user', { sinks: [] });
  const settings = { ...resolvePostureSettings({ confirmations: 1, adminChecks: [{ name: 'marker', kind: 'file', target: path.join(stateDir, 'marker') }] }), deviceFile: path.join(stateDir, 'none.json') };
  const context = { platform: 'linux' as const, privileged: false, env: {}, run: async () => ({ code: 1, stdout: '', stderr: 'not here' }) };
  const first = await evaluatePosture({ side: 'user', stateDir, settings, checks: { context: machineContext, run: runPostureChecks }, events, context });
  assert.equal(first.file.results.length, 7);
  assert.equal(fs.statSync(path.join(stateDir, 'posture.json')).mode & 0o777, 0o600);
  const ids = () => events.read().map((e) => e.id);
  assert.ok(ids().includes(1261), 'the missing marker fails at first sight: event 1261');
  fs.writeFileSync(path.join(stateDir, 'marker'), '');
  const second = await evaluatePosture({ side: 'user', stateDir, settings, checks: { context: machineContext, run: runPostureChecks }, events, context });
  assert.deepEqual(second.changes.map((c) => [c.check, c.to]), [['admin:marker', 'PASS']]);
  const passing = events.read().filter((e) => e.id === 1260);
  assert.equal(passing.length, 1);
  assert.equal(passing[0]!.data?.check, 'admin:marker');
  assert.deepEqual(postureMetrics(second.file).find((m) => m.check === 'admin:marker'), { check: 'admin:marker', status: 'PASS' });
  assert.equal(postureMetrics(undefined).length, 0);
});
