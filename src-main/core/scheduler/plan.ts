import type { FailureClass } from '../../base/errors.js';
import { renewalFor, retryDelay, type SchedulePolicy } from './policy.js';
import type { RenewalChoice, ScheduleRecord, Trigger } from './record.js';
import { AGENT_STATES, isStuck, stateForFailure, type AgentStateName } from './states.js';

/**
 * Pure planning: from what is persisted (the schedule record and the current certificate) and the wall
 * clock, which passes are due and when, and what named state the agent is in. No timers, no I/O — the
 * daemon, the one-shot timer pass, `schedule --json`, `status` and the fleet benchmark all use these.
 */

/** The facts about the current certificate that scheduling needs (from state.json). */
export interface CertFacts {
  sha256: string;
  /** The certificate's serial: the one identifier user-facing texts name it by. */
  serialNumber?: string;
  notAfter: number;
  /** Start of the org's renewal window for this certificate. */
  windowStart: number;
}

export interface Snapshot {
  record: ScheduleRecord;
  cert: CertFacts | undefined;
  /** An org URL is configured (and the configuration loads). */
  configured: boolean;
  /** Changes whenever a configuration file changes (lets a stuck agent notice a fix). */
  configFingerprint: string;
}

export type DeadlineReason = 'first-run' | 'daily' | 'renewal' | 'retry' | 'expiry' | 'config' | 'clock' | 'recheck';

export interface Deadline {
  at: number;
  reason: DeadlineReason;
  why: string;
}

export interface PassReport {
  ok: boolean;
  outcome: 'enrolled' | 'renewed' | 'nothing-to-do' | 'configured' | 'failed';
  failure?: FailureClass;
  code?: string;
  message: string;
  remedy?: string;
  /** The server asked not to be asked again before this long (Retry-After on 429/503). */
  retryAfterMs?: number;
}

export interface NamedState {
  state: AgentStateName;
  stuck: boolean;
  /** Why the agent is in this state (the last error, or what it waits for). */
  why: string;
  /** For a stuck state: what a person must do. */
  action?: string;
  next?: Deadline;
  renewAt?: number;
  failures: number;
}

const iso = (ms: number) => new Date(ms).toISOString();

export function renewalOf(policy: SchedulePolicy, s: Snapshot): RenewalChoice | undefined {
  if (!s.cert) return undefined;
  return renewalFor(policy, s.record.renewal, s.cert.sha256, s.cert.notAfter, s.cert.windowStart);
}

function lastFailureState(r: ScheduleRecord): AgentStateName | undefined {
  const lp = r.lastPass;
  if (!lp || lp.outcome !== 'failed') return undefined;
  return stateForFailure(lp.failure ?? 'internal', lp.code);
}

/** Stuck: the last pass failed in a way that will not change without a person. */
export function isStuckNow(s: Snapshot): boolean {
  const st = lastFailureState(s.record);
  return st !== undefined && isStuck(st);
}

/** Every pending deadline, earliest first. Never empty: whatever happened, a next pass is planned. */
export function deadlines(policy: SchedulePolicy, s: Snapshot, now: number): Deadline[] {
  const r = s.record;
  if (!r.lastPass) return [{ at: now, reason: 'first-run', why: 'no pass has run yet' }];
  // A wall clock stepped backwards must not push the next pass into the far future (anomaly.ts repairs the record).
  const last = Math.min(Date.parse(r.lastPass.at), now);
  // The last pass is persisted to the millisecond: a deadline is "still ahead of it" only by a whole millisecond,
  // or a pass run exactly at a fractional deadline would find that deadline due again, for ever.
  const after = (t: number) => last < Math.floor(t);
  const out: Deadline[] = [];
  if (r.clockCheck) out.push({ at: Math.min(Date.parse(r.clockCheck.at), now), reason: 'clock', why: 'the clock jumped: checking the certificate now' });
  if (isStuckNow(s)) {
    if (r.stuckConfig !== undefined && r.stuckConfig !== s.configFingerprint) {
      return [{ at: now, reason: 'config', why: 'the configuration changed since the agent got stuck' }];
    }
    // Stuck still has deadlines, with or without a certificate: a daily look whether a person fixed it (an
    // administrator approving the device, a CA policy changed), and the expiry. A configuration change or a
    // logon starts a pass sooner.
    out.push({ at: last + policy.stuckRecheckMs, reason: 'recheck', why: 'stuck: checking again daily whether a person fixed it' });
    if (s.cert && after(s.cert.notAfter)) out.push({ at: s.cert.notAfter, reason: 'expiry', why: `certificate ${certName(s.cert)} expires: enroll a new one` });
    return out.sort((a, b) => a.at - b.at);
  }
  if (r.retryAt) {
    // While retrying, the retry is the check: a daily pass on the grid would line up a fleet's retries
    // (everyone who installed at 9 am) right after an outage, which is the storm the jitter avoids.
    out.push({ at: Date.parse(r.retryAt), reason: 'retry', why: `retry ${r.failures} after ${r.lastPass.code ?? 'a failure'}` });
  } else {
    const anchor = Math.min(Date.parse(r.anchor ?? r.lastPass.at), now);
    const earliest = last + policy.dailyMinSpacingMs;
    const k = Math.ceil((earliest - anchor) / policy.dailyMs);
    out.push({ at: anchor + k * policy.dailyMs, reason: 'daily', why: `daily check (every ${policy.dailyMs / 3_600_000} h from ${iso(anchor)})` });
  }
  const renewal = renewalOf(policy, s);
  if (s.cert && renewal) {
    const renewAt = Date.parse(renewal.renewAt);
    if (after(renewAt)) out.push({ at: renewAt, reason: 'renewal', why: `renewal moment of certificate ${certName(s.cert)} (window from ${renewal.windowStart})` });
    if (after(s.cert.notAfter)) out.push({ at: s.cert.notAfter, reason: 'expiry', why: `certificate ${certName(s.cert)} expires: enroll a new one` });
  }
  return out.sort((a, b) => a.at - b.at);
}

