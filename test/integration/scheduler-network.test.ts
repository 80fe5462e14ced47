/**
 * The network watcher against the real kernel: in a private network namespace (root), a real
 * `ip monitor` sees a default route appear, and the watcher reports it once, after the debounce.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';
import { REPO } from '../support/agent.js';

const canUnshare = spawnSync('unshare', ['-n', 'true']).status === 0 && spawnSync('sh', ['-c', 'command -v ip']).status === 0;

for (const source of ['ip-monitor', 'poll'] as const) {
  test(`a default route appearing in a network namespace is reported once, debounced (${source})`, (t) => {
    if (!canUnshare) {
      console.log('skipped: needs root for `unshare -n` and iproute2 (ip) to make a private network namespace');
      return t.skip('skipped: cannot create a network namespace here');
    }
    const script = `
      import { execFileSync } from 'node:child_process';
      import { NetworkWatcher } from ${JSON.stringify(path.join(REPO, 'dist/src-main/core/scheduler/network.js'))};
      import { systemClock } from ${JSON.stringify(path.join(REPO, 'dist/src-main/core/scheduler/clock.js'))};
      const changes = [];
      const w = new NetworkWatcher({ clock: systemClock, debounceMs: 700, pollMs: 200, source: ${JSON.stringify(source)}, onChange: (s) => changes.push({ at: Date.now(), s }) });
      w.start();
      const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
      await sleep(300);
      execFileSync('ip', ['link', 'set', 'lo', 'up']);          // no default route yet: not a change that matters
      await sleep(2000);
      const quiet = changes.length;
      const t0 = Date.now();
      execFileSync('ip', ['addr', 'add', '10.20.30.40/32', 'dev', 'lo']);
      execFileSync('ip', ['route', 'add', 'default', 'dev', 'lo']);
      await sleep(3000);
      w.stop();
      console.log(JSON.stringify({ mode: ${JSON.stringify(source)}, quiet, changes: changes.map((c) => ({ after: c.at - t0, s: c.s })) }));
      process.exit(0);`;
    const r = spawnSync('unshare', ['-n', process.execPath, '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout.trim().split('\n').at(-1)!);
    assert.equal(out.quiet, 0, 'bringing lo up is not reported');
    assert.equal(out.changes.length, 1, JSON.stringify(out));
    assert.ok(out.changes[0].s.includes('default4 lo via 0.0.0.0'), JSON.stringify(out.changes[0].s));
    assert.ok(out.changes[0].after >= 700, `reported ${out.changes[0].after} ms after the change (debounce 700 ms)`);
  });
}
