import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { ensurePrivateDir } from '../../base/fsutil.js';
import { childEnv } from '../../base/exec.js';

/**
 * A cross-process lock that a crashed holder cannot leave stuck. The lock file is created complete and
 * atomically (written under a temporary name, then hard-linked to the lock name, which fails if it exists)
 * and holds the holder's pid and process start time. A lock whose pid is gone, or whose pid now belongs to
 * a process that started at another time (pid reuse), is stale and is broken at once — no lease to wait
 * out, so a SIGKILLed pass does not delay the next one. The user side, the device side (when it shares the
 * state directory) and the UI all take the same lock file before a pass.
 */

const LockInfoSchema = z.object({
  pid: z.number().int().positive(),
  /** Process start time as the OS reports it (Linux: clock ticks since boot); absent where unknown. */
  startTime: z.string().optional(),
  host: z.string(),
  since: z.string(),
  /** What the holder is doing, for "another pass is running (…)" messages. */
  purpose: z.string(),
  nonce: z.string(),
});
export type LockInfo = z.infer<typeof LockInfoSchema>;

export type LockAttempt = { ok: true; lock: HeldLock } | { ok: false; holder: LockInfo | undefined };

/** A lock held by this process; release it in a finally block. */
export interface HeldLock {
  readonly file: string;
  readonly info: LockInfo;
  release(): void;
}

/** A lock on another host (a shared home directory) cannot be checked; after this long it is presumed dead. */
const FOREIGN_HOST_STALE_MS = 2 * 60 * 60 * 1000;
/** The breaker file lives for microseconds; older than this, its creator died while breaking a lock. */
const BREAKER_STALE_MS = 10_000;
/** An unreadable lock file (edited by hand, disk trouble) is treated as stale once it is this old. */
const UNREADABLE_STALE_MS = 5_000;

/** The start time of a process, so a reused pid is not mistaken for the holder. Undefined where unknown. */
export function processStartTime(pid: number): string | undefined {
  try {
    if (process.platform === 'linux') {
      const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
      // Field 22 (starttime) counted after the command name, which is in parentheses and may hold spaces.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      return fields[19];
    }
    if (process.platform === 'darwin') {
      const out = execFileSync('ps', ['-o', 'lstart=', '-p', String(pid)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], env: childEnv() }).trim();
      return out || undefined;
    }
  } catch {
    /* the process is gone, or the platform does not say */
  }
  return undefined;
}

function isZombie(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state === 'Z' || state === 'X';
  } catch {
    return false;
  }
}

/** Whether the process that wrote `info` is still running. */
export function holderAlive(info: LockInfo, ageMs: number): boolean {
  if (info.host !== os.hostname()) return ageMs < FOREIGN_HOST_STALE_MS;
  try {
    process.kill(info.pid, 0);
  } catch (e) {
    // EPERM: the process exists but belongs to another user (the device side running as root).
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  // A killed process whose parent has not reaped it yet (or never will: a container's init) is a zombie.
  if (process.platform === 'linux' && isZombie(info.pid)) return false;
  if (info.startTime === undefined) return true;
  const now = processStartTime(info.pid);
  return now === undefined || now === info.startTime;
}

export function readLock(file: string): { info: LockInfo | undefined; ageMs: number } | undefined {
  let text: string;
  let mtime: number;
  try {
    text = fs.readFileSync(file, 'utf8');
    mtime = fs.statSync(file).mtimeMs;
  } catch {
    return undefined;
  }
  const ageMs = Date.now() - mtime;
  try {
    return { info: LockInfoSchema.parse(JSON.parse(text)), ageMs };
  } catch {
    return { info: undefined, ageMs };
  }
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/**
 * Tries once to take the lock (breaking a stale one on the way); never waits for a live holder.
 * Returns the live holder's details when the lock is taken.
 */
export function tryAcquireLock(file: string, purpose: string): LockAttempt {
  ensurePrivateDir(path.dirname(file));
  const info: LockInfo = {
    pid: process.pid,
    ...(processStartTime(process.pid) !== undefined ? { startTime: processStartTime(process.pid)! } : {}),
    host: os.hostname(),
    since: new Date().toISOString(),
    purpose,
    nonce: crypto.randomBytes(8).toString('hex'),
  };
  const tmp = `${file}.${process.pid}.${info.nonce}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(info) + '\n', { mode: 0o600, flag: 'wx' });
  try {
    for (let attempt = 0; attempt < 5; attempt++) {
      try {
        linkOrCreate(tmp, file, info);
        return { ok: true, lock: held(file, info) };
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
      const cur = readLock(file);
      if (!cur) continue; // released between our link and our read: try again
      const stale = cur.info ? !holderAlive(cur.info, cur.ageMs) : cur.ageMs > UNREADABLE_STALE_MS;
      if (!stale) return { ok: false, holder: cur.info };
      if (!breakStale(file, cur.info)) sleepSync(20 + Math.random() * 30);
    }
    const cur = readLock(file);
    return { ok: false, holder: cur?.info };
  } finally {
    fs.rmSync(tmp, { force: true });
  }
}

/** Hard links keep the lock file complete from its first instant; filesystems without them get O_EXCL. */
function linkOrCreate(tmp: string, file: string, info: LockInfo): void {
  try {
    fs.linkSync(tmp, file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'ENOSYS' && code !== 'EXDEV') throw e;
    const fd = fs.openSync(file, 'wx', 0o600);
    try {
      fs.writeSync(fd, JSON.stringify(info) + '\n');
    } finally {
      fs.closeSync(fd);
    }
  }
}

/**
 * Removes a stale lock, but only the one we judged stale: under a short-lived breaker file, the lock is
 * re-read and removed only if it still carries the dead holder's nonce, so two processes breaking the same
 * stale lock at once cannot remove a fresh lock that a third process just took.
 */
function breakStale(file: string, stale: LockInfo | undefined): boolean {
  const breaker = `${file}.break`;
  let fd: number;
  try {
    fd = fs.openSync(breaker, 'wx', 0o600);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    try {
      if (Date.now() - fs.statSync(breaker).mtimeMs > BREAKER_STALE_MS) fs.rmSync(breaker, { force: true });
    } catch {
      /* gone already */
    }
    return false;
  }
  try {
    const again = readLock(file);
    if (!again) return true;
    const same = stale ? again.info?.nonce === stale.nonce : again.info === undefined;
    if (same) fs.rmSync(file, { force: true });
    return true;
  } finally {
    fs.closeSync(fd);
    fs.rmSync(breaker, { force: true });
  }
}

function held(file: string, info: LockInfo): HeldLock {
  let released = false;
  return {
    file,
    info,
    release() {
      if (released) return;
      released = true;
      // Only our own lock is removed: if it was (wrongly) broken and retaken, the new holder keeps it.
      const cur = readLock(file);
      if (cur?.info?.nonce === info.nonce) fs.rmSync(file, { force: true });
    },
  };
}

/** "pid 1234 on host, since 12:00:01 (scheduled pass: daily)" — for messages. */
export function describeHolder(h: LockInfo | undefined): string {
  if (!h) return 'holder unknown';
  return `pid ${h.pid}${h.host !== os.hostname() ? ` on ${h.host}` : ''}, since ${h.since}: ${h.purpose}`;
}

/** The lock that guards one state directory (its state file, key files and certificate store). */
export function passLockFile(stateDir: string): string {
  return path.join(stateDir, 'pass.lock');
}

/** Held by the long-running daemon of one state directory for its whole life (one daemon per directory). */
export function daemonLockFile(stateDir: string): string {
  return path.join(stateDir, 'daemon.lock');
}
