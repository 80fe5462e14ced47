/**
 * `daemon --once` (what the Linux fallback timer starts for the user task) signs its posture report with the
 * device key where it lives — here the NSS software token, the default on Linux with pkcs11js, no key file of
 * ours — and the lab org receives and verifies it. Real CLI, real TLS, real NSS.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { startLabOrg, type LabOrg } from '../../lab/org.js';
import { makeProfile, runAgent, writeRootCa, type Profile } from '../support/agent.js';
import { eventsText, readState } from '../support/state.js';

let lab: LabOrg;
let profile: Profile;

before(async () => {
  lab = await startLabOrg({ allowLabSignIn: true });
  profile = makeProfile({ orgUrl: lab.orgUrl, rootCaFile: writeRootCa(lab.rootCaPem), extraEnv: { DTA_LAB_SIGN_IN: 'true', DTA_PLATFORM_LOG: 'off' } });
});
after(() => lab.close());

test('daemon --once sends a posture report signed by the device key in the NSS token', async () => {
  const r = await runAgent(['run'], profile.env);
  assert.equal(r.code, 0, r.stderr);
  const state = readState(profile) as { current: { thumbprint: string; serialNumber: string } };
  const creds = path.join(profile.stateDir, 'credentials', state.current.thumbprint);
  // The key is in the token: only a reference to it is ours, never a key file.
  assert.ok(fs.existsSync(path.join(creds, 'key-ref.json')), 'key-ref.json names the token key');
  assert.ok(!fs.existsSync(path.join(creds, 'key.pem')), 'no key file of ours');
  assert.equal(lab.posture.all().length, 0);

  const once = await runAgent(['daemon', '--once'], profile.env);
  assert.ok([0, 10].includes(once.code ?? -1), `exit ${once.code}\n${once.stdout}\n${once.stderr}`);
  assert.match(once.stdout, /posture \(timer\): .*; report sent/, once.stdout);
  const reports = lab.posture.all();
  assert.equal(reports.length, 1, 'the org received one verified report');
  assert.equal(reports[0]!.serialNumber.toLowerCase().replace(/^0+/, ''), state.current.serialNumber.toLowerCase().replace(/^0+/, ''), 'signed for the current certificate');
  const events = eventsText(profile);
  assert.match(events, /The org received the posture report/);
});
