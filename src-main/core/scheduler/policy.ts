import type { RenewalChoice } from './record.js';

const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;

/** The scheduler's timing rules; every number in one place (docs/ADMINS.md "Scheduling" documents them). */
export interface SchedulePolicy {
  /** Daily passes: every this long, counted from the first pass. */
  dailyMs: number;
  /** A daily pass is skipped when any pass ran less than this before it (a logon or retry already checked). */
  dailyMinSpacingMs: number;
  /** The longest the daemon sleeps before re-reading the wall clock (catch-up after suspend). */
  tickMs: number;
  /** Backoff after the 1st, 2nd, 3rd … consecutive failure; the last value repeats. */
  backoffMs: number[];
  /** Each backoff delay is multiplied by a uniform factor in [1 - jitter, 1 + jitter]. */
  backoffJitter: number;
  /** Retries are at most this far apart (before jitter) while the certificate is valid and far from expiry. */
  backoffCapMs: number;
  /** With no valid certificate (enrolling), retries are at most this far apart. */
  backoffCapNoCertMs: number;
  /** Near expiry the cap shrinks to (time left) / this, but not below backoffFloorMs. */
  urgencyDivisor: number;
  backoffFloorMs: number;
  /** The renewal moment is drawn from the first this-fraction of the renewal window; the rest is for retries. */
  renewalSpread: number;
  /** Used when the org's renewal window for a certificate is unknown (adopted after lost state). */
  defaultWindowMs: number;
  /** Event triggers (logon, network change) are ignored this soon after a pass. */
  coalesceMs: number;
  /** A network change is acted on once the routes have been quiet this long (certmonger: 60 s). */
  networkDebounceMs: number;
  /** When another process holds the pass lock, look again this much later. */
  busyRetryMs: number;
  /** Between passes the configuration is re-read at most this often (a stuck agent notices a fix by it). */
  configCheckMs: number;
  /** A stuck agent still checks again this often (a person may have fixed it): no state without a next deadline. */
  stuckRecheckMs: number;
  /** A server's Retry-After is honoured up to this long (a hostile or broken value cannot park the agent). */
  retryAfterCapMs: number;
}

export const DEFAULT_POLICY: SchedulePolicy = {
  dailyMs: DAY,
  dailyMinSpacingMs: 12 * HOUR,
  tickMs: MIN,
  backoffMs: [1 * MIN, 10 * MIN, 100 * MIN, 1000 * MIN, DAY],
  backoffJitter: 0.25,
  // 19 h + 25 % jitter stays under a day: one day of reachability always sees an attempt.
  backoffCapMs: 19 * HOUR,
  backoffCapNoCertMs: 4 * HOUR,
  urgencyDivisor: 8,
  backoffFloorMs: HOUR,
  renewalSpread: 2 / 3,
  defaultWindowMs: 30 * DAY,
  coalesceMs: 5 * MIN,
  networkDebounceMs: MIN,
  busyRetryMs: MIN,
  configCheckMs: 5 * MIN,
  stuckRecheckMs: DAY,
  retryAfterCapMs: DAY,
};

export function policyWith(overrides: Partial<SchedulePolicy> = {}): SchedulePolicy {
  return { ...DEFAULT_POLICY, ...overrides };
}

/**
 * Delay before the retry after the `failures`-th consecutive failure: 1, 10, 100, 1000 minutes, then every 19 h,
 * capped by how urgent the situation is — no valid certificate, or one close to expiry, retries more often —
 * and then ±25 % jitter, so a fleet that failed together (the org was down) does not retry together.
 */
export function backoffDelay(policy: SchedulePolicy, failures: number, msToExpiry: number | undefined, random: () => number): number {
  const steps = policy.backoffMs;
  const base = steps[Math.min(Math.max(failures, 1), steps.length) - 1]!;
  const cap = msToExpiry === undefined || msToExpiry <= 0
    ? policy.backoffCapNoCertMs
    : Math.min(policy.backoffCapMs, Math.max(policy.backoffFloorMs, msToExpiry / policy.urgencyDivisor));
  // Jitter after the cap, so the daily retries of agents that failed together spread over hours too.
  return Math.max(1000, Math.min(base, cap) * (1 - policy.backoffJitter + 2 * policy.backoffJitter * random()));
}

/**
 * The delay before the next attempt after a failure: the backoff, or the server's Retry-After (429/503) when
 * that is longer — plus up to `backoffJitter` of it again, so a fleet told the same Retry-After does not
 * come back in the same second.
 */
export function retryDelay(policy: SchedulePolicy, failures: number, msToExpiry: number | undefined, retryAfterMs: number | undefined, random: () => number): number {
  const backoff = backoffDelay(policy, failures, msToExpiry, random);
  if (retryAfterMs === undefined || !(retryAfterMs > 0)) return backoff;
  const asked = Math.min(retryAfterMs, policy.retryAfterCapMs);
  return Math.max(backoff, Math.min(policy.retryAfterCapMs, asked * (1 + policy.backoffJitter * random())));
}

/**
 * The renewal moment of one certificate: a point in the first `renewalSpread` of its renewal window, drawn
 * from the certificate's own fingerprint. It is random across a fleet (fingerprints are uniformly
 * distributed) yet fixed for each certificate — the same after a restart, after a lost state file, and in
 * every process that asks — so it is chosen once without coordination, and persisted for display.
 */
export function chooseRenewal(policy: SchedulePolicy, sha256: string, notAfterMs: number, windowStartMs: number): RenewalChoice {
  const hex = sha256.replace(/[^0-9a-f]/gi, '').slice(0, 12).padEnd(12, '0');
  const fraction = parseInt(hex, 16) / 2 ** 48;
  const span = Math.max(0, notAfterMs - windowStartMs) * policy.renewalSpread;
  return {
    sha256,
    windowStart: new Date(windowStartMs).toISOString(),
    notAfter: new Date(notAfterMs).toISOString(),
    renewAt: new Date(Math.floor(windowStartMs + fraction * span)).toISOString(),
  };
}

/** The persisted choice when it is for this certificate; otherwise a new one. */
export function renewalFor(policy: SchedulePolicy, persisted: RenewalChoice | undefined, sha256: string, notAfterMs: number, windowStartMs: number): RenewalChoice {
  if (persisted && persisted.sha256 === sha256) return persisted;
  return chooseRenewal(policy, sha256, notAfterMs, windowStartMs);
}
