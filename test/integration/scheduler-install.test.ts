/**
 * `install` / `uninstall` on Linux under a test HOME, with the real command line: the systemd user units
 * validate with systemd-analyze and are enabled; XDG autostart (no systemd) starts the daemon after the
 * install-time pass; uninstall stops it and leaves nothing of ours behind (with --purge: not even the
 * certificate and the state).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { makeProfile, runAgent, tempDir } from '../support/agent.js';
import { hasCommand } from '../support/host.js';
import { labOrgForSuite } from '../support/lab-org.js';
import { nssUserCerts } from '../support/nss.js';

/** Every file or link under `dir` whose path mentions the agent. */
function ours(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (/device-trust/.test(e.name)) out.push(path.relative(dir, p));
      if (e.isDirectory() && !e.isSymbolicLink()) walk(p);
    }
  };
  walk(dir);
  return out.sort();
}

/** Running, and not a zombie (the daemon's parent, `install`, has exited; this container's init may not reap). */
const alive = (pid: number) => {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^[ZX]$/.test(stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3));
  } catch {
    return false;
  }
};

describe('install and uninstall on Linux', () => {
  const org = labOrgForSuite();

  test('systemd user units: written, valid, enabled for login; uninstall removes them and the links', async (t) => {
    const p = org.profile();
    const r = await runAgent(['install', '--mode', 'systemd', '--no-run', '--json'], p.env);
    assert.equal(r.code, 0, r.stderr);
    const res = JSON.parse(r.stdout);
    assert.equal(res.mode, 'systemd');
    const unitDir = path.join(p.home, '.config', 'systemd', 'user');
    assert.deepEqual(ours(p.home), [
      '.config/systemd/user/default.target.wants/device-trust-agent-p11-kit.service',
      '.config/systemd/user/default.target.wants/device-trust-agent.service',
      '.config/systemd/user/device-trust-agent-check.service',
      '.config/systemd/user/device-trust-agent-check.timer',
      '.config/systemd/user/device-trust-agent-p11-kit.service',
      '.config/systemd/user/device-trust-agent.service',
      '.config/systemd/user/timers.target.wants/device-trust-agent-check.timer',
    ]);
    assert.equal(fs.readlinkSync(path.join(unitDir, 'default.target.wants', 'device-trust-agent.service')), path.join(unitDir, 'device-trust-agent.service'));
    // The units repeat the command line's settings (here from the environment, so none) and start this agent.
    assert.match(fs.readFileSync(path.join(unitDir, 'device-trust-agent.service'), 'utf8'), /^ExecStart=\S+node \S+\/bin\/device-trust-agent\.js daemon --trigger logon$/m);
    if (hasCommand('systemd-analyze')) {
      const runtime = tempDir('rt');
      const v = spawnSync('systemd-analyze', ['--user', 'verify', ...['device-trust-agent.service', 'device-trust-agent-check.service', 'device-trust-agent-check.timer', 'device-trust-agent-p11-kit.service'].map((n) => path.join(unitDir, n))],
        { encoding: 'utf8', env: { ...process.env, HOME: p.home, XDG_RUNTIME_DIR: runtime } });
      assert.equal(v.status, 0, v.stderr);
    } else {
      console.log('skipped: systemd-analyze is not installed (apt install systemd); the files were checked above');
      t.diagnostic('systemd-analyze missing');
    }
    const u = await runAgent(['uninstall'], p.env);
    assert.equal(u.code, 0, u.stderr + u.stdout);
    assert.deepEqual(ours(p.home), [], 'nothing of ours is left');
    assert.ok(!fs.existsSync(path.join(p.home, '.config', 'systemd')), 'directories we created and left empty are gone');
  });

  test('XDG autostart (no systemd): install-time pass, the daemon started; uninstall --purge stops it and removes everything', async (t) => {
    const p = org.profile();
    const r = await runAgent(['install', '--mode', 'autostart', '--json'], p.env);
    assert.equal(r.code, 0, r.stderr);
    const res = JSON.parse(r.stdout);
    assert.equal(res.pass.trigger, 'install');
    assert.equal(res.pass.outcome, 'enrolled');
    assert.equal(res.pass.state, 'ENROLLED');
    const pid: number = res.daemonPid;
    assert.ok(alive(pid), 'the daemon runs');
    const desktop = path.join(p.home, '.config', 'autostart', 'device-trust-agent.desktop');
    assert.match(fs.readFileSync(desktop, 'utf8'), /^Exec=\S+node \S+\/bin\/device-trust-agent\.js daemon --trigger logon$/m);
    if (hasCommand('desktop-file-validate')) {
      const v = spawnSync('desktop-file-validate', [desktop], { encoding: 'utf8' });
      assert.equal(v.status, 0, v.stdout + v.stderr);
    } else {
      console.log('skipped: desktop-file-validate is not installed (apt install desktop-file-utils)');
      t.diagnostic('desktop-file-validate missing');
    }
    // The daemon took over: it holds its lock, and skipped its own logon pass (the install pass just ran).
    const sched = JSON.parse((await runAgent(['schedule', '--json'], p.env)).stdout);
    for (let i = 0; i < 100 && !sched.daemon; i++) {
      await new Promise((res2) => setTimeout(res2, 100));
      Object.assign(sched, JSON.parse((await runAgent(['schedule', '--json'], p.env)).stdout));
    }
    assert.equal(sched.daemon?.pid, pid);
    assert.equal(sched.lastPass.trigger, 'install');
    assert.equal(nssUserCerts(p.nssDb).length, 1);

    const u = await runAgent(['uninstall', '--purge'], p.env);
    assert.equal(u.code, 0, u.stderr + u.stdout);
    assert.match(u.stdout, new RegExp(`stop the daemon: pid ${pid} stopped`));
    assert.ok(!alive(pid), 'the daemon is gone');
    assert.equal(nssUserCerts(p.nssDb).length, 0, 'the certificate is removed');
    assert.deepEqual(ours(p.home), [], 'no unit, entry, state, key or policy file of ours is left');
  });

  test('the device task (root): what install --device would write and run', async () => {
    const p = makeProfile({ orgUrl: org.lab.orgUrl, rootCaFile: org.rootCaFile });
    const r = await runAgent(['install', '--device', '--dry-run', '--json'], p.env);
    assert.equal(r.code, 0, r.stderr);
    const plan = JSON.parse(r.stdout);
    assert.deepEqual(plan.files.map((f: { path: string }) => f.path), ['/etc/systemd/system/device-trust-agent-device.service', '/etc/systemd/system/device-trust-agent-device.timer']);
    assert.match(plan.files[0].content, /daemon --device --state-dir \/var\/lib\/device-trust-agent/);
    assert.deepEqual(plan.commands.map((c: { args: string[] }) => c.args.join(' ')), ['daemon-reload', 'enable device-trust-agent-device.service device-trust-agent-device.timer', 'restart device-trust-agent-device.service', 'start device-trust-agent-device.timer']);
  });
});
