/**
 * The dashboard's passes go through the one pass engine, under the state directory's pass lock: while another
 * process holds it (a pass of the daemon, the tray's scheduler or a `run` in a terminal), "Renew now" and
 * force renewal answer "another pass is running" and write nothing; once it is free, they run.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startLabOrg, type LabOrg } from '../../lab/org.js';
import { isAgentError } from '../../src-main/base/errors.js';
import { loadConfig } from '../../src-main/core/config.js';
import type { UiEvent } from '../../src-main/ipc/contract.js';
import { DashboardService } from '../../src-main/ipc/service.js';
import { makeProfile, type Profile, writeRootCa } from '../support/agent.js';
import { holdPassLock } from '../support/lock-holder.js';
import { eventsText } from '../support/state.js';
import { testContext } from '../support/context.js';

describe('the dashboard service under the pass lock', () => {
  let lab: LabOrg;
  let profile: Profile;
  let svc: DashboardService;
  const emitted: UiEvent[] = [];
  const stateFile = () => path.join(profile.stateDir, 'state.json');
  const snapshot = () => ({ text: fs.readFileSync(stateFile(), 'utf8'), mtimeMs: fs.statSync(stateFile()).mtimeMs, events: eventsText(profile) });

  before(async () => {
    lab = await startLabOrg({ allowLabSignIn: true });
    profile = makeProfile({ orgUrl: lab.orgUrl, rootCaFile: writeRootCa(lab.rootCaPem), extraEnv: { DTA_LAB_SIGN_IN: 'true', KRB5_CONFIG: '/dev/null', DTA_PLATFORM_LOG: 'off' } });
    svc = new DashboardService({
      loadConfig: () => loadConfig({ env: profile.env }),
      context: testContext(),
      emit: (e) => emitted.push(e),
      saveExport: async () => null,
      env: { ...process.env, ...profile.env },
    });
    // Enrolled through the dashboard itself (no certificate yet: "Renew now" enrolls).
    assert.equal((await svc.run('renew')).outcome, 'enrolled');
  });
  after(() => lab.close());

  for (const kind of ['renew', 'forceRenewal'] as const) {
    test(`${kind} while another process holds the pass lock: "another pass is running", nothing written; then it runs`, async () => {
      const before = snapshot();
      const issued = lab.issued().length;
      const holder = await holdPassLock(profile.stateDir, 'daily pass');
      try {
        await assert.rejects(svc.run(kind), (e: unknown) => {
          assert.ok(isAgentError(e), String(e));
          assert.equal(e.code, 'PASS_RUNNING');
          assert.match(e.message, new RegExp(`Another pass is running \\(pid ${holder.pid}, since .*: daily pass\\)`));
          return true;
        });
        assert.deepEqual(snapshot(), before, 'state.json and the event log untouched while the other pass holds the lock');
        assert.equal(lab.issued().length, issued, 'nothing was asked of the org');
        assert.equal(svc.activity, null, 'the dashboard is free again');
        const last = emitted.filter((e) => e.type === 'progress' && e.activity === kind).at(-1);
        assert.ok(last?.type === 'progress' && last.phase === 'failed' && /Another pass is running/.test(last.message ?? ''), JSON.stringify(last));
      } finally {
        await holder.release();
      }
      const r = await svc.run(kind);
      assert.equal(r.outcome, kind === 'renew' ? 'renewed' : 'enrolled');
      assert.equal(lab.issued().length, issued + 1);
      // Recorded in the schedule like any pass (the engine's record, which runPass alone never wrote).
      const state = JSON.parse(fs.readFileSync(stateFile(), 'utf8')) as { schedule?: { lastPass?: { trigger?: string } } };
      assert.equal(state.schedule?.lastPass?.trigger, 'manual', JSON.stringify(state.schedule));
    });
  }
});