function certName(c: CertFacts): string {
  return c.serialNumber ?? c.sha256.slice(0, 16);
}

export function nextDeadline(policy: SchedulePolicy, s: Snapshot, now: number): Deadline | undefined {
  return deadlines(policy, s, now)[0];
}

/** The named state, why, what a person must do when stuck, and the next attempt. */
export function namedState(policy: SchedulePolicy, s: Snapshot, now: number, running?: Trigger): NamedState {
  const renewal = renewalOf(policy, s);
  const renewAt = renewal ? Date.parse(renewal.renewAt) : undefined;
  const base = { failures: s.record.failures, ...(renewAt !== undefined ? { renewAt } : {}) };
  const next = nextDeadline(policy, s, now);
  const withNext = next ? { next } : {};
  const expired = s.cert !== undefined && s.cert.notAfter <= now;
  if (running) {
    const state: AgentStateName = !s.cert || expired ? 'ENROLLING' : renewAt !== undefined && now >= renewAt ? 'RENEWING' : 'CHECKING';
    return { ...base, state, stuck: false, why: `a pass started by ${running} is running` };
  }
  const lp = s.record.lastPass;
  const failed = lastFailureState(s.record);
  if (failed) {
    // A pass refused because of this device's clock stays CLOCK_WRONG when the certificate looks expired: by a
    // wrong clock it only looks so, and the next run cannot enroll a new one (the org refuses the clock too).
    const state: AgentStateName = expired && !isStuck(failed) && failed !== 'CLOCK_WRONG' ? 'EXPIRED' : failed;
    const stuck = isStuck(state);
    // Stuck states, and the named ones that need no person but explain what would help, say what to do.
    const advises = stuck || state === 'CLOCK_WRONG' || state === 'RENEWAL_REFUSED';
    const action = advises ? (lp?.remedy ?? ('action' in AGENT_STATES[state] ? (AGENT_STATES[state] as { action: string }).action : undefined)) : undefined;
    return { ...base, ...withNext, state, stuck, why: lp!.message, ...(action ? { action } : {}) };
  }
  if (!s.configured) {
    return { ...base, ...withNext, state: 'NOT_CONFIGURED', stuck: true, why: AGENT_STATES.NOT_CONFIGURED.meaning, action: AGENT_STATES.NOT_CONFIGURED.action };
  }
  if (!s.cert) return { ...base, ...withNext, state: 'NOT_ENROLLED', stuck: false, why: lp ? lp.message : AGENT_STATES.NOT_ENROLLED.meaning };
  if (expired) return { ...base, ...withNext, state: 'EXPIRED', stuck: false, why: `the certificate expired at ${iso(s.cert.notAfter)}` };
  if (renewAt !== undefined && now >= renewAt) return { ...base, ...withNext, state: 'RENEWAL_DUE', stuck: false, why: `renewal moment ${iso(renewAt)} has passed` };
  return { ...base, ...withNext, state: 'ENROLLED', stuck: false, why: `valid until ${iso(s.cert.notAfter)}; renewal at ${renewAt !== undefined ? iso(renewAt) : 'unknown'}` };
}

/**
 * A pass that found the certificate due for renewal but did not renew it (the org was unreachable, so the
 * agent fell back to "still valid, nothing to do") is a failure as far as scheduling goes: retry on backoff.
 */
export function effectiveReport(policy: SchedulePolicy, report: PassReport, after: Snapshot, now: number): PassReport {
  if (!report.ok || report.outcome !== 'nothing-to-do' || !after.cert) return report;
  const renewal = renewalOf(policy, after);
  if (!renewal || now < Date.parse(renewal.renewAt) || after.cert.notAfter <= now) return report;
  return { ok: false, outcome: 'failed', failure: 'retry-later', code: 'RENEWAL_POSTPONED', message: `The certificate is due for renewal but was not renewed: ${report.message}` };
}

/** The schedule record after a pass: backoff step, retry moment (jitter drawn now, once), renewal choice. */
export function applyPass(policy: SchedulePolicy, after: Snapshot, trigger: Trigger, report: PassReport, now: number, random: () => number, chosen?: RenewalChoice): ScheduleRecord {
  const r: ScheduleRecord = { ...after.record };
  r.anchor ??= iso(now);
  r.lastPass = {
    at: iso(now), trigger, outcome: report.outcome, message: report.message,
    ...(report.failure ? { failure: report.failure } : {}), ...(report.code ? { code: report.code } : {}), ...(report.remedy ? { remedy: report.remedy } : {}),
  };
  delete r.retryAt;
  delete r.stuckConfig;
  delete r.clockCheck;
  if (report.ok) {
    r.failures = 0;
    r.lastSuccessAt = iso(now);
  } else {
    r.failures = after.record.failures + 1;
    if (isStuck(stateForFailure(report.failure ?? 'internal', report.code))) {
      r.stuckConfig = after.configFingerprint;
    } else {
      const left = after.cert && after.cert.notAfter > now ? after.cert.notAfter - now : undefined;
      r.retryAt = iso(now + retryDelay(policy, r.failures, left, report.retryAfterMs, random));
    }
  }
  if (after.cert) {
    r.renewal = chosen && chosen.sha256 === after.cert.sha256 ? chosen : renewalFor(policy, r.renewal, after.cert.sha256, after.cert.notAfter, after.cert.windowStart);
  } else {
    delete r.renewal;
  }
  return r;
}
