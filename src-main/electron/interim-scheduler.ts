/**
 * A stand-in for the agent's scheduler (src-main/core/scheduler, issue 3) until it lands, so the tray app
 * does its job meanwhile: a pass shortly after start (logon / install) and every 24 hours after that.
 * Deadline-driven with a short tick, so a laptop that slept through the deadline runs once on wake rather
 * than drifting or bursting. Failures simply wait for the next deadline; the real scheduler brings backoff,
 * jitter inside the renewal window and the cross-process lock.
 */
import type { SchedulerPort } from '../ipc/host.js';

const DAY_MS = 24 * 60 * 60 * 1000;

export interface InterimSchedulerOptions {
  run: () => Promise<unknown>;
  firstDelayMs?: number;
  intervalMs?: number;
  tickMs?: number;
  now?: () => number;
}

export class InterimScheduler implements SchedulerPort {
  private nextAt: number | undefined;
  private why = 'after start';
  private timer: NodeJS.Timeout | undefined;
  private running = false;

  constructor(private readonly opts: InterimSchedulerOptions) {}

  private now(): number {
    return (this.opts.now ?? Date.now)();
  }

  start(): void {
    if (this.timer) return;
    this.nextAt = this.now() + (this.opts.firstDelayMs ?? 30_000);
    this.why = 'after start (logon)';
    this.timer = setInterval(() => void this.tick(), this.opts.tickMs ?? 30_000);
    this.timer.unref?.();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  next(): { at: string; why: string } | undefined {
    return this.nextAt === undefined ? undefined : { at: new Date(this.nextAt).toISOString(), why: this.why };
  }

  /** Also called on resume from sleep and on a network change, so an overdue pass runs at once. */
  async tick(): Promise<void> {
    if (this.running || this.nextAt === undefined || this.now() < this.nextAt) return;
    this.running = true;
    try {
      await this.opts.run();
    } catch {
      /* the service reported it (event log, dashboard); the next deadline tries again */
    } finally {
      this.running = false;
      this.nextAt = this.now() + (this.opts.intervalMs ?? DAY_MS);
      this.why = 'every 24 hours';
    }
  }
}
