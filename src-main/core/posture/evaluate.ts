import type { Side } from '../enrollment/side.js';
import path from 'node:path';
import type { PostureChecks, PostureContext } from '../../platform/posture/contract.js';
import type { EventLog } from '../events.js';
import { redact } from '../../base/safe-text.js';
import { deviceStateDir, type ResolvedPostureSettings } from './settings.js';
import { POSTURE_FILE, readPostureFile, readSharedPostureFile, writePostureFile, type PostureFile, type StoredPostureResult } from './snapshot.js';

type Status = StoredPostureResult['status'];

export interface PostureChange {
  check: string;
  from: Status | undefined;
  to: Status;
  result: StoredPostureResult;
}

/**
 * Hysteresis, as the reachability monitor's thresholds: a result that differs from the announced one is
 * announced only once it has been seen `confirmations` times in a row, so a check that flickers (a firewall
 * reloading its rules, an update in progress) does not flood the event log or the org. The first
 * observation of a check is announced at once.
 */
export function applyHysteresis(prev: Pick<PostureFile, 'confirmed' | 'pending'> | undefined, results: StoredPostureResult[], confirmations: number): { confirmed: PostureFile['confirmed']; pending: PostureFile['pending']; changes: PostureChange[] } {
  const confirmed: PostureFile['confirmed'] = {};
  const pending: PostureFile['pending'] = {};
  const changes: PostureChange[] = [];
  for (const r of results) {
    const was = prev?.confirmed[r.check];
    if (was === undefined) {
      confirmed[r.check] = r.status;
      changes.push({ check: r.check, from: undefined, to: r.status, result: r });
    } else if (was === r.status) {
      confirmed[r.check] = was;
    } else {
      const p = prev?.pending[r.check];
      const count = p?.status === r.status ? p.count + 1 : 1;
      if (count >= confirmations) {
        confirmed[r.check] = r.status;
        changes.push({ check: r.check, from: was, to: r.status, result: r });
      } else {
        confirmed[r.check] = was;
        pending[r.check] = { status: r.status, count };
      }
    }
  }
  return { confirmed, pending, changes };
}

/**
 * Checks whose answer is the user's own (a per-user setting); every other check is a device fact (disk
 * encryption, firewall, secure boot, OS version, endpoint protection, the admin's checks).
 */
export const USER_FACT_CHECKS: ReadonlySet<string> = new Set(['screen-lock']);

/**
 * Device facts come from the device side (root/SYSTEM): it runs the checks and writes the shared
 * file, which the user side trusts only when root wrote it where only root could (snapshot.ts
 * `readSharedPostureFile`). When that answer is there and fresh it replaces the user side's own for every device
 * fact — a PASS the user side saw included — marked `source: 'device'`. Without it the user side's own result
 * stays, marked `source: 'user'` (user-reported), so the org can tell the two apart (PROTOCOL §9).
 */
export function mergeDeviceResults(own: StoredPostureResult[], device: PostureFile | undefined, now: Date, maxAgeMs: number): StoredPostureResult[] {
  const fresh = device && device.task === 'device' && now.getTime() - Date.parse(device.at) <= maxAgeMs && Date.parse(device.at) <= now.getTime() + 5 * 60_000;
  return own.map((r) => {
    if (USER_FACT_CHECKS.has(r.check)) return { ...r, source: 'user' };
    if (r.status !== 'UNKNOWN' || !r.needsPrivilege) {
      const d = fresh ? device.results.find((x) => x.check === r.check) : undefined;
      if (d && !(d.status === 'UNKNOWN' && d.needsPrivilege)) return { ...d, source: 'device', evidence: [...d.evidence, `answered by the device task at ${device!.at}`] };
      return { ...r, source: 'user' };
    }
    const d = fresh ? device.results.find((x) => x.check === r.check) : undefined;
    if (!d || (d.status === 'UNKNOWN' && d.needsPrivilege)) {
      return { ...r, source: 'user', why: `${r.why ?? ''}${device ? fresh ? '; the device task could not answer either' : `; the device task's answer (${device.at}) is too old` : '; the device task has not written its answers yet'}` };
    }
    return { ...d, source: 'device', evidence: [...d.evidence, `answered by the device task at ${device!.at}`] };
  });
}

export interface PostureRun {
  file: PostureFile;
  changes: PostureChange[];
  /** Where this side keeps it (the device side: the shared file). */
  path: string;
}

export interface EvaluateOptions {
  side: Side;
  stateDir: string;
  settings: ResolvedPostureSettings;
  /** This OS's checks, from the platform (`Platform.posture`). */
  checks: PostureChecks;
  events?: EventLog | undefined;
  /** Tests hand in their own context (another runner, options); defaults to this machine. */
  context?: Partial<PostureContext>;
  now?: Date;
}

export function postureFileOf(stateDir: string): string {
  return path.join(stateDir, POSTURE_FILE);
}

/** The device side shares its answers when it is the installed one (its state directory) or a file is configured. */
export function sharesDeviceFile(stateDir: string, settings: ResolvedPostureSettings): boolean {
  const installed = deviceStateDir();
  return settings.deviceFileConfigured || (installed !== undefined && path.resolve(stateDir) === path.resolve(installed));
}

/** One posture pass: run the checks, take the device side's answers, apply hysteresis, record events, store. */
export async function evaluatePosture(opts: EvaluateOptions): Promise<PostureRun> {
  const now = opts.now ?? new Date();
  const ctx = opts.checks.context(opts.settings.options, { now, ...opts.context });
  const file = postureFileOf(opts.stateDir);
  const prev = readPostureFile(file);
  // The device side's results are device facts; the user side's are user-reported until the device side answers.
  let results: StoredPostureResult[] = (await opts.checks.run(ctx)).map((r) => ({ ...r, source: opts.side }));
  if (opts.side === 'user') results = mergeDeviceResults(results, readSharedPostureFile(opts.settings.deviceFile), now, opts.settings.deviceMaxAgeMs);
  const h = applyHysteresis(prev, results, opts.settings.confirmations);
  const out: PostureFile = { version: 1, at: now.toISOString(), task: opts.side, platform: ctx.platform, results, confirmed: h.confirmed, pending: h.pending, ...(prev?.report ? { report: prev.report } : {}) };
  writePostureFile(file, out, false);
  if (opts.side === 'device' && sharesDeviceFile(opts.stateDir, opts.settings)) writePostureFile(opts.settings.deviceFile, { ...out, confirmed: {}, pending: {} }, true);
  for (const c of h.changes) recordChange(opts.events, c);
  return { file: out, changes: h.changes, path: file };
}

function recordChange(events: EventLog | undefined, c: PostureChange): void {
  if (!events) return;
  // The first sight of a passing check is not news; every other change is.
  if (c.from === undefined && c.to === 'PASS') return;
  const r = c.result;
  const data = { check: c.check, from: c.from ?? null, to: c.to, source: r.source ?? 'user' };
  const was = c.from ? ` (was ${c.from})` : '';
  if (c.to === 'PASS') events.record('POSTURE_PASSING', redact(`${r.title}: ${r.summary}${was}`), data);
  else if (c.to === 'FAIL') events.record('POSTURE_FAILING', redact(`${r.title}: ${r.summary}${was} What to do: ${r.remedy ?? 'ask IT.'}`), data);
  else events.record('POSTURE_UNKNOWN', redact(`${r.title}: ${r.summary}${was} Why: ${r.why ?? 'not said'}.`), data);
}
