import { spawn } from 'node:child_process';
import path from 'node:path';
import { REPO } from './agent.js';

/** Another process holding a state directory's pass lock (as a pass of the daemon or a `run` would). */
export interface LockHolder {
  pid: number;
  /** Releases the lock (the process exits) and waits until it is gone. */
  release(): Promise<void>;
}

/**
 * Starts a real second process that takes `stateDir`'s pass lock through the agent's own lock module and
 * keeps it until released; resolves once it holds it.
 */
export function holdPassLock(stateDir: string, purpose = 'manual pass'): Promise<LockHolder> {
  const script = `
    import { passLockFile, tryAcquireLock } from ${JSON.stringify(path.join(REPO, 'dist/src-main/core/state/lock.js'))};
    const r = tryAcquireLock(passLockFile(${JSON.stringify(stateDir)}), ${JSON.stringify(purpose)});
    if (!r.ok) { console.log('busy'); process.exit(1); }
    console.log('held');
    process.stdin.resume();
    process.stdin.on('end', () => { r.lock.release(); process.exit(0); });`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['pipe', 'pipe', 'inherit'] });
  const exited = new Promise<void>((r) => child.on('exit', () => r()));
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d) => {
      out += d;
      if (out.includes('held')) resolve({ pid: child.pid!, release: async () => { child.stdin!.end(); await exited; } });
    });
    child.on('exit', (code) => reject(new Error(`the lock holder exited (${code}) before holding the lock: ${out}`)));
  });
}
