/**
 * A SIGKILL at every step of enrollment and renewal, with the device key in the NSS software token (PKCS#11,
 * in-process) and a real SCEP CA (Debian's scepserver): afterwards no file under the profile (state, temp
 * directory, NSS database, config) holds private key material, the next run converges with exactly one key
 * and one certificate, a key left with no certificate and no reference is swept (event 1120), and
 * `remove-certificate` takes a pending request's key out of the token too. And SCEP with the RSA key in a TPM
 * 2.0 token (swtpm): the TPM signs the pkiMessage and decrypts the CA's answer.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { makeProfile, runAgent, type Profile } from '../support/agent.js';
import { filesWithPrivateKeys, nssPrivateKeyFacts, plantUnidentifiedKey } from '../support/keyscan.js';
import { faketimeEnv, faketimeUnavailable } from '../support/faketime.js';
import { nssUserCerts } from '../support/nss.js';
import { startPaused } from '../support/pause.js';
import { scepUnavailable, startScepServer, type ScepServer } from '../support/scep.js';
import { startSoftTpm, tpmUnavailable, type SoftTpm } from '../support/tpm.js';
import { readEvents, readState } from '../support/state.js';

const skipReason = scepUnavailable() ?? faketimeUnavailable();
if (skipReason) console.log(`# key-crash ${skipReason}`);

const CHALLENGE = 'crash-test-challenge';

/** Points of a pass where the process is killed: the trace's steps and the one gap inside key generation. */
const ENROLL_POINTS = [
  // Inside C_GenerateKeyPair's caller: the pair exists, its NSS-style CKA_ID is not set yet (platform/pkcs11.ts).
  'log:before its final CKA_ID',
  'log:made in the key store; recording it',
  'after:Generate the device key',
  'before:Send the enrollment request',
  'before:Check the issued certificate',
  'before:Install into the',
  'after:Install into the',
];
const RENEW_POINTS = [
  'log:before its final CKA_ID',
  'log:made in the key store; recording it',
  'after:Generate the device key',
  'before:Send the renewal request',
  'before:Check the issued certificate',
  'after:Install into the',
  'before:Remove the previous certificate',
];

describe('SIGKILL at every step with the key in the PKCS#11 token (scepserver)', { skip: skipReason }, () => {
  let server: ScepServer;

  const profile = () => makeProfile({
    orgUrl: 'https://unused.invalid', rootCaFile: '/dev/null',
    extraEnv: { DTA_BACKEND: 'scep', DTA_SCEP_URL: server.url, DTA_SCEP_CA_FINGERPRINT: server.caFingerprint, DTA_SCEP_CHALLENGE: CHALLENGE },
  });
  const credentialDirs = (p: Profile) => (fs.existsSync(path.join(p.stateDir, 'credentials')) ? fs.readdirSync(path.join(p.stateDir, 'credentials')) : []);
  const eventIds = (p: Profile) => readEvents(p).map((e) => e.id as number);

  /** The profile holds no key outside the token, and the token exactly one key, paired with the recorded certificate. */
  const assertConverged = (p: Profile, at: string) => {
    assert.deepEqual(filesWithPrivateKeys([p.home]), [], `key material in a file after the run that followed a kill at ${at}`);
    const keys = nssPrivateKeyFacts(p.nssDb);
    assert.equal(keys.length, 1, `exactly one key in the token after a kill at ${at}: ${JSON.stringify(keys)}`);
    assert.deepEqual([keys[0]!.sensitive, keys[0]!.extractable, keys[0]!.valueReadable], [true, false, false]);
    const certs = nssUserCerts(p.nssDb);
    assert.equal(certs.length, 1, `exactly one certificate after a kill at ${at}`);
    const state = readState(p);
    assert.equal(state.current.serialNumber, certs[0]!.serial);
    assert.deepEqual(credentialDirs(p), [state.current.thumbprint]);
    const ref = JSON.parse(fs.readFileSync(path.join(p.stateDir, 'credentials', state.current.thumbprint, 'key-ref.json'), 'utf8')).storeId;
    assert.equal(ref, keys[0]!.id, 'the recorded key is the one in the token');
  };

  before(async () => {
    // One-day certificates renewable from two days before expiry: a renewal inside the agent's window is accepted.
    server = await startScepServer({ challenge: CHALLENGE, validityDays: 1, allowRenewDays: 2 });
  });

  after(() => server?.close());

  for (const at of ENROLL_POINTS) {
    test(`enrollment killed at "${at}": no key in any file; the next run enrolls with exactly one key`, async () => {
      const p = profile();
      const paused = await startPaused(['run', '--user'], p.env, at);
      await paused.kill();
      assert.deepEqual(filesWithPrivateKeys([p.home]), [], `key material in a file right after the kill at ${at}`);
      const r = await runAgent(['run', '--user'], p.env);
      // 0: enrolled now; 10: the certificate the killed pass had already received was installed or adopted.
      assert.ok(r.code === 0 || r.code === 10, r.stderr + r.stdout);
      assertConverged(p, at);
      // A key made but never recorded is an orphan: swept, and the sweep is in the event log.
      if (at.startsWith('log:')) assert.ok(eventIds(p).includes(1120), 'ORPHAN_KEYS_REMOVED recorded');
    });
  }

  for (const at of RENEW_POINTS) {
    test(`renewal killed at "${at}": no key in any file; the next run converges with exactly one key`, async () => {
      const p = profile();
      const first = await runAgent(['run', '--user'], p.env);
      assert.equal(first.code, 0, first.stderr + first.stdout);
      // One-day certificates: the renewal window is clamped to 8 h, so 17 h on the certificate is due (RenewalReq).
      const later = { ...p.env, ...faketimeEnv('+17h') };
      const paused = await startPaused(['run', '--user'], later, at);
      await paused.kill();
      assert.deepEqual(filesWithPrivateKeys([p.home]), [], `key material in a file right after the kill at ${at}`);
      const r = await runAgent(['run', '--user'], later);
      assert.ok(r.code === 0 || r.code === 10, r.stderr + r.stdout);
      assertConverged(p, at);
    });
  }

  test('run --forceRenewal killed while the new key is being made, then again: no key is left without an id; one key after the next run', async () => {
    const p = profile();
    assert.equal((await runAgent(['run', '--user'], p.env)).code, 0);
    for (let i = 0; i < 2; i++) {
      const paused = await startPaused(['run', '--user', '--forceRenewal'], p.env, 'log:before its final CKA_ID');
      await paused.kill();
    }
    assert.ok(nssPrivateKeyFacts(p.nssDb).every((k) => k.id.length > 0), `a key without CKA_ID: ${JSON.stringify(nssPrivateKeyFacts(p.nssDb))}`);
    const r = await runAgent(['run', '--user'], p.env);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assertConverged(p, 'forceRenewal, twice');
  });

  test('a key without CKA_ID that an earlier version left (labelled as ours) is swept by its label', async () => {
    const p = profile();
    assert.equal((await runAgent(['run', '--user'], p.env)).code, 0);
    plantUnidentifiedKey(p.nssDb, 'device-trust-key 1700000000');
    assert.equal(nssPrivateKeyFacts(p.nssDb).filter((k) => k.id === '').length, 1, 'planted');
    const r = await runAgent(['run', '--user'], p.env);
    assert.equal(r.code, 10, r.stderr + r.stdout);
    assertConverged(p, 'an id-less key');
    assert.ok(eventIds(p).includes(1120), 'ORPHAN_KEYS_REMOVED recorded');
  });

  test('remove-certificate after a kill that left a recorded key without a certificate: the token is empty', async () => {
    const p = profile();
    const paused = await startPaused(['run', '--user'], p.env, 'before:Send the enrollment request');
    await paused.kill();
    assert.equal(nssPrivateKeyFacts(p.nssDb).length, 1, 'the killed pass left its key in the token');
    const r = await runAgent(['remove-certificate'], p.env);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.match(r.stdout, /Removed 1 device key without a certificate/);
    assert.equal(nssPrivateKeyFacts(p.nssDb).length, 0);
    assert.deepEqual(credentialDirs(p), []);
    assert.ok(eventIds(p).includes(1120));
    assert.deepEqual(filesWithPrivateKeys([p.home]), []);
  });
});

