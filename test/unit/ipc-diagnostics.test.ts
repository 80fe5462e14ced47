/**
 * The dashboard's diagnostics: the engine's probes against the lab org become cards whose state follows the
 * health model (DEGRADED on the first failed check, OFFLINE at the failure threshold, ONLINE again only
 * after the success threshold and the cool-down), and the engine's findings become the dashboard's.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loadConfig } from '../../src-main/core/config.js';
import { DEFAULT_HEALTH_POLICY } from '../../src-main/core/diagnostics/health.js';
import { EventLog } from '../../src-main/core/events.js';
import { ProxyResolver } from '../../src-main/core/proxy/resolver.js';
import type { SystemProxySource } from '../../src-main/core/proxy/system.js';
import type { UiEvent } from '../../src-main/ipc/contract.js';
import { DashboardService } from '../../src-main/ipc/service.js';
import { startLabOrg, type FailoverMode, type LabOrg } from '../../lab/org.js';
import { testContext } from '../support/context.js';
import { makeProfile, type Profile, tempDir, writeRootCa } from '../support/agent.js';

function service(lab: LabOrg): { svc: DashboardService; profile: Profile; emitted: UiEvent[] } {
  const rootCaFile = writeRootCa(lab.rootCaPem);
  // No Kerberos realm on this test device, and the platform log stays quiet.
  const profile = makeProfile({ orgUrl: lab.orgUrl, rootCaFile, extraEnv: { KRB5_CONFIG: '/dev/null', DTA_PLATFORM_LOG: 'off' } });
  const emitted: UiEvent[] = [];
  const svc = new DashboardService({
    loadConfig: () => loadConfig({ env: profile.env }),
    context: testContext(),
    emit: (e) => emitted.push(e),
    saveExport: async () => null,
    env: { ...process.env, ...profile.env },
    // The default policy with one retry instead of three, to keep the test short.
    healthPolicy: { ...DEFAULT_HEALTH_POLICY, maxRetries: 1 },
  });
  return { svc, profile, emitted };
}

const healthOf = async (svc: DashboardService) => Object.fromEntries((await svc.runDiagnostics()).targets.map((t) => [t.id, t.health]));

for (const mode of ['PRIMARY_ONLY', 'REDIRECT_TO_BACKUP'] as FailoverMode[]) {
  describe(`dashboard diagnostics against the lab org, failover mode ${mode}`, () => {
    let lab: LabOrg;
    before(async () => {
      lab = await startLabOrg({ failoverMode: mode });
    });
    after(() => lab.close());

    test('cards for the org, each IWA web app, the KDC and the proxy path, with plain names and explanations', async () => {
      const { svc, emitted } = service(lab);
      const r = await svc.runDiagnostics();
      const byId = Object.fromEntries(r.targets.map((t) => [t.id, t]));
      assert.equal(byId.org?.health, 'ONLINE');
      assert.equal(byId['iwa:primary']?.name, 'IWA web app (primary)');
      assert.equal(byId['iwa:primary']?.health, 'ONLINE');
      assert.equal(byId['iwa:backup:1']?.name, 'IWA web app (backup 1)');
      assert.match(byId['iwa:primary']!.explanation!, mode === 'PRIMARY_ONLY' ? /primary only/ : /redirect to a backup/);
      assert.ok(byId['iwa:primary']!.stages.some((s) => s.name.startsWith('TLS') && s.ok), 'stage-by-stage detail');
      assert.equal(byId.kdc?.health, 'UNKNOWN', 'no realm here: a card that says so');
      assert.equal(byId.proxy?.health, 'ONLINE');
      assert.match(byId.proxy!.summary, /^DIRECT/);
      assert.ok(!r.targets.some((t) => t.kind === 'kdc' && t.id !== 'kdc'));
      // Kerberos has no ticket on this test device, so the failed probes are checked once more before they count.
      assert.deepEqual(emitted.filter((e) => e.type === 'progress').map((e) => (e.type === 'progress' ? `${e.phase}${e.step ? `: ${e.step}` : ''}` : '')),
        ['start', 'step: Checking failed targets again (1 of 1)', 'done']);
      assert.equal(byId['kerberos:user']?.health, 'DEGRADED');
      assert.ok(emitted.some((e) => e.type === 'diagnostics-updated'));
    });

    test('primary IWA down: DEGRADED, then OFFLINE at the failure threshold; back up, it stays OFFLINE through the cool-down', async () => {
      const { svc, profile } = service(lab);
      assert.equal((await healthOf(svc))['iwa:primary'], 'ONLINE');
      lab.switches.iwaPrimaryDown = true;
      try {
        const first = await svc.runDiagnostics();
        assert.equal(first.targets.find((t) => t.id === 'iwa:primary')!.health, 'DEGRADED');
        assert.equal(first.targets.find((t) => t.id === 'iwa:backup:1')!.health, 'ONLINE');
        const finding = first.findings.find((f) => f.targetId === 'iwa:primary')!;
        if (mode === 'PRIMARY_ONLY') {
          assert.equal(finding.id, 'IWA_PRIMARY_DOWN_NO_FAILOVER');
          assert.equal(finding.severity, 'critical');
          assert.match(first.targets.find((t) => t.id === 'iwa:backup:1')!.summary, /Not used in this failover mode/);
        } else {
          assert.equal(finding.id, 'IWA_PRIMARY_DOWN_FAILOVER');
          assert.equal(finding.severity, 'warning');
        }
        if (mode !== 'PRIMARY_ONLY') return; // the hysteresis is the same in every mode: walked through once
        assert.equal((await healthOf(svc))['iwa:primary'], 'DEGRADED');
        const third = await svc.runDiagnostics();
        const primary = third.targets.find((t) => t.id === 'iwa:primary')!;
        assert.equal(primary.health, 'OFFLINE');
        assert.deepEqual(primary.history.map((h) => h.ok), [true, false, false, false]);
      } finally {
        lab.switches.iwaPrimaryDown = false;
      }
      if (mode !== 'PRIMARY_ONLY') return;
      assert.equal((await healthOf(svc))['iwa:primary'], 'OFFLINE', 'one good check is not enough');
      assert.equal((await healthOf(svc))['iwa:primary'], 'OFFLINE', 'two good checks start the 360 s cool-down');
      const log = new EventLog(profile.stateDir, undefined, { sinks: [] }).read().map((e) => e.title);
      assert.ok(log.some((t) => /degraded/i.test(t)), log.join('; '));
      assert.ok(log.some((t) => /offline/i.test(t)), log.join('; '));
    });
  });
}

describe('the tray\'s support bundle', () => {
  let lab: LabOrg;
  before(async () => {
    lab = await startLabOrg({});
  });
  after(() => lab.close());

  test('is the core\'s redacted zip, written where the shell asks', async () => {
    const { svc } = service(lab);
    const file = path.join(tempDir('bundle'), 'support.zip');
    assert.equal(await svc.supportBundle(file, '0.1.0'), file);
    assert.equal(fs.readFileSync(file).subarray(0, 2).toString('latin1'), 'PK');
  });
});

describe('the system proxy source (Electron session.resolveProxy in the app)', () => {
  test('stands for the OS settings when given; explicit settings and os:false still win', async () => {
    const asked: string[] = [];
    const system: SystemProxySource = { description: 'system settings (test source)', resolve: async (url) => (asked.push(url), 'PROXY proxy.corp.example:3128; DIRECT') };
    const settings = { env: {}, ca: [], timeoutMs: 1000, system };
    const d = await new ProxyResolver({ ...settings, os: async () => undefined }).decide('https://org.example.com/api/v1/x?y');
    assert.equal(d.source, 'os');
    assert.deepEqual(d.routes.map((r) => (r.kind === 'direct' ? 'DIRECT' : r.proxy.host)), ['proxy.corp.example:3128', 'DIRECT']);
    assert.match(d.rule, /test source.*PROXY proxy\.corp\.example:3128/);
    assert.deepEqual(asked, ['https://org.example.com/'], 'https URLs are asked about without path or query');
    assert.equal((await new ProxyResolver({ ...settings, os: false }).decide('https://org.example.com/')).source, 'none');
    assert.equal((await new ProxyResolver({ ...settings, os: false, httpProxy: 'http://explicit:8080' }).decide('https://org.example.com/')).source, 'explicit');
  });

  test('a source that cannot answer falls back to reading the OS settings', async () => {
    const settings = { env: {}, ca: [], timeoutMs: 1000, system: { description: 'broken', resolve: async () => { throw new Error('session gone'); } } };
    const d = await new ProxyResolver({ ...settings, os: async () => ({ source: 'GNOME settings', https: 'gnome-proxy:3128', bypass: [] }) }).decide('https://org.example.com/');
    assert.match(d.rule, /GNOME settings/);
  });
});
