import { findClockAnomalies } from './anomaly.js';
import type { Clock } from './clock.js';
import type { AttemptResult, PassEngine, ScheduleStore } from './pass-engine.js';
import { namedState, nextDeadline, type Deadline, type NamedState, type Snapshot } from './plan.js';
import type { SchedulePolicy } from './policy.js';
import type { Trigger } from './record.js';

export interface SchedulerDeps {
  /** The in-process engine, or the daemon's that runs each pass in a child process. */
  engine: Pick<PassEngine, 'attempt'>;
  store: ScheduleStore;
  clock: Clock;
  policy: SchedulePolicy;
  log?: (line: string) => void;
  onAttempt?: (r: AttemptResult) => void;
}

/** Event triggers waiting for the current pass to end, most important first. */
const EVENT_ORDER: Trigger[] = ['install', 'manual', 'logon', 'network'];

/**
 * Deadline-driven: the next pass is the earliest persisted deadline (daily, renewal moment, retry, expiry).
 * The daemon never sleeps longer than one short tick before looking at the wall clock again, so a deadline
 * that passed while the machine was suspended is met once on wake — not skipped, and not once per missed
 * tick — and timers that drift or fire late do not matter. Only one pass runs at a time in this process;
 * the engine's lock covers other processes.
 */
export class Scheduler {
  private timer: unknown;
  private running: Promise<void> | undefined;
  private runningTrigger: Trigger | undefined;
  private readonly pending = new Set<Trigger>();
  private busyUntil = 0;
  private snapshot: Snapshot;
  private token: string;
  private lastWall: number | undefined;
  private lastMono: number | undefined;
  private stopped = true;
  private planned: { snapshot: Snapshot; next: Deadline | undefined } | undefined;
  /** Wake-ups noticed (wall clock ran ahead of the monotonic clock): for tests and the log. */
  wakeUps = 0;
  /** The last pass started for a deadline, to refuse running the same still-due deadline back to back. */
  private lastTimed: { reason: Trigger; at: number } | undefined;

  constructor(private readonly deps: SchedulerDeps) {
    this.snapshot = deps.store.load();
    this.token = deps.store.changeToken();
  }

  /** Starts ticking; `initial` is why the process started (logon, install, a timer's one-shot…). */
  start(initial?: Trigger): void {
    this.stopped = false;
    if (initial) this.pending.add(initial);
    this.tick();
  }

  /** An event: a logon, a network change, an explicit request. Acted on at once (the engine may decline). */
  trigger(t: Trigger): void {
    if (this.stopped) return;
    this.pending.add(t);
    if (!this.running) this.tick();
  }

  /** Looks at the wall clock now instead of at the next tick (the host saw the machine resume from sleep). */
  wake(): void {
    if (!this.stopped && !this.running) this.tick();
  }

  /** Stops ticking; resolves when a pass in progress has ended. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== undefined) this.deps.clock.clearTimer(this.timer);
    this.timer = undefined;
    await this.running;
  }

  /** Resolves when no pass is running (tests advance a fake clock, then wait for this). */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  get isRunning(): boolean {
    return this.running !== undefined;
  }

  state(): NamedState {
    return namedState(this.deps.policy, this.snapshot, this.deps.clock.now(), this.runningTrigger);
  }

  private arm(ms: number): void {
    if (this.stopped) return;
    if (this.timer !== undefined) this.deps.clock.clearTimer(this.timer);
    this.timer = this.deps.clock.setTimer(() => {
      this.timer = undefined;
      this.tick();
    }, Math.max(0, Math.min(ms, this.deps.policy.tickMs)));
  }

  private tick(): void {
    if (this.stopped) return;
    const { clock, policy, store } = this.deps;
    const now = clock.now();
    const mono = clock.monotonic();
    if (this.lastWall !== undefined && this.lastMono !== undefined) {
      const gap = now - this.lastWall - (mono - this.lastMono);
      if (gap > 2 * policy.tickMs) {
        this.wakeUps++;
        this.deps.log?.(`The wall clock moved ${Math.round(gap / 1000)} s more than the timers: woke from sleep (or the clock was set); checking what is due.`);
      }
    }
    this.lastWall = now;
    this.lastMono = mono;
    if (this.running) return this.arm(policy.tickMs);
    const token = store.changeToken();
    if (token !== this.token) {
      this.token = token;
      this.snapshot = store.load();
    }
    const event = EVENT_ORDER.find((t) => this.pending.has(t)) ?? [...this.pending][0];
    if (event && now >= this.busyUntil) {
      this.pending.delete(event);
      return this.run(event);
    }
    // A persisted time in the future (the clock ran ahead, then back): the engine recomputes the schedule now.
    if (now >= this.busyUntil && findClockAnomalies(policy, this.snapshot.record, now).length > 0) {
      this.planned = undefined;
      return this.run('clock');
    }
    // The plan only changes with the snapshot; between passes a tick is a clock read and a comparison.
    if (!this.planned || this.planned.snapshot !== this.snapshot) this.planned = { snapshot: this.snapshot, next: nextDeadline(policy, this.snapshot, now) };
    const d = this.planned.next;
    if (d && d.at <= now && now >= this.busyUntil) {
      // Never a pass loop: a deadline still due right after a pass for it (a record the pass could not move on)
      // waits a minute instead of running again at once.
      const prev = this.lastTimed;
      if (prev && prev.reason === d.reason && prev.at >= d.at && now - prev.at < policy.busyRetryMs) {
        this.deps.log?.(`The ${d.reason} deadline is still due right after a pass for it; trying again in ${policy.busyRetryMs / 1000} s.`);
        return this.arm(prev.at + policy.busyRetryMs - now);
      }
      this.lastTimed = { reason: d.reason, at: now };
      this.planned = undefined;
      return this.run(d.reason);
    }
    const wait = Math.max(this.busyUntil - now, d ? d.at - now : policy.tickMs, 0);
    this.arm(wait);
  }

  private run(trigger: Trigger): void {
    const { engine, clock, policy, store } = this.deps;
    this.runningTrigger = trigger;
    this.running = (async () => {
      let res: AttemptResult | undefined;
      try {
        res = await engine.attempt(trigger);
        if (res.ran) {
          this.snapshot = res.snapshot;
          this.busyUntil = 0;
        } else if (res.why === 'busy') {
          // Another process is doing a pass: look again shortly; an event trigger is kept for then.
          this.busyUntil = clock.now() + policy.busyRetryMs;
          if (EVENT_ORDER.includes(trigger)) this.pending.add(trigger);
        } else {
          this.snapshot = res.snapshot;
        }
        this.deps.onAttempt?.(res);
      } catch (e) {
        // The pass itself never throws (its errors are outcomes); this is the state file: retry shortly.
        this.deps.log?.(`Could not record the pass: ${(e as Error).message}`);
        this.busyUntil = clock.now() + policy.busyRetryMs;
      } finally {
        this.token = store.changeToken();
        this.running = undefined;
        this.runningTrigger = undefined;
      }
      this.tick();
    })();
  }
}
