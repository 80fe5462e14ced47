import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';

export function haveCommand(file: string, args: string[] = ['--version']): boolean {
  try {
    return spawnSync(file, args, { stdio: 'ignore', timeout: 10_000 }).error === undefined;
  } catch {
    return false;
  }
}

/** A child process whose output is kept (printed when a test fails) and that is killed at the end. */
export interface Daemon {
  child: ChildProcess;
  output(): string;
  stop(): Promise<void>;
}

export function startDaemon(file: string, args: string[]): Daemon {
  const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout?.on('data', (d) => (out += d));
  child.stderr?.on('data', (d) => (out += d));
  child.on('error', (e) => (out += `\n[spawn error] ${e.message}`));
  return {
    child,
    output: () => out,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
        setTimeout(() => child.kill('SIGKILL'), 5000).unref();
      }),
  };
}

export function readIf(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}
