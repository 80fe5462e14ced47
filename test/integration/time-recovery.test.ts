/**
 * Time and crashes, as a user meets them: the real CLI and daemon under libfaketime against the lab org, and
 * SIGKILL while each child process of the store import runs (openssl, pk12util, certutil).
 * - A renewal refused because this device's clock is 340 days ahead is a named clock finding with the measured
 *   offset — never a silent IWA re-enrollment — and when the clock comes back the daemon's logon pass runs
 *   (no "a pass ran -29375588 s ago"), reports the anomaly with both times, and the next pass is near.
 * - A forced renewal killed at any child is completed by the next plain run; the certificate installed by a run
 *   killed before it recorded event 1000 gets it on reconciliation; no key material is left in temporary files.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startLabOrg, type LabOrg } from '../../lab/org.js';
import { startLabNtp, type LabNtp } from '../../lab/ntp.js';
import { makeProfile, type Profile, runAgent, tempDir, writeRootCa } from '../support/agent.js';
import { faketimeEnv, faketimeUnavailable } from '../support/faketime.js';
import { filesWithPrivateKeys } from '../support/keyscan.js';
import { startPaused } from '../support/pause.js';
import { nssUserCerts } from '../support/nss.js';
import { readEvents, readState } from '../support/state.js';

const skip = faketimeUnavailable();
if (skip) console.log(`# time-recovery ${skip}`);
const DAY = 86_400_000;


/** Every file under `dir` that holds private key material (PEM or DER key, or a PKCS#12 bundle). */
const keyMaterial = (dir: string): string[] => filesWithPrivateKeys([dir]);


