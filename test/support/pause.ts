import type { ChildProcess } from 'node:child_process';
import { spawnAgent } from './agent.js';

/** A child agent stopped at a DTA_TEST_PAUSE_AT point (see src-main/base/test-hooks.ts). */
export interface PausedAgent {
  child: ChildProcess;
  point: string;
  stderr: string;
  /** SIGKILL, and wait until the process is gone. */
  kill(): Promise<void>;
}

/**
 * Starts the real command line with DTA_TEST_PAUSE_AT=`at` and resolves once it has stopped there. Rejects
 * if it exits first (the point was never reached) — so a renamed step makes the test fail, not pass.
 */
export function startPaused(args: string[], env: Record<string, string>, at: string, timeoutMs = 30_000): Promise<PausedAgent> {
  return new Promise((resolve, reject) => {
    const child = spawnAgent(args, { ...env, DTA_TEST_PAUSE_AT: at });
    let stderr = '';
    let stdout = '';
    const exited = new Promise<void>((r) => child.on('exit', () => r()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`agent did not reach ${at} in time\n${stdout}\n${stderr}`));
    }, timeoutMs);
    child.stdout!.on('data', (d) => (stdout += d));
    child.stderr!.on('data', (d) => {
      stderr += d;
      const m = /DTA_TEST_PAUSED (.*)/.exec(stderr);
      if (m) {
        clearTimeout(timer);
        resolve({
          child, point: m[1]!, stderr,
          kill: async () => {
            child.kill('SIGKILL');
            await exited;
          },
        });
      }
    });
    child.on('exit', (code, signal) => {
      if (/DTA_TEST_PAUSED/.test(stderr)) return;
      clearTimeout(timer);
      reject(new Error(`agent exited (${code ?? signal}) before reaching ${at}\n${stdout}\n${stderr}`));
    });
  });
}
