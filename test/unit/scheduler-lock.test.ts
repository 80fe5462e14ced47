import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { describeHolder, holderAlive, processStartTime, readLock, tryAcquireLock } from '../../src-main/core/state/lock.js';
import { tempDir } from '../support/agent.js';

const lockIn = () => path.join(tempDir('lock'), 'pass.lock');

/** A pid that certainly belonged to a process that has exited. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  return Number(r.stdout);
}

test('the lock is exclusive while held, names its holder, and is free again after release', () => {
  const file = lockIn();
  const a = tryAcquireLock(file, 'daily pass');
  assert.ok(a.ok);
  const b = tryAcquireLock(file, 'manual pass');
  assert.ok(!b.ok);
  assert.equal(b.holder?.pid, process.pid);
  assert.equal(b.holder?.purpose, 'daily pass');
  assert.match(describeHolder(b.holder), new RegExp(`pid ${process.pid}, since .*: daily pass`));
  assert.equal(fs.statSync(file).mode & 0o777, 0o600, 'owner-only');
  a.lock.release();
  assert.ok(!fs.existsSync(file));
  const c = tryAcquireLock(file, 'again');
  assert.ok(c.ok);
  c.lock.release();
  assert.deepEqual(fs.readdirSync(path.dirname(file)), [], 'no temporary files left behind');
});

test('a lock whose holder is gone is broken at once, without waiting for a lease', () => {
  const file = lockIn();
  fs.writeFileSync(file, JSON.stringify({ pid: deadPid(), host: os.hostname(), since: new Date().toISOString(), purpose: 'killed pass', nonce: 'dead' }));
  const r = tryAcquireLock(file, 'next pass');
  assert.ok(r.ok, 'a dead holder does not block');
  assert.equal(readLock(file)?.info?.purpose, 'next pass');
  r.lock.release();
});

test('a reused pid (same pid, another start time) is not mistaken for the holder', { skip: process.platform !== 'linux' && 'skipped: process start times are read from /proc (Linux)' }, () => {
  const file = lockIn();
  const real = processStartTime(process.pid);
  assert.ok(real, 'start time of this process');
  fs.writeFileSync(file, JSON.stringify({ pid: process.pid, startTime: String(Number(real) - 1), host: os.hostname(), since: new Date().toISOString(), purpose: 'old', nonce: 'old' }));
  const r = tryAcquireLock(file, 'new');
  assert.ok(r.ok);
  r.lock.release();
});

test('a holder on another host (a shared home) is presumed alive until it is two hours old', () => {
  const info = { pid: 1, host: 'some-other-host', since: '', purpose: 'x', nonce: 'n' };
  assert.equal(holderAlive(info, 60_000), true);
  assert.equal(holderAlive(info, 3 * 3600_000), false);
});

test('an unreadable lock file blocks only while it is fresh', () => {
  const file = lockIn();
  fs.writeFileSync(file, 'garbage');
  assert.ok(!tryAcquireLock(file, 'x').ok, 'fresh: another process may be writing it');
  const old = new Date(Date.now() - 60_000);
  fs.utimesSync(file, old, old);
  const r = tryAcquireLock(file, 'x');
  assert.ok(r.ok, 'old and unreadable: stale');
  r.lock.release();
});

test('release never removes a lock that another process has taken over', () => {
  const file = lockIn();
  const a = tryAcquireLock(file, 'a');
  assert.ok(a.ok);
  fs.rmSync(file);
  fs.writeFileSync(file, JSON.stringify({ pid: process.pid, host: os.hostname(), since: '', purpose: 'b', nonce: 'someone-else' }));
  a.lock.release();
  assert.equal(readLock(file)?.info?.nonce, 'someone-else');
});

test('a holder that was killed but never reaped (a zombie: its parent, or a container\'s init, never waited) is dead', { skip: process.platform !== 'linux' && 'skipped: process states are read from /proc (Linux)' }, async () => {
  // `sleep 0` exits at once; its parent then becomes `sleep 5` (exec), which never waits for children.
  const { spawn } = await import('node:child_process');
  const parent = spawn('sh', ['-c', 'sleep 0 & echo $!; exec sleep 5'], { stdio: ['ignore', 'pipe', 'ignore'] });
  const zombie = await new Promise<number>((resolve) => parent.stdout!.once('data', (d) => resolve(Number(String(d).trim()))));
  try {
    for (let i = 0; i < 50 && !/\) Z/.test(fs.readFileSync(`/proc/${zombie}/stat`, 'utf8')); i++) await new Promise((r) => setTimeout(r, 20));
    assert.match(fs.readFileSync(`/proc/${zombie}/stat`, 'utf8'), /\) Z /, 'the child is a zombie');
    const file = lockIn();
    fs.writeFileSync(file, JSON.stringify({ pid: zombie, host: os.hostname(), since: '', purpose: 'killed', nonce: 'z' }));
    const r = tryAcquireLock(file, 'next');
    assert.ok(r.ok);
    r.lock.release();
  } finally {
    parent.kill('SIGKILL');
  }
});
