import type { RunResult } from '../enrollment/pass.js';
import { AgentError, isAgentError } from '../../base/errors.js';
import type { LockInfo } from '../state/lock.js';
import { applyPass, effectiveReport, namedState, nextDeadline, isStuckNow, type NamedState, type PassReport, type Snapshot } from './plan.js';
import { renewalFor, type SchedulePolicy } from './policy.js';
import type { RenewalChoice, ScheduleRecord, Trigger } from './record.js';
import type { ClockAnomaly } from './anomaly.js';

/** Where the schedule record and the current certificate's facts are persisted (state.json in the agent). */
export interface ScheduleStore {
  load(): Snapshot;
  save(record: ScheduleRecord): void;
  /** Cheap; changes when another process (or a person) changed the state or the configuration. */
  changeToken(): string;
  /** Finds persisted times in the future (clock anomalies), recomputes them from `now` and saves; returns what it found. */
  repairClock?(now: number): ClockAnomaly[];
}

export interface PassLock {
  tryAcquire(purpose: string): { ok: true; release(): void } | { ok: false; holder: LockInfo | undefined };
}

/** What the agent's pass is given: the renewal moment to respect (scheduled passes only). */
export interface PassContext {
  trigger: Trigger;
  renewAt: (c: { sha256: string; notAfter: Date; windowStart: Date }) => Date;
}

/** One pass (an enrollment or renewal attempt); throws AgentError on failure (the real one is `runPass`). */
export type PassFn = (ctx: PassContext) => Promise<RunResult>;

export type AttemptResult =
  | { ran: true; trigger: Trigger; report: PassReport; result?: RunResult; error?: AgentError; snapshot: Snapshot; state: NamedState; previousState?: string; saveError?: string }
  | { ran: false; trigger: Trigger; why: 'busy'; holder: LockInfo | undefined }
  | { ran: false; trigger: Trigger; why: 'skipped'; detail: string; snapshot: Snapshot };

export interface EngineDeps {
  store: ScheduleStore;
  lock: PassLock;
  pass: PassFn;
  now: () => number;
  policy: SchedulePolicy;
  random?: () => number;
  /** Called after a pass whose named state differs from the last one recorded (for the event log). */
  onStateChange?: (from: string | undefined, to: NamedState) => void;
  /** Called after every pass is recorded (metrics file); must not throw. */
  afterRecord?: () => void;
  /** Called when persisted times were found in the future and the schedule was recomputed from now. */
  onClockAnomaly?: (found: ClockAnomaly[]) => void;
}

const TIMED = new Set<Trigger>(['first-run', 'daily', 'renewal', 'retry', 'expiry', 'config', 'timer', 'clock', 'recheck']);

/**
 * Runs one pass under the cross-process lock and records it. Inside the lock it re-reads the persisted
 * schedule and decides again whether the pass is still wanted, so two schedulers (the daemon and a timer's
 * one-shot, or two daemons racing after wake) never run the same due pass twice.
 */
export class PassEngine {
  private readonly random: () => number;

  constructor(private readonly deps: EngineDeps) {
    this.random = deps.random ?? Math.random;
  }

  /** Whether a pass started by `trigger` is wanted now; the reason it is not, otherwise. */
  decide(trigger: Trigger, s: Snapshot, now: number): { run: true; as: Trigger } | { run: false; detail: string } {
    const { policy } = this.deps;
    const last = s.record.lastPass ? Date.parse(s.record.lastPass.at) : undefined;
    const since = last === undefined ? Infinity : now - last;
    if (trigger === 'manual' || trigger === 'install') return { run: true, as: trigger };
    // After a clock anomaly the check is due now, whatever started this process.
    if (s.record.clockCheck && trigger !== 'network') return { run: true, as: 'clock' };
    if (trigger === 'logon') {
      return since < policy.coalesceMs ? { run: false, detail: `a pass ran ${Math.round(since / 1000)} s ago` } : { run: true, as: trigger };
    }
    if (trigger === 'network') {
      if (isStuckNow(s)) return { run: false, detail: 'stuck: a network change does not help' };
      const renewal = s.cert ? renewalFor(policy, s.record.renewal, s.cert.sha256, s.cert.notAfter, s.cert.windowStart) : undefined;
      const waiting = s.record.failures > 0 || !s.cert || s.cert.notAfter <= now || (renewal !== undefined && now >= Date.parse(renewal.renewAt));
      if (!waiting) return { run: false, detail: 'nothing is waiting for the network' };
      return since < policy.networkDebounceMs ? { run: false, detail: 'a pass ran after the change' } : { run: true, as: trigger };
    }
    if (TIMED.has(trigger)) {
      const d = nextDeadline(policy, s, now);
      if (!d || d.at > now) return { run: false, detail: d ? `next pass at ${new Date(d.at).toISOString()} (${d.reason})` : 'nothing is scheduled' };
      return { run: true, as: d.reason };
    }
    return { run: true, as: trigger };
  }

  async attempt(trigger: Trigger): Promise<AttemptResult> {
    const { store, lock, policy, now } = this.deps;
    const held = lock.tryAcquire(`${trigger} pass`);
    if (!held.ok) return { ran: false, trigger, why: 'busy', holder: held.holder };
    try {
      const found = store.repairClock?.(now()) ?? [];
      if (found.length) this.deps.onClockAnomaly?.(found);
      const before = store.load();
      const d = this.decide(trigger, before, now());
      if (!d.run) return { ran: false, trigger, why: 'skipped', detail: d.detail, snapshot: before };
      let chosen: RenewalChoice | undefined;
      const ctx: PassContext = {
        trigger: d.as,
        renewAt: (c) => {
          const choice = renewalFor(policy, before.record.renewal, c.sha256, c.notAfter.getTime(), c.windowStart.getTime());
          chosen = choice;
          return new Date(choice.renewAt);
        },
      };
      let result: RunResult | undefined;
      let error: AgentError | undefined;
      let report: PassReport;
      try {
        result = await this.deps.pass(ctx);
        report = { ok: true, outcome: result.outcome, message: result.message };
      } catch (e) {
        error = isAgentError(e) ? e : new AgentError('internal', 'INTERNAL', `Unexpected failure: ${(e as Error).message}`, undefined, { cause: e });
        report = { ok: false, outcome: 'failed', failure: error.failure, code: error.code, message: error.message, ...(error.remedy ? { remedy: error.remedy } : {}),
          ...(error.retryAfterMs ? { retryAfterMs: error.retryAfterMs } : {}) };
      }
      const at = now();
      const after = store.load();
      report = effectiveReport(policy, report, after, at);
      const record = applyPass(policy, after, d.as, report, at, this.random, chosen);
      const snapshot: Snapshot = { ...after, record };
      const state = namedState(policy, snapshot, at);
      const previousState = after.record.state;
      record.state = state.state;
      let saveError: string | undefined;
      try {
        store.save(record);
      } catch (e) {
        // The pass itself is done (and reported); only its schedule record is lost: the next pass re-plans.
        saveError = (e as Error).message;
      }
      if (previousState !== state.state) this.deps.onStateChange?.(previousState, state);
      try {
        this.deps.afterRecord?.();
      } catch {
        /* metrics never fail a pass */
      }
      return { ran: true, trigger: d.as, report, snapshot, state, ...(result ? { result } : {}), ...(error ? { error } : {}), ...(previousState ? { previousState } : {}), ...(saveError ? { saveError } : {}) };
    } finally {
      held.release();
    }
  }
}