describe('time anomalies and crashes: the real CLI and daemon, the lab org, libfaketime', { skip }, () => {
  let lab: LabOrg;
  let dc: LabNtp;
  let rootCaFile: string;
  // The lab DC's time service keeps real time (libfaketime only moves the agent's clock).
  const profile = () => makeProfile({ orgUrl: lab.orgUrl, rootCaFile, extraEnv: { DTA_LAB_SIGN_IN: 'true', DTA_DC_TIME_SOURCE: `127.0.0.1:${dc.port}` } });

  before(async () => {
    lab = await startLabOrg({ allowLabSignIn: true });
    dc = await startLabNtp();
    rootCaFile = writeRootCa(lab.rootCaPem);
  });
  after(async () => {
    await dc.close();
    await lab.close();
  });

  test('a clock 340 days ahead: the refused renewal names the clock (no IWA re-enrollment); back in real time the logon pass runs and the schedule is near', async () => {
    const p = profile();
    assert.equal((await runAgent(['run'], p.env)).code, 0);
    const serial = readState(p).current.serialNumber;

    const mark = lab.received.length;
    const ahead = await runAgent(['run'], { ...p.env, ...faketimeEnv('+340d') });
    assert.equal(ahead.code, 20, ahead.stdout + ahead.stderr);
    assert.match(ahead.stderr, /refused the request because of time/);
    assert.match(ahead.stderr, /clock \([^)]*\) is 340 days ahead of the org's \(its Date header\)/);
    assert.match(ahead.stderr, /340 days ahead of the domain controller's \(SNTP\)/, 'the DC offset measured during the pass');
    assert.match(ahead.stderr, /Fix this device's clock/);
    const sent = lab.received.slice(mark).map((q) => new URL(q.url).pathname);
    assert.ok(sent.includes('/api/v1/device-trust/renew'), sent.join(', '));
    assert.ok(!sent.some((s) => /device-token|user-token|enroll/.test(s)), `no fallback to IWA enrollment: ${sent.join(', ')}`);
    assert.equal(readState(p).current.serialNumber, serial, 'the certificate stays');
    assert.equal(readState(p).schedule.state, 'CLOCK_WRONG');
    assert.ok(readEvents(p).some((e) => e.id === 1303), 'event 1303: the clock finding');
    // A second run with the clock still ahead: the same finding, still no enrollment.
    const again = await runAgent(['run'], { ...p.env, ...faketimeEnv('+340d') });
    assert.equal(again.code, 20);
    assert.ok(!lab.received.slice(mark).some((q) => /device-token|user-token/.test(q.url)));

    // The clock is right again: the logon pass is not skipped, and the anomaly is reported with both times.
    const logon = await runAgent(['daemon', '--once', '--trigger', 'logon'], p.env);
    assert.doesNotMatch(logon.stdout, /skipped \(a pass ran -/);
    assert.match(logon.stdout, /clock pass: nothing-to-do — ENROLLED/, logon.stdout + logon.stderr);
    const anomaly = readEvents(p).find((e) => e.id === 1302);
    assert.ok(anomaly, 'event 1302: clock anomaly');
    assert.match(anomaly.message, /last pass recorded at \S+ \(340 days ahead\)/);
    const sched = JSON.parse((await runAgent(['schedule', '--json'], p.env)).stdout);
    assert.equal(sched.state, 'ENROLLED');
    assert.ok(Date.parse(sched.nextAttempt.at) - Date.now() <= 1.5 * DAY, `next pass ${sched.nextAttempt.at} is near, not ~340 days away`);
    // A timer pass a day later is not skipped for "next pass at …" 340 days away.
    const timer = await runAgent(['daemon', '--once', '--trigger', 'timer'], { ...p.env, ...faketimeEnv('+1d') });
    assert.match(timer.stdout, /daily pass: nothing-to-do/, timer.stdout);
    // The renewal line names the certificate by its serial, as every other line does.
    const schedule = await runAgent(['schedule'], p.env);
    assert.match(schedule.stdout, new RegExp(`renewal moment of certificate ${serial} \\(window`));
    assert.doesNotMatch(schedule.stdout, /certificate [0-9a-f]{16} \(window/);
  });

  // SIGKILL at each step of a forced renewal (the key is generated and the certificate attached inside the PKCS#11
  // token, in-process: no child process holds key material any more, so the points are the pass's own steps).
  const KILL_POINTS = [
    { at: 'after:Generate the device key', imported: false },
    { at: 'before:Install into', imported: false },
    { at: 'after:Install into', imported: true },
  ];
  for (const { at, imported } of KILL_POINTS) {
    test(`SIGKILL at ${at} during --forceRenewal: the next plain run completes it, records event 1000, and no key material is left in any file`, async () => {
      const p = profile();
      assert.equal((await runAgent(['run'], p.env)).code, 0);
      const before = readState(p).current.serialNumber;
      const paused = await startPaused(['run', '--forceRenewal'], p.env, at);
      await paused.kill();
      assert.ok(readState(p).forceRequested, 'the forced renewal was persisted before anything changed');

      const next = await runAgent(['run'], p.env);
      // Killed after the import, before the state was saved: the next run adopts that certificate (no second
      // renewal) and records its event 1000 on reconciliation; otherwise it completes the forced renewal.
      assert.equal(next.code, imported ? 10 : 0, next.stdout + next.stderr);
      const s = readState(p);
      assert.notEqual(s.current.serialNumber, before, 'the forced renewal was completed, not forgotten');
      assert.equal(s.forceRequested, undefined);
      assert.deepEqual(nssUserCerts(p.nssDb).map((c) => c.serial), [s.current.serialNumber], 'exactly one certificate');
      const ev = readEvents(p);
      assert.ok(ev.some((e) => e.id === 1000 && e.data?.serialNumber === s.current.serialNumber), 'event 1000 for the installed certificate');
      if (imported) assert.ok(ev.some((e) => e.id === 1000 && e.data?.reconciled === true), 'event 1000 recorded on reconciliation');
      assert.deepEqual(filesWithPrivateKeys([p.stateDir, p.home]), [], 'no private key material in any file of the profile');
      assert.equal((await runAgent(['run'], p.env)).code, 10, 'and then: nothing to do');
    });
  }

  test('remove-certificate removes the certificate and its key from the token, and temporary directories an older version left', async () => {
    const p = profile();
    assert.equal((await runAgent(['run'], p.env)).code, 0);
    // What an interrupted import of an older version (PKCS#12 in a temporary directory) left behind.
    const left = path.join(p.stateDir, 'tmp', 'p12-left');
    fs.mkdirSync(left, { recursive: true, mode: 0o700 });
    fs.writeFileSync(path.join(left, 'key.pem'), '-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n-----END PRIVATE KEY-----\n', { mode: 0o600 });
    fs.utimesSync(left, new Date(Date.now() - 3_600_000), new Date(Date.now() - 3_600_000));
    const r = await runAgent(['remove-certificate'], p.env);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /temporary director(y|ies) left by an interrupted run/);
    assert.deepEqual(keyMaterial(path.join(p.stateDir, 'tmp')), []);
    assert.deepEqual(nssUserCerts(p.nssDb), []);
  });
});
