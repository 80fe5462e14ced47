import fs from 'node:fs';
import path from 'node:path';
import { holderAlive, passLockFile, readLock } from './lock.js';

/**
 * Temporary directories under <stateDir>/tmp (PKCS#12 bundles for the store import: p12-*, pfx-*; Firefox
 * profile copies: ff-*) hold a private key for the length of one child process. A crash or SIGKILL in between
 * leaves them behind, so every pass and `remove-certificate` sweeps them: file contents are overwritten before
 * the files are unlinked (best effort — a journaling or copy-on-write filesystem may keep old blocks).
 */

const TEMP_PREFIX = /^(p12|pfx|ff)-/;
/** While another live process holds the pass lock, only directories older than this are its leftovers. */
const BUSY_MIN_AGE_MS = 10 * 60_000;

export function tempRoot(stateDir: string): string {
  return path.join(stateDir, 'tmp');
}

function shred(file: string): void {
  try {
    const st = fs.lstatSync(file);
    if (!st.isFile()) return;
    const fd = fs.openSync(file, 'r+');
    try {
      const zeros = Buffer.alloc(Math.min(st.size, 1 << 20));
      for (let off = 0; off < st.size; off += zeros.length) fs.writeSync(fd, zeros, 0, Math.min(zeros.length, st.size - off), off);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    /* removed below either way */
  }
}

function shredTree(dir: string): void {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) shredTree(p);
    else if (e.isFile()) shred(p);
  }
}

/** Whether another live process holds the pass lock (its fresh temporary files and keys are not leftovers). */
export function anotherPassRunning(stateDir: string): boolean {
  try {
    const l = readLock(passLockFile(stateDir));
    return Boolean(l?.info && l.info.pid !== process.pid && holderAlive(l.info, l.ageMs));
  } catch {
    return true;
  }
}

/** Removes stale temporary directories; returns the names removed. Never throws (a sweep must not fail a pass). */
export function sweepTempDirs(stateDir: string, now: number = Date.now()): string[] {
  const root = tempRoot(stateDir);
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(root, { withFileTypes: true });
  } catch {
    return [];
  }
  const minAge = anotherPassRunning(stateDir) ? BUSY_MIN_AGE_MS : 0;
  const removed: string[] = [];
  for (const e of entries) {
    if (!e.isDirectory() || !TEMP_PREFIX.test(e.name)) continue;
    const p = path.join(root, e.name);
    try {
      if (now - fs.statSync(p).mtimeMs < minAge) continue;
      shredTree(p);
      fs.rmSync(p, { recursive: true, force: true });
      removed.push(e.name);
    } catch {
      /* next time */
    }
  }
  return removed;
}
