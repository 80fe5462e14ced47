/**
 * `status` as a doctor against the lab: every named test with its result and evidence, the live signing test
 * catching a key that no longer matches its certificate (and the next pass repairing it), and the last
 * failure's phase and correlation ID — the same ID the lab org logged for the failed pass's requests.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { DOCTOR_TESTS } from '../../src-main/core/fleet/doctor.js';
import { startLabOrg, type LabOrg } from '../../lab/org.js';
import { createLinuxPlatform } from '../../src-main/platform/linux.js';
import { loadConfig } from '../../src-main/core/config.js';
import { CredentialFiles } from '../../src-main/core/certificates/credentials.js';
import { makeProfile, runAgent, writeRootCa, type Profile } from '../support/agent.js';
import { eventsText, readState } from '../support/state.js';

describe('status as a doctor', () => {
  let lab: LabOrg;
  let p: Profile;
  const status = async (...args: string[]) => {
    const r = await runAgent(['status', '--json', ...args], p.env);
    return { code: r.code, json: JSON.parse(r.stdout) as { schema: string; schemaVersion: number; state: string; tests: { name: string; result: string; evidence: string }[]; lastFailure?: Record<string, string>; certificate?: unknown; schedule?: unknown } };
  };
  const result = (s: Awaited<ReturnType<typeof status>>['json'], name: string) => s.tests.find((t) => t.name === name);

  before(async () => {
    lab = await startLabOrg({ allowLabSignIn: true });
    p = makeProfile({ orgUrl: lab.orgUrl, rootCaFile: writeRootCa(lab.rootCaPem), extraEnv: { DTA_LAB_SIGN_IN: 'true', DTA_METRICS_DIR: 'off', DTA_PLATFORM_LOG: 'off' } });
    const r = await runAgent(['run'], p.env);
    assert.equal(r.code, 0, r.stderr);
  });
  after(() => lab?.close());

  test('status --check --json names every test with its result and evidence, and keeps the existing fields', async () => {
    const { code, json } = await status('--check');
    assert.equal(code, 0);
    assert.equal(json.schema, 'device-trust-agent/status');
    assert.equal(json.schemaVersion, 1);
    assert.deepEqual(json.tests.map((t) => t.name), DOCTOR_TESTS.map(([n]) => n));
    for (const t of json.tests) {
      assert.ok(['PASS', 'FAIL', 'SKIPPED'].includes(t.result) && t.evidence.length > 0, JSON.stringify(t));
      // mtls_accepted too: the key in the PKCS#11 token is presented by openssl + libp11 (a child process).
      if (t.name !== 'kerberos_tickets') assert.equal(t.result, 'PASS', `${t.name}: ${t.evidence}`);
    }
    assert.equal(result(json, 'kerberos_tickets')!.result, 'SKIPPED', 'lab sign-in instead of Kerberos');
    assert.match(result(json, 'signing_test')!.evidence, /signature verifies with the certificate's public key/);
    assert.equal(json.state, 'ENROLLED');
    assert.ok(json.certificate && json.schedule, 'the fields status had before are still there');
    const text = await runAgent(['status'], p.env);
    assert.match(text.stdout, /PASS {4}Live signing test with the device key: (software-token|TPM) key/);
    assert.match(text.stdout, /SKIPPED Org reachable: not checked: run "status --check"/);
  });

  test('a key that no longer matches its certificate fails the signing test; the next pass enrolls afresh', async () => {
    const st = readState(p);
    // Another key in the same token, and the agent's record of the certificate's key pointed at it.
    const keys = createLinuxPlatform(loadConfig({ env: p.env }).config, { env: p.env }).keys!;
    try {
      const other = await keys.generate('P-256', 'device-trust-other');
      new CredentialFiles(p.stateDir).writeKeyRef(st.current.thumbprint, other.id);
    } finally {
      await keys.close();
    }
    const { json } = await status();
    assert.equal(result(json, 'signing_test')!.result, 'FAIL');
    assert.match(result(json, 'signing_test')!.evidence, /does not verify.*the next pass enrolls a new certificate/);
    const r = await runAgent(['run'], p.env);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.notEqual(readState(p).current.serialNumber, st.current.serialNumber);
    const events = eventsText(p);
    assert.match(events, /"id":1108/);
    assert.equal(result((await status()).json, 'signing_test')!.result, 'PASS');
  });

  test('the last failure names its phase, codes and correlation ID, which the lab org logged', async () => {
    lab.switches.iwaPrimaryDown = true;
    lab.switches.iwaBackupDown = true;
    try {
      const r = await runAgent(['run', '--forceRenewal', '--debug'], p.env);
      assert.equal(r.code, 20, r.stderr);
      assert.match(r.stderr, /\[request ID [0-9a-f]{32}-[0-9a-f]{16}\]/, '--debug shows the request IDs');
    } finally {
      lab.switches.iwaPrimaryDown = false;
      lab.switches.iwaBackupDown = false;
    }
    const { json } = await status();
    const f = json.lastFailure!;
    assert.ok(f, 'a last failure');
    assert.equal(f.phase, 'device token');
    assert.ok(f.clientCode, JSON.stringify(f));
    assert.match(f.correlationId!, /^[0-9a-f]{32}$/);
    assert.ok(f.requestId!.startsWith(f.correlationId!));
    assert.ok(lab.requestLog.some((l) => l.includes(`trace_id=${f.correlationId}`) && / org GET /.test(l)), 'the org logged the failed pass\'s discovery under the same ID');
    const text = await runAgent(['status'], p.env);
    assert.match(text.stdout, new RegExp(`correlation ID: ${f.correlationId}`));
    assert.match(text.stdout, /phase: +device token/);
  });
});
