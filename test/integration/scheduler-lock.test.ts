/**
 * The pass lock across real processes: many processes hammering it never overlap; two agents started at
 * once do one pass between them; a pass SIGKILLed while holding the lock does not block the next.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { REPO, runAgent, tempDir } from '../support/agent.js';
import { labOrgForSuite } from '../support/lab-org.js';
import { nssUserCerts } from '../support/nss.js';
import { startPaused } from '../support/pause.js';

test('eight processes taking the lock 25 times each never hold it at the same time', async () => {
  const dir = tempDir('lockrace');
  const log = path.join(dir, 'log');
  const script = `
    import fs from 'node:fs';
    import { tryAcquireLock } from ${JSON.stringify(path.join(REPO, 'dist/src-main/core/state/lock.js'))};
    let n = 0;
    while (n < 25) {
      const r = tryAcquireLock(${JSON.stringify(path.join(dir, 'pass.lock'))}, 'race');
      if (!r.ok) { Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1); continue; }
      fs.appendFileSync(${JSON.stringify(log)}, 'in ' + process.pid + '\\n');
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 2);
      fs.appendFileSync(${JSON.stringify(log)}, 'out ' + process.pid + '\\n');
      r.lock.release();
      n++;
    }`;
  await Promise.all(Array.from({ length: 8 }, () => new Promise<void>((resolve, reject) => {
    const c = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: 'inherit' });
    c.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`exit ${code}`))));
  })));
  const lines = fs.readFileSync(log, 'utf8').trim().split('\n');
  assert.equal(lines.length, 8 * 25 * 2);
  for (let i = 0; i < lines.length; i += 2) {
    const [a, pa] = lines[i]!.split(' ');
    const [b, pb] = lines[i + 1]!.split(' ');
    assert.equal(a, 'in');
    assert.equal(b, 'out', `line ${i + 1}: another process entered while ${pa} held the lock`);
    assert.equal(pa, pb);
  }
});

describe('two agents at once, and a killed holder', () => {
  const org = labOrgForSuite();
  const profile = () => org.profile();

  test('two runs started at the same moment: exactly one enrolls, the other does not race it', async () => {
    const p = profile();
    const issuedBefore = org.lab.issued().length;
    const [a, b] = await Promise.all([runAgent(['run'], p.env), runAgent(['run'], p.env)]);
    const codes = [a.code, b.code].sort();
    // The loser either found the lock held (20, "another pass is running") or ran after the winner (10).
    assert.equal(codes[0], 0, `${a.stderr}${b.stderr}`);
    assert.ok(codes[1] === 20 || codes[1] === 10, `second exit ${codes[1]}`);
    const loser = a.code === 0 ? b : a;
    if (loser.code === 20) assert.match(loser.stderr, /Another pass is running \(pid \d+/);
    assert.equal(org.lab.issued().length - issuedBefore, 1, 'the org issued one certificate');
    assert.equal(nssUserCerts(p.nssDb).length, 1);
  });

  test('while a pass holds the lock a second one is refused with "retry later"; after SIGKILL the next one runs', async () => {
    const p = profile();
    const paused = await startPaused(['run'], p.env, 'after:Discover the org');
    const second = await runAgent(['run', '--json'], p.env);
    assert.equal(second.code, 20);
    const err = JSON.parse(second.stdout).error;
    assert.equal(err.code, 'PASS_RUNNING');
    assert.match(err.message, new RegExp(`pid ${paused.child.pid}`));
    await paused.kill();
    const third = await runAgent(['run'], p.env);
    assert.equal(third.code, 0, third.stderr);
    assert.match(third.stdout, /Certificate enrolled/);
  });
});
