/**
 * The dashboard's reachability probes and findings against the lab org, with its outage switches and
 * failover modes: what a help-desk person reads when IWA is down depends on the org's failover mode and
 * on whether this device still has a valid certificate.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loadConfig } from '../../src-main/core/config.js';
import { HttpClient } from '../../src-main/core/http.js';
import { getStatus, type StatusReport } from '../../src-main/core/status.js';
import { findingsFor, runProbes, type ProbeRun } from '../../src-main/ipc/diagnostics.js';
import { startLabOrg, type FailoverMode, type LabOrg } from '../../lab/org.js';
import { makeProfile, tempDir } from '../support/agent.js';

async function probe(lab: LabOrg): Promise<{ status: StatusReport; run: ProbeRun }> {
  const rootCaFile = path.join(tempDir('ca'), 'root.pem');
  fs.writeFileSync(rootCaFile, lab.rootCaPem);
  const profile = makeProfile({ orgUrl: lab.orgUrl, rootCaFile });
  const loaded = loadConfig({ env: profile.env });
  const status = await getStatus(loaded);
  const http = new HttpClient({ tlsCaFile: rootCaFile, timeoutMs: 3000 });
  try {
    return { status, run: await runProbes({ config: loaded.config, http, status }) };
  } finally {
    await http.close();
  }
}

for (const mode of ['REDIRECT_TO_BACKUP', 'PRIMARY_ONLY'] as FailoverMode[]) {
  describe(`diagnostics against the lab org, failover mode ${mode}`, () => {
    let lab: LabOrg;
    before(async () => {
      lab = await startLabOrg({ failoverMode: mode });
    });
    after(() => lab.close());

    test('everything up: the org, both IWA web apps and the AD agents are ONLINE; the only finding is the missing certificate', async () => {
      const { status, run } = await probe(lab);
      const health = Object.fromEntries(run.targets.map((t) => [t.id, t.health]));
      assert.equal(health.org, 'ONLINE');
      assert.equal(health['iwa-primary'], 'ONLINE');
      assert.equal(health['iwa-backup-1'], 'ONLINE');
      assert.equal(health['ad-agents'], 'ONLINE');
      assert.equal(health.kdc, 'UNKNOWN');
      assert.match(run.targets.find((t) => t.id === 'iwa-primary')!.stages.at(-1)!.detail, /Negotiate/);
      assert.deepEqual(findingsFor(status, run, run.org).map((f) => f.id), ['no-certificate']);
    });

    test('primary IWA down: the finding depends on the failover mode', async () => {
      lab.switches.iwaPrimaryDown = true;
      try {
        const { status, run } = await probe(lab);
        const primary = run.targets.find((t) => t.id === 'iwa-primary')!;
        const backup = run.targets.find((t) => t.id === 'iwa-backup-1')!;
        assert.equal(primary.health, 'OFFLINE');
        assert.equal(backup.health, 'ONLINE');
        const f = findingsFor(status, run, run.org).find((x) => x.id === 'iwa-primary-offline')!;
        if (mode === 'REDIRECT_TO_BACKUP') {
          assert.equal(f.severity, 'warning');
          assert.match(f.title, /a backup is used/);
          assert.match(primary.explanation!, /redirect to a backup/);
        } else {
          assert.equal(f.severity, 'critical', 'no certificate and nothing fails over');
          assert.match(f.title, /nothing fails over/);
          assert.match(f.cause, /may still show it as active/);
          assert.match(backup.summary, /Not used in this failover mode/);
        }
      } finally {
        lab.switches.iwaPrimaryDown = false;
      }
    });
  });
}

describe('findings', () => {
  let lab: LabOrg;
  before(async () => {
    lab = await startLabOrg({});
  });
  after(() => lab.close());

  test('every IWA down: critical without a certificate, a warning with a valid one (renewal does not need IWA)', async () => {
    lab.switches.iwaPrimaryDown = true;
    lab.switches.iwaBackupDown = true;
    try {
      const { status, run } = await probe(lab);
      const none = findingsFor(status, run, run.org).find((f) => f.id === 'iwa-offline')!;
      assert.equal(none.severity, 'critical');
      assert.match(none.remedy, /corporate network or VPN/);
      const enrolled: StatusReport = { ...status, state: 'ENROLLED', certificate: { serialNumber: '1', subject: '', issuer: '', issuerCN: '', subjectCN: '', notBefore: '', notAfter: '2099-01-01T00:00:00.000Z', sha256: '', storeId: 'x' } };
      assert.equal(findingsFor(enrolled, run, run.org).find((f) => f.id === 'iwa-offline')!.severity, 'warning');
    } finally {
      lab.switches.iwaPrimaryDown = false;
      lab.switches.iwaBackupDown = false;
    }
  });

  test('the org down: IWA cannot even be located; the finding names the allowlist domains', async () => {
    lab.switches.orgDown = true;
    try {
      const { status, run } = await probe(lab);
      assert.equal(run.targets.find((t) => t.id === 'org')!.health, 'OFFLINE');
      assert.equal(run.targets.find((t) => t.id === 'iwa-primary')!.health, 'UNKNOWN');
      const f = findingsFor(status, run, run.org).find((x) => x.id === 'org-unreachable')!;
      assert.equal(f.severity, 'critical');
      assert.match(f.cause, /\*\.okta\.com/);
    } finally {
      lab.switches.orgDown = false;
    }
  });

  test('a TLS certificate that does not chain to the trust anchors is reported as interception, not as "down"', async () => {
    const profile = makeProfile({ orgUrl: lab.orgUrl, rootCaFile: '/dev/null' });
    const loaded = loadConfig({ env: profile.env });
    const status = await getStatus(loaded);
    const http = new HttpClient({ timeoutMs: 3000 });
    try {
      const run = await runProbes({ config: loaded.config, http, status });
      const ids = findingsFor(status, run, run.org).map((f) => f.id);
      assert.ok(ids.includes('tls-interception'), ids.join(','));
      assert.ok(!ids.includes('org-unreachable'));
      assert.match(run.targets.find((t) => t.id === 'org')!.stages[1]!.detail, /^TLS: /);
    } finally {
      await http.close();
    }
  });
});
