/**
 * The two renewal windows against Debian's real scepserver (micromdm), with -allowrenew and -crtvalid set both
 * ways, and the agent's clock moved by libfaketime:
 * - the CA's window shorter than the agent's (-allowrenew 5, scepRenewalWindowDays 14): the refused RenewalReq is
 *   a named, non-stuck state naming both windows, with a next pass planned — no PKCSReq that would blame the
 *   challenge — and the renewal succeeds once the CA's window is open;
 * - the CA's certificates shorter-lived than the agent's window (-crtvalid 10): a warning, the window clamped,
 *   and one renewal at its time instead of one per run.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { makeProfile, type Profile, runAgent } from '../support/agent.js';
import { faketimeEnv, faketimeUnavailable } from '../support/faketime.js';
import { nssUserCerts } from '../support/nss.js';
import { scepUnavailable, startScepServer, type ScepServer } from '../support/scep.js';
import { readEvents, readState } from '../support/state.js';

const skip = scepUnavailable() ?? faketimeUnavailable();
if (skip) console.log(`# scep-windows ${skip}`);
const CHALLENGE = 'window-test-challenge';
const DAY = 86_400_000;

const count = (log: string, type: string) => (log.match(new RegExp(`scep_message_type="${type}`, 'g')) ?? []).length;

function scepProfile(server: ScepServer): Profile {
  return makeProfile({
    orgUrl: 'https://unused.invalid', rootCaFile: '/dev/null',
    extraEnv: { DTA_BACKEND: 'scep', DTA_SCEP_URL: server.url, DTA_SCEP_CA_FINGERPRINT: server.caFingerprint, DTA_SCEP_CHALLENGE: CHALLENGE },
  });
}

describe('SCEP: the CA\'s renewal window (-allowrenew 5) opens after the agent\'s (14 days)', { skip }, () => {
  let server: ScepServer;
  before(async () => {
    server = await startScepServer({ challenge: CHALLENGE, validityDays: 40, allowRenewDays: 5 });
  });
  after(() => server?.close());

  test('the refusal is RENEWAL_REFUSED naming both windows, with a next pass; no PKCSReq; renewed once the CA\'s window opens', async () => {
    const p = scepProfile(server);
    assert.equal((await runAgent(['run'], p.env)).code, 0);
    const serial = readState(p).current.serialNumber;
    const pkcsBefore = count(server.log(), 'PKCSReq');

    // Day 30 of 40: inside the agent's window (from day 26), outside the CA's (from day 35).
    const day30 = faketimeEnv('+30d');
    const r = await runAgent(['run'], { ...p.env, ...day30 });
    assert.equal(r.code, 20, r.stdout + r.stderr);
    assert.match(r.stderr, new RegExp(`refused to renew certificate ${serial}`));
    assert.match(r.stderr, /scepRenewalWindowDays = 14/);
    assert.match(r.stderr, /-allowrenew/);
    assert.doesNotMatch(r.stderr, /scepChallenge|challenge password/i, 'the challenge is not blamed');
    assert.equal(count(server.log(), 'RenewalReq'), 1);
    assert.equal(count(server.log(), 'PKCSReq'), pkcsBefore, 'no PKCSReq after the refused RenewalReq');
    assert.match(server.log(), /already exists/, 'the CA refused for the reason under test');

    const sched = await runAgent(['schedule', '--json'], { ...p.env, ...day30 });
    const v = JSON.parse(sched.stdout);
    assert.equal(v.state, 'RENEWAL_REFUSED');
    assert.equal(v.stuck, false);
    assert.match(v.action, /-allowrenew/);
    assert.ok(v.nextAttempt, 'a next pass is planned');
    assert.ok(v.upcoming.length > 0, 'never "upcoming: (none)" with a valid certificate');
    const fakeNow = Date.now() + 30 * DAY;
    const wait = Date.parse(v.nextAttempt.at) - fakeNow;
    assert.ok(wait >= 3_600_000 * 0.9 && wait <= 1.3 * DAY, `retry in ${(wait / 3_600_000).toFixed(1)} h: about daily, not in a minute`);
    const text = await runAgent(['schedule'], { ...p.env, ...day30 });
    assert.doesNotMatch(text.stdout, /\(none\)/);
    assert.match(text.stdout, /RENEWAL_REFUSED/);

    // The CA administrator follows the remedy: -allowrenew 60 (scepserver's clock is not shifted, so its window is
    // opened by its setting rather than by time). The next scheduled pass past the certificate's renewal moment
    // (drawn in the first two thirds of the agent's window, so by day 35) renews.
    await server.close();
    server = await startScepServer({ depot: server.depot, challenge: CHALLENGE, validityDays: 40, allowRenewDays: 60 });
    const day35 = await runAgent(['daemon', '--once', '--trigger', 'timer'], { ...p.env, DTA_SCEP_URL: server.url, ...faketimeEnv('+35d') });
    // (The new certificate starts at scepserver's real time, so to this device's shifted clock it is already due again:
    // the state after the pass is not what a device with one clock would see, so only the renewal is asserted.)
    assert.match(day35.stdout, /(retry|renewal) pass: renewed/, day35.stdout + day35.stderr);
    const now = readState(p).current;
    assert.notEqual(now.serialNumber, serial);
    assert.deepEqual(nssUserCerts(p.nssDb).map((c) => c.serial), [now.serialNumber]);
  });
});

describe('SCEP: the CA\'s certificates (-crtvalid 10) are shorter-lived than the agent\'s window (14 days)', { skip }, () => {
  let server: ScepServer;
  before(async () => {
    server = await startScepServer({ challenge: CHALLENGE, validityDays: 10, allowRenewDays: 14 });
  });
  after(() => server?.close());

  test('a warning, the window clamped to a third of the lifetime, and manual runs do not renew again and again', async () => {
    const p = scepProfile(server);
    const first = await runAgent(['run'], p.env);
    assert.equal(first.code, 0, first.stdout + first.stderr);
    assert.ok(readEvents(p).some((e) => e.id === 1109 && /clamped/.test(e.message)), 'event 1109: the window was clamped');
    const serial = readState(p).current.serialNumber;
    const renewFrom = Date.parse(readState(p).current.renewFrom);
    const notAfter = Date.parse(readState(p).current.notAfter);
    assert.ok(Math.abs(notAfter - renewFrom - (10 * DAY) / 3) < DAY / 24, 'renewal from two thirds of the lifetime');
    for (let i = 0; i < 2; i++) {
      const again = await runAgent(['run'], p.env);
      assert.equal(again.code, 10, again.stdout + again.stderr);
    }
    assert.equal(readState(p).current.serialNumber, serial, 'not renewed on every run');
    // Seven days on (past two thirds of ten): one renewal, then nothing to do.
    const day7 = faketimeEnv('+7d');
    const renewed = await runAgent(['run'], { ...p.env, ...day7 });
    assert.equal(renewed.code, 0, renewed.stdout + renewed.stderr);
    assert.match(renewed.stdout, /renewed/);
    // (scepserver's clock is not shifted: the new certificate starts now, so the next run is at the real time.)
    assert.equal((await runAgent(['run'], p.env)).code, 10, 'renewed once, not again');
    assert.equal(count(server.log(), 'RenewalReq'), 1);
  });
});
