/**
 * Time as the scheduler sees it, injectable so a simulated year runs in a second. `now` is the wall clock
 * (deadlines are wall-clock moments, persisted); `monotonic` is the clock timers run on, which on Linux
 * stands still while the machine is suspended — the gap between the two is how a wake-up is noticed.
 */
export interface Clock {
  now(): number;
  monotonic(): number;
  setTimer(fn: () => void, ms: number): unknown;
  clearTimer(handle: unknown): void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  monotonic: () => performance.now(),
  setTimer: (fn, ms) => setTimeout(fn, ms),
  clearTimer: (h) => clearTimeout(h as NodeJS.Timeout),
};
