import type { Clock } from '../../src-main/core/scheduler/clock.js';

interface Timer {
  id: number;
  due: number;
  fn: () => void;
}

/**
 * A clock for tests. Timers run on the monotonic clock, like Node's; `suspend` moves only the wall clock,
 * as a laptop's lid does (Linux's CLOCK_MONOTONIC stands still in suspend), so a test can show what the
 * scheduler does on wake.
 */
export class FakeClock implements Clock {
  private mono = 0;
  private seq = 0;
  private timers: Timer[] = [];

  constructor(private wall: number) {}

  now(): number {
    return this.wall;
  }

  monotonic(): number {
    return this.mono;
  }

  setTimer(fn: () => void, ms: number): unknown {
    const t = { id: ++this.seq, due: this.mono + Math.max(0, ms), fn };
    this.timers.push(t);
    return t.id;
  }

  clearTimer(handle: unknown): void {
    this.timers = this.timers.filter((t) => t.id !== handle);
  }

  get pendingTimers(): number {
    return this.timers.length;
  }

  /** The wall clock is set (by a person, a bad RTC, a VM snapshot restore): it moves by `ms`, either way; timers do not. */
  jump(ms: number): void {
    this.wall += ms;
  }

  /** The machine sleeps: wall time passes, timers do not move. */
  suspend(ms: number): void {
    this.wall += ms;
  }

  /**
   * Lets `ms` of time pass, firing timers in order. After each firing `settle` is awaited when it returns a
   * promise (the scheduler's pass in progress), so async work completes at the simulated moment it started.
   */
  async advance(ms: number, settle?: () => Promise<void> | undefined): Promise<void> {
    const target = this.mono + ms;
    for (;;) {
      let next: Timer | undefined;
      for (const t of this.timers) if (t.due <= target && (!next || t.due < next.due || (t.due === next.due && t.id < next.id))) next = t;
      if (!next) break;
      this.wall += next.due - this.mono;
      this.mono = next.due;
      this.timers = this.timers.filter((t) => t !== next);
      next.fn();
      const p = settle?.();
      if (p) await p;
    }
    this.wall += target - this.mono;
    this.mono = target;
  }

  /** Advances to a wall-clock moment (no suspend in between). */
  async advanceTo(wall: number, settle?: () => Promise<void> | undefined): Promise<void> {
    if (wall > this.wall) await this.advance(wall - this.wall, settle);
  }
}
