/**
 * The long-running daemon runs each pass and posture run in a short-lived child process (issue 27: an idle
 * daemon under 60 MiB): after its logon pass (which enrolls into the NSS token) and its first posture run, the
 * daemon process itself has never mapped PKCS#11, NSS or Kerberos, yet the pass was done and recorded as ever.
 * Real CLI, real lab org over TLS, real NSS; Linux (/proc).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, test } from 'node:test';
import { startLabOrg, type LabOrg } from '../../lab/org.js';
import { makeProfile, spawnAgent, writeRootCa, type Profile } from '../support/agent.js';
import { nssUserCerts } from '../support/nss.js';
import { readState } from '../support/state.js';
import { waitFor } from '../support/wait.js';

let lab: LabOrg;
let profile: Profile;

before(async () => {
  lab = await startLabOrg({ allowLabSignIn: true });
  profile = makeProfile({ orgUrl: lab.orgUrl, rootCaFile: writeRootCa(lab.rootCaPem), extraEnv: { DTA_LAB_SIGN_IN: 'true', DTA_PLATFORM_LOG: 'off' } });
});
after(() => lab.close());

/** What only a pass loads: the PKCS#11 add-on, NSS's software token, the Kerberos add-on. */
const PASS_LIBRARIES = /pkcs11\.node|libsoftokn3|libnss3|libnssutil3|kerberos\.node/;

test('the idle daemon ran its logon pass and first posture run in children and never loaded PKCS#11 or NSS itself', { skip: !fs.existsSync('/proc/self/maps') && 'reads /proc (Linux only)' }, async (t) => {
  const child = spawnAgent(['daemon', '--debug', '--no-network-watch'], profile.env);
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  try {
    await waitFor('the logon pass', () => /logon pass: enrolled — ENROLLED/.test(out) || undefined, 60_000, 100);
    const passPid = Number(/attempt:logon: child process (\d+)/.exec(out)?.[1]);
    assert.ok(passPid > 0 && passPid !== child.pid, `the pass ran in a child process:\n${out}`);
    // The pass did its work in the token and state.json, as an in-process pass does.
    const state = readState(profile) as { current: { serialNumber: string }; schedule: { state: string; lastPass: { trigger: string } } };
    assert.equal(state.schedule.state, 'ENROLLED');
    assert.equal(state.schedule.lastPass.trigger, 'logon', 'the trigger is recorded');
    assert.deepEqual(nssUserCerts(profile.nssDb).map((c) => c.serial), [state.current.serialNumber], 'enrolled into the NSS token');
    // The first posture run comes a minute after start (daemon.ts POSTURE_START_DELAY_MS).
    await waitFor('the first posture run', () => /posture \(start\): \d+ pass/.test(out) || undefined, 120_000, 200);
    assert.match(out, /posture:start: child process \d+/);
    await new Promise((r) => setTimeout(r, 500));
    const maps = fs.readFileSync(`/proc/${child.pid}/maps`, 'utf8');
    const loaded = [...new Set(maps.split('\n').filter((l) => PASS_LIBRARIES.test(l)).map((l) => l.split(/\s+/).pop()))];
    assert.deepEqual(loaded, [], 'the daemon process mapped none of what a pass loads');
    const rss = Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${child.pid}/status`, 'utf8'))?.[1]) / 1024;
    t.diagnostic(`idle daemon RSS (source checkout): ${rss.toFixed(1)} MiB`);
    assert.ok(!fs.existsSync(`/proc/${passPid}`) || /\(.*\) Z/.test(fs.readFileSync(`/proc/${passPid}/stat`, 'utf8')), 'the pass process is gone');
    child.kill('SIGTERM');
    assert.equal(await exited, 0);
    assert.match(out, /user daemon stopped \(SIGTERM\)/);
  } finally {
    child.kill('SIGKILL');
  }
});
