import fs from 'node:fs';

/**
 * Debian's libfaketime, preloaded into the agent's process: its wall clock (Date.now, new Date) reads `offset`
 * from the real time, as on a machine whose clock is wrong. The monotonic clock is left alone, so timers behave.
 * Node honours it (checked: `faketime -f +340d node -e "console.log(new Date())"` prints the shifted date).
 */
const LIB = ['/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1', '/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1', '/usr/lib/faketime/libfaketime.so.1']
  .find((p) => fs.existsSync(p));

export function faketimeUnavailable(): string | undefined {
  return LIB ? undefined : 'skipped: libfaketime is not installed (apt install faketime)';
}

/** Environment for a child whose clock is shifted, e.g. '+340d', '-2h', '+17h'. */
export function faketimeEnv(offset: string): Record<string, string> {
  return { LD_PRELOAD: LIB!, FAKETIME: offset, DONT_FAKE_MONOTONIC: '1', FAKETIME_DONT_RESET: '1' };
}