const tpmSkip = skipReason ?? tpmUnavailable();
describe('SCEP with the RSA key in a TPM 2.0 token (swtpm + tpm2-abrmd), against scepserver', { skip: tpmSkip }, () => {
  let server: ScepServer;
  let tpm: SoftTpm;
  let p: Profile;
  const credentialDirs = (x: Profile) => fs.readdirSync(path.join(x.stateDir, 'credentials'));

  before(async () => {
    server = await startScepServer({ challenge: CHALLENGE, validityDays: 1, allowRenewDays: 2 });
    tpm = await startSoftTpm();
    p = makeProfile({
      orgUrl: 'https://unused.invalid', rootCaFile: '/dev/null',
      extraEnv: { DTA_BACKEND: 'scep', DTA_SCEP_URL: server.url, DTA_SCEP_CA_FINGERPRINT: server.caFingerprint, DTA_SCEP_CHALLENGE: CHALLENGE, ...tpm.env },
    });
  });

  after(async () => {
    await server?.close();
    await tpm?.stop();
  });

  test('enrollment and RenewalReq with the key in the TPM: status says tpm, no key file, nothing in the NSS softokn', async () => {
    const r = await runAgent(['run', '--user', '--debug'], p.env);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.match(r.stderr, /Generate the device key \(RSA-2048\) inside the TPM 2\.0 token/);
    const first = readState(p).current;
    assert.equal(first.keyProtection, 'tpm');
    assert.ok(!fs.existsSync(path.join(p.stateDir, 'credentials', first.thumbprint, 'key.pem')));
    assert.equal(nssPrivateKeyFacts(p.nssDb).length, 0, 'no key in the NSS software token');
    const s = JSON.parse((await runAgent(['status', '--json'], p.env)).stdout);
    assert.equal(s.keyProtection.protection, 'tpm');
    // 17 h later the certificate is due: RenewalReq signed by the TPM key, the answer decrypted by the new TPM key.
    const later = await runAgent(['run', '--user'], { ...p.env, ...faketimeEnv('+17h') });
    assert.equal(later.code, 0, later.stderr + later.stdout);
    assert.match(later.stdout, /Certificate renewed/);
    assert.match(server.log(), /RenewalReq \(17\)/);
    const now = readState(p).current;
    assert.notEqual(now.serialNumber, first.serialNumber);
    assert.equal(now.keyProtection, 'tpm');
    assert.deepEqual(credentialDirs(p), [now.thumbprint]);
    assert.deepEqual(filesWithPrivateKeys([p.home]), []);
  });
});
