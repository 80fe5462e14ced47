import { z } from 'zod';
import type { HealthSnapshot, HealthState } from './types.js';

/**
 * The health policy, shaped like the access gateway's offline-mode health policy: a target is checked every
 * `intervalMs`, each attempt bounded by `timeoutMs`; a check retries up to `maxRetries` times before it counts
 * as one failure; `failureThreshold` consecutive failed checks make it OFFLINE; once OFFLINE it needs
 * `successThreshold` consecutive good checks and then `recoveryCooldownMs` without a failure to be ONLINE again.
 * In between it is DEGRADED (failing, not yet OFFLINE).
 */
export const HealthPolicySchema = z.object({
  intervalMs: z.number().int().min(1000).max(24 * 3600 * 1000),
  timeoutMs: z.number().int().min(100).max(120_000),
  maxRetries: z.number().int().min(0).max(10),
  failureThreshold: z.number().int().min(1).max(100),
  successThreshold: z.number().int().min(1).max(100),
  recoveryCooldownMs: z.number().int().min(0).max(24 * 3600 * 1000),
});
export type HealthPolicy = z.infer<typeof HealthPolicySchema>;

export const DEFAULT_HEALTH_POLICY: HealthPolicy = {
  intervalMs: 60_000,
  timeoutMs: 3_000,
  maxRetries: 3,
  failureThreshold: 3,
  successThreshold: 2,
  recoveryCooldownMs: 360_000,
};

export interface Transition {
  target: string;
  at: string;
  from: HealthState;
  to: HealthState;
  reason: string;
}

export interface HistoryPoint {
  at: string;
  ok: boolean;
  ms: number;
  state: HealthState;
}

const MAX_TRANSITIONS = 100;

/** One monitored target's state machine, with a bounded history for charts. */
export class TargetHealth {
  state: HealthState = 'UNKNOWN';
  since: number | undefined;
  consecutiveFailures = 0;
  consecutiveSuccesses = 0;
  recoveringUntil: number | undefined;
  private wasOffline = false;
  readonly transitions: Transition[] = [];
  readonly history: HistoryPoint[] = [];

  constructor(readonly target: string, private readonly policy: HealthPolicy, private readonly now: () => number, private readonly historyLimit = 1440) {}

  /** Time-based transitions (the end of a recovery cool-down) happen here; also called by observe and snapshot. */
  tick(): Transition | undefined {
    if (this.state === 'OFFLINE' && this.recoveringUntil !== undefined && this.now() >= this.recoveringUntil) {
      const at = this.recoveringUntil;
      this.recoveringUntil = undefined;
      this.wasOffline = false;
      return this.move('ONLINE', `${this.policy.successThreshold} good checks and a ${this.policy.recoveryCooldownMs / 1000} s cool-down without failure`, at);
    }
    return undefined;
  }

  /** One completed check (after its retries). Returns the transitions it caused, oldest first. */
  observe(ok: boolean, ms = 0, reason = ''): Transition[] {
    const out: Transition[] = [];
    const pre = this.tick();
    if (pre) out.push(pre);
    const now = this.now();
    if (ok) {
      this.consecutiveSuccesses++;
      this.consecutiveFailures = 0;
      if (this.state === 'UNKNOWN') out.push(this.move('ONLINE', 'first check succeeded', now));
      else if (this.state === 'DEGRADED' && !this.wasOffline && this.consecutiveSuccesses >= this.policy.successThreshold) {
        out.push(this.move('ONLINE', `${this.consecutiveSuccesses} consecutive good checks`, now));
      } else if (this.state === 'OFFLINE' && this.recoveringUntil === undefined && this.consecutiveSuccesses >= this.policy.successThreshold) {
        this.recoveringUntil = now + this.policy.recoveryCooldownMs;
        const t = this.tick(); // a zero cool-down ends at once
        if (t) out.push(t);
      }
    } else {
      this.consecutiveFailures++;
      this.consecutiveSuccesses = 0;
      this.recoveringUntil = undefined; // a failure during the cool-down starts recovery over
      const why = `${this.consecutiveFailures} consecutive failed check(s)${reason ? `: ${reason}` : ''}`;
      if (this.state !== 'OFFLINE' && this.consecutiveFailures >= this.policy.failureThreshold) {
        this.wasOffline = true;
        out.push(this.move('OFFLINE', why, now));
      } else if (this.state === 'UNKNOWN' || this.state === 'ONLINE') out.push(this.move('DEGRADED', why, now));
    }
    this.history.push({ at: new Date(now).toISOString(), ok, ms, state: this.state });
    if (this.history.length > this.historyLimit) this.history.splice(0, this.history.length - this.historyLimit);
    return out;
  }

  private move(to: HealthState, reason: string, at: number): Transition {
    const t: Transition = { target: this.target, at: new Date(at).toISOString(), from: this.state, to, reason };
    this.state = to;
    this.since = at;
    this.transitions.push(t);
    if (this.transitions.length > MAX_TRANSITIONS) this.transitions.splice(0, this.transitions.length - MAX_TRANSITIONS);
    return t;
  }

  snapshot(): HealthSnapshot {
    this.tick();
    return {
      target: this.target,
      state: this.state,
      since: this.since !== undefined ? new Date(this.since).toISOString() : null,
      consecutiveFailures: this.consecutiveFailures,
      consecutiveSuccesses: this.consecutiveSuccesses,
      recoveringUntil: this.recoveringUntil !== undefined ? new Date(this.recoveringUntil).toISOString() : null,
      transitions: this.transitions.map(({ target: _t, ...rest }) => rest),
    };
  }
}

/** Every monitored target's health under one policy. */
export class HealthMonitor {
  private readonly targets = new Map<string, TargetHealth>();

  constructor(readonly policy: HealthPolicy = DEFAULT_HEALTH_POLICY, private readonly now: () => number = Date.now) {}

  target(id: string): TargetHealth {
    let t = this.targets.get(id);
    if (!t) {
      t = new TargetHealth(id, this.policy, this.now);
      this.targets.set(id, t);
    }
    return t;
  }

  observe(id: string, ok: boolean, ms = 0, reason = ''): Transition[] {
    return this.target(id).observe(ok, ms, reason);
  }

  snapshots(): HealthSnapshot[] {
    return [...this.targets.values()].map((t) => t.snapshot());
  }
}

/** Runs `attempt` up to 1 + maxRetries times, stopping at the first success. */
export async function checkWithRetries(attempt: () => Promise<boolean>, maxRetries: number): Promise<{ ok: boolean; attempts: number }> {
  let attempts = 0;
  for (;;) {
    attempts++;
    if (await attempt()) return { ok: true, attempts };
    if (attempts > maxRetries) return { ok: false, attempts };
  }
}
