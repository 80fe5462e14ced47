/**
 * Crash safety of a pass: the real command line, enrolling against the lab org, is SIGKILLed at each step
 * (stopped there by the DTA_TEST_PAUSE_AT test hook, then killed — no chance to clean up, the pass lock
 * still held). The next run must converge to exactly one valid certificate, with the state file, the
 * agent's key files and the NSS database in agreement, and the org trusting it over mTLS.
 */
import { filesWithPrivateKeys, nssPrivateKeyFacts } from '../support/keyscan.js';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { type Profile, runAgent } from '../support/agent.js';
import { labOrgForSuite } from '../support/lab-org.js';
import { nssUserCerts } from '../support/nss.js';
import { startPaused } from '../support/pause.js';
import { readState } from '../support/state.js';

/** Every step of an enrollment, in order (the trace's step names), and the line after the state is written. */
const ENROLL_POINTS = [
  'after:Read the certificate store',
  'after:Discover the org',
  'after:Generate the device key',
  'after:Get a device token',
  'after:Get a user token',
  'after:Create the certificate signing request',
  'after:Ask the org to issue the certificate',
  'after:Check the issued certificate',
  'after:Install into the',
  'log:Browser policy',
];

/** A replacement (--forceRenewal) adds the moment with no certificate in the store at all. */
const REPLACE_POINTS = [
  'after:Ask the org to issue the certificate',
  'after:Remove the previous certificate',
  'after:Install into the',
  'log:Browser policy',
];

describe('SIGKILL at each step of an enrollment: the next run converges', () => {
  const org = labOrgForSuite();
  const profile = () => org.profile();

  async function assertConverged(p: Profile, context: string): Promise<string> {
    const certs = nssUserCerts(p.nssDb).filter((c) => /MTLS Certificate Authority/.test(c.issuer));
    assert.equal(certs.length, 1, `${context}: exactly one device-trust certificate in the store`);
    const state = readState(p);
    assert.equal(state.current.serialNumber, certs[0]!.serial, `${context}: the state names the certificate in the store`);
    assert.match(state.current.storeId, /^nss:[0-9a-f]{40}$/, `${context}: the store id names the key in the NSS token`);
    const creds = fs.readdirSync(path.join(p.stateDir, 'credentials'));
    assert.deepEqual(creds, [state.current.thumbprint], `${context}: one key directory, the current certificate's`);
    assert.ok(fs.existsSync(path.join(p.stateDir, 'credentials', state.current.thumbprint, 'key-ref.json')), `${context}: the key reference is kept`);
    assert.equal(nssPrivateKeyFacts(p.nssDb).length, 1, `${context}: one key in the token (a key made by a killed pass is gone)`);
    assert.deepEqual(filesWithPrivateKeys([p.home, p.stateDir]), [], `${context}: no private key material in any file`);
    assert.ok(!fs.existsSync(path.join(p.stateDir, 'pass.lock')), `${context}: the lock was released`);
    const status = await runAgent(['status', '--check', '--json'], p.env);
    const s = JSON.parse(status.stdout);
    assert.equal(s.state, 'ENROLLED', `${context}: ${status.stdout}`);
    assert.equal(s.checks.revocation.ok, true, `${context}: the org knows the certificate and has not revoked it`);
    assert.equal(s.keyProtection.protection, 'software', `${context}: the key is in the NSS software token`);
    assert.equal(s.schedule.state, 'ENROLLED');
    return state.current.serialNumber;
  }

  for (const point of ENROLL_POINTS) {
    test(`first enrollment killed at ${point}`, async () => {
      const p = profile();
      const paused = await startPaused(['run'], p.env, point);
      assert.ok(fs.existsSync(path.join(p.stateDir, 'pass.lock')), 'the killed pass holds the lock');
      await paused.kill();
      const next = await runAgent(['run'], p.env);
      assert.ok(next.code === 0 || next.code === 10, `exit ${next.code}: ${next.stderr}${next.stdout}`);
      await assertConverged(p, point);
      assert.equal((await runAgent(['run'], p.env)).code, 10, 'and stays converged');
    });
  }

  for (const point of REPLACE_POINTS) {
    test(`replacement (--forceRenewal) killed at ${point}`, async () => {
      const p = profile();
      assert.equal((await runAgent(['run'], p.env)).code, 0);
      const paused = await startPaused(['run', '--forceRenewal'], p.env, point);
      await paused.kill();
      const next = await runAgent(['run'], p.env);
      assert.ok(next.code === 0 || next.code === 10, `exit ${next.code}: ${next.stderr}${next.stdout}`);
      await assertConverged(p, point);
    });
  }
});
