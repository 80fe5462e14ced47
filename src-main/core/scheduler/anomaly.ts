import type { SchedulePolicy } from './policy.js';
import type { ScheduleRecord } from './record.js';

/**
 * Clock anomalies: a time the agent persisted lies in the future. Only a clock that ran ahead (a bad RTC, a VM
 * snapshot restored, a person setting the date) can cause that, and left alone such a time stops the schedule
 * (a "last pass" in the future makes every daily pass look too soon; a hold in the future blocks requests for
 * as long as the clock was ahead). Each one found is reported with both times and the schedule is recomputed
 * from now: a check pass is due at once, the daily grid restarts from now.
 */

/** A persisted time this much ahead of the clock is an anomaly (the same tolerance Kerberos gives clocks). */
export const CLOCK_TOLERANCE_MS = 5 * 60_000;

export interface ClockAnomaly {
  /** Which persisted time (e.g. "last pass", "rejection hold"). */
  what: string;
  recorded: string;
  now: string;
  aheadMs: number;
}

/** Extra persisted times outside the schedule record (agent state), checked and repaired the same way. */
export interface PersistedTimes {
  hold?: { at: string; until: string } | undefined;
  pending?: { since: string } | undefined;
  forceRequested?: { at: string } | undefined;
}

const iso = (ms: number) => new Date(ms).toISOString();

/** The longest a legitimate retry can lie ahead: the largest backoff cap with its jitter, or a server's Retry-After. */
export function maxRetryAheadMs(policy: SchedulePolicy): number {
  return Math.max(policy.backoffCapMs, policy.backoffCapNoCertMs, policy.retryAfterCapMs) * (1 + policy.backoffJitter) + CLOCK_TOLERANCE_MS;
}

function ahead(what: string, at: string | undefined, now: number, allowMs = CLOCK_TOLERANCE_MS): ClockAnomaly | undefined {
  if (!at) return undefined;
  const t = Date.parse(at);
  if (!Number.isFinite(t) || t - now <= allowMs) return undefined;
  return { what, recorded: at, now: iso(now), aheadMs: t - now };
}

/** Every persisted time that lies in the future. */
export function findClockAnomalies(policy: SchedulePolicy, r: ScheduleRecord, now: number, extra: PersistedTimes = {}): ClockAnomaly[] {
  const found = [
    ahead('last pass', r.lastPass?.at, now),
    ahead('last success', r.lastSuccessAt, now),
    ahead('first pass (daily grid)', r.anchor, now),
    ahead('retry (backoff)', r.retryAt, now, maxRetryAheadMs(policy)),
    ahead('rejection hold', extra.hold?.at, now),
    ahead('pending request', extra.pending?.since, now),
    ahead('forced renewal request', extra.forceRequested?.at, now),
  ];
  return found.filter((a): a is ClockAnomaly => a !== undefined);
}

/** The schedule record recomputed from now: a check pass due now, the daily grid anchored at now. */
export function repairRecord(r: ScheduleRecord, anomalies: ClockAnomaly[], now: number): ScheduleRecord {
  if (anomalies.length === 0) return r;
  const out: ScheduleRecord = { ...r };
  const nowIso = iso(now);
  if (out.lastPass && Date.parse(out.lastPass.at) > now) out.lastPass = { ...out.lastPass, at: nowIso };
  if (out.lastSuccessAt && Date.parse(out.lastSuccessAt) > now) out.lastSuccessAt = nowIso;
  if (out.anchor && Date.parse(out.anchor) > now) out.anchor = nowIso;
  delete out.retryAt;
  out.clockCheck = { at: nowIso, detail: describeAnomalies(anomalies) };
  return out;
}

/** Holds and pending requests recorded in the future: moved to now, keeping their length. */
export function repairTimes<T extends PersistedTimes>(times: T, now: number): T {
  const out = { ...times };
  if (out.hold && Date.parse(out.hold.at) > now + CLOCK_TOLERANCE_MS) {
    const len = Math.max(0, Date.parse(out.hold.until) - Date.parse(out.hold.at));
    out.hold = { ...out.hold, at: iso(now), until: iso(now + len) };
  }
  if (out.pending && Date.parse(out.pending.since) > now + CLOCK_TOLERANCE_MS) out.pending = { ...out.pending, since: iso(now) };
  if (out.forceRequested && Date.parse(out.forceRequested.at) > now + CLOCK_TOLERANCE_MS) out.forceRequested = { ...out.forceRequested, at: iso(now) };
  return out;
}

function human(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  if (s < 172_800) return `${Math.round(s / 3600)} h`;
  return `${Math.round(s / 86_400)} days`;
}

export function describeAnomalies(anomalies: ClockAnomaly[]): string {
  const first = anomalies[0]!;
  const list = anomalies.map((a) => `${a.what} recorded at ${a.recorded} (${human(a.aheadMs)} ahead)`).join('; ');
  return `This device's clock reads ${first.now}, but ${list}: the clock was ahead earlier (or has been set back). The schedule was recomputed from now.`;
}
