/**
 * PENDING (RFC 8894 §3.3.3): the CA holds a request for approval and the client polls with CertPoll. Debian's
 * scepserver never answers PENDING, so these tests use the small responder in test/support/scep-responder.ts
 * (built from the agent's own CMS code: it proves the polling and state handling, while interoperability is
 * proven against scepserver in scep.test.ts). The agent, NSS database and command line are real.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loadConfig } from '../../src-main/core/config.js';
import { diagnoseScep } from '../../src-main/core/scep/diagnose.js';
import { makeProfile, runAgent, type Profile } from '../support/agent.js';
import { nssUserCerts } from '../support/nss.js';
import { startPendingResponder, type PendingResponder } from '../support/scep-responder.js';
import { readState } from '../support/state.js';

const CHALLENGE = 'pending-test-challenge';

describe('SCEP PENDING: polling within a run, and across runs with the same key', () => {
  let ca: PendingResponder;
  const profileFor = (wait: string): Profile => makeProfile({
    orgUrl: 'https://unused.invalid', rootCaFile: '/dev/null',
    extraEnv: { DTA_BACKEND: 'scep', DTA_SCEP_URL: ca.url, DTA_SCEP_CA_FINGERPRINT: ca.caFingerprint, DTA_SCEP_CHALLENGE: CHALLENGE, DTA_SCEP_PENDING_WAIT_SECONDS: wait },
  });

  before(async () => {
    ca = await startPendingResponder({ challenge: CHALLENGE, approveAfterPolls: 2 });
  });
  after(() => ca?.close());

  test('a request approved while the agent polls is issued in the same run', async () => {
    const p = profileFor('2');
    const mark = ca.log.length;
    const r = await runAgent(['run', '--debug'], p.env);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.deepEqual(ca.log.slice(mark), ['19 PENDING', '20 PENDING', '20 SUCCESS']);
    assert.match(r.stderr, /poll it \(CertPoll\)/);
    assert.equal(nssUserCerts(p.nssDb).length, 1);
    assert.equal(readState(p).pending, undefined);
  });

  test('a request still pending when the run ends keeps its key; the next run polls it and installs the certificate', async () => {
    const p = profileFor('0');
    const r = await runAgent(['run'], p.env);
    assert.equal(r.code, 20, r.stderr + r.stdout);
    assert.match(r.stderr, /on hold for approval \(PENDING/);
    assert.match(r.stderr, /approve the pending request/);
    const pending = readState(p).pending;
    assert.ok(pending, 'the pending request is recorded');
    assert.deepEqual(fs.readdirSync(path.join(p.stateDir, 'credentials')), [pending.thumbprint], 'its key is kept');
    assert.deepEqual(nssUserCerts(p.nssDb), []);
    const status = JSON.parse((await runAgent(['status', '--json'], p.env)).stdout);
    assert.equal(status.state, 'PENDING');
    const d = await diagnoseScep(loadConfig({ env: p.env }), {});
    assert.ok(d.findings.some((f) => f.severity === 'warning' && /waiting for the CA administrator's approval \(PENDING\)/.test(f.title)), JSON.stringify(d.findings));

    ca.approve();
    const mark = ca.log.length;
    const next = await runAgent(['run'], p.env);
    assert.equal(next.code, 0, next.stderr + next.stdout);
    assert.deepEqual(ca.log.slice(mark), ['20 SUCCESS'], 'the next run polls (CertPoll) instead of starting a new request');
    const state = readState(p);
    assert.equal(state.pending, undefined);
    assert.equal(state.current.thumbprint, pending.thumbprint, 'the certificate is for the key generated in the first run');
    assert.equal(nssUserCerts(p.nssDb).length, 1);
  });
});
