import { spawn, type ChildProcess } from 'node:child_process';
import { attemptFromWire, type PassIsolation } from '../core/scheduler/isolated.js';
import { passDeadlineError } from '../core/time/deadline.js';

/** The daemon's hidden option that makes a process one isolated pass or posture run: `attempt:TRIGGER`, `posture:WHY`. */
export const CHILD_OPTION = 'child-pass';

/** What the child sends back over its IPC channel. */
export type ChildMessage = { attempt: unknown } | { posture: string };

/**
 * Runs each pass and posture run of the long-running daemon in a child process of this same program (the same
 * runtime, script, command line and environment, so the same configuration, side and state directory), given
 * `deadlineMs()` to finish before it is killed: a hung pass never keeps the lock or the schedule waiting.
 */
export function childPasses(opts: {
  argv: readonly string[];
  deadlineMs: () => number;
  debug?: (line: string) => void;
  /** The program and its first arguments (tests); this process's own runtime, flags and script otherwise. */
  program?: readonly string[];
}): PassIsolation {
  const [exe, ...first] = opts.program ?? [process.execPath, ...process.execArgv, process.argv[1]!];
  const running = new Set<ChildProcess>();
  const run = (job: string): Promise<ChildMessage> =>
    new Promise((resolve, reject) => {
      const ms = opts.deadlineMs();
      const child = spawn(exe!, [...first, ...opts.argv, `--${CHILD_OPTION}`, job], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      running.add(child);
      opts.debug?.(`${job}: child process ${child.pid}, killed after ${Math.round(ms / 1000)} s`);
      let message: ChildMessage | undefined;
      let timedOut = false;
      // The child ignores SIGTERM (it finishes its pass, as the daemon does): at the deadline it is killed outright.
      const timer = setTimeout(() => {
        timedOut = true;
        child.kill('SIGKILL');
      }, ms);
      child.on('message', (m) => {
        message = m as ChildMessage;
      });
      child.once('error', (e) => {
        clearTimeout(timer);
        running.delete(child);
        reject(e);
      });
      child.once('close', (code, signal) => {
        clearTimeout(timer);
        running.delete(child);
        if (message) resolve(message);
        else if (timedOut) reject(passDeadlineError(ms));
        else reject(new Error(`${job.split(':')[0]} process ${child.pid} exited ${signal ? `on ${signal}` : `with code ${code}`}`));
      });
    });
  return {
    async attempt(trigger) {
      const m = await run(`attempt:${trigger}`);
      if (!('attempt' in m)) throw new Error('the pass process sent no pass result');
      return attemptFromWire(m.attempt);
    },
    async posture(why) {
      const m = await run(`posture:${why}`);
      if (!('posture' in m) || typeof m.posture !== 'string') throw new Error('the posture process sent no result');
      return m.posture;
    },
    stop(signal) {
      for (const c of running) c.kill(signal as NodeJS.Signals);
    },
  };
}
