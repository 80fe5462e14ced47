/**
 * Diagnostics against real parts: a real MIT KDC, the lab org speaking Negotiate over TLS on loopback (with its
 * outage, slow-target, clock and failover switches), a lab SNTP time source standing in for the DC's, and an
 * enrolled certificate in a real NSS database.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { kerberosToolsAvailable, startKdc, type Kdc } from '../../lab/kdc.js';
import { startLabNtp, type LabNtp } from '../../lab/ntp.js';
import { startLabOrg, type LabOrg } from '../../lab/org.js';
import { loadConfig } from '../../src-main/core/config.js';
import { runDiagnostics } from '../../src-main/core/diagnostics/run-diagnostics.js';
import { DEFAULT_HEALTH_POLICY } from '../../src-main/core/diagnostics/health.js';
import { DiagnoseReportSchema, type DiagnoseReport } from '../../src-main/core/diagnostics/types.js';
import { EventLog } from '../../src-main/core/events.js';
import { makeProfile, runAgent, tempDir, type Profile } from '../support/agent.js';
import { interceptorCa, startInterceptor } from '../support/interceptor.js';
import { readState } from '../support/state.js';
import { testContext } from '../support/context.js';

const skipReason = kerberosToolsAvailable() ? undefined : 'skipped: MIT Kerberos is not installed (apt install krb5-kdc krb5-admin-server krb5-user)';
if (skipReason) console.log(`# diagnose ${skipReason}`);

// Generous: the suite runs two files at a time on two shared cores, and only the slowed target may time out.
const TIMEOUT_MS = 5000;

describe('diagnose against the lab (real KDC, lab org, lab DC time source)', { skip: skipReason }, () => {
  let kdc: Kdc;
  let lab: LabOrg;
  let ntp: LabNtp;
  let profile: Profile;
  let agentEnv: Record<string, string>;
  let env: Record<string, string>;

  const diagnose = async (extra: Record<string, string> = {}, timeoutMs = TIMEOUT_MS): Promise<DiagnoseReport> => {
    const e = { ...env, ...extra };
    const report = await runDiagnostics({
      loaded: loadConfig({ env: e }), env: e, policy: { ...DEFAULT_HEALTH_POLICY, timeoutMs }, secrets: null, ntpPort: ntp.port, context: testContext(),
      events: new EventLog(profile.stateDir, 'diagnose', { sinks: [] }),
    });
    return DiagnoseReportSchema.parse(report);
  };
  const codes = (r: DiagnoseReport) => r.findings.map((f) => f.code);
  const probe = (r: DiagnoseReport, id: string) => {
    const p = r.probes.find((x) => x.id === id);
    assert.ok(p, `probe ${id} in ${r.probes.map((x) => x.id).join(', ')}`);
    return p;
  };
  const finding = (r: DiagnoseReport, code: string) => {
    const f = r.findings.find((x) => x.code === code);
    assert.ok(f, `finding ${code} in ${codes(r).join(', ')}`);
    return f;
  };
  const resetLab = () => {
    Object.assign(lab.switches, { iwaPrimaryDown: false, iwaBackupDown: false, orgDown: false, readOnly: false, failoverMode: 'REDIRECT_TO_BACKUP', dateSkewSeconds: 0, targetDelayMs: {}, adAgentsDown: false, gatewayStatus: 'HEALTHY' });
    ntp.skewSeconds = 0;
  };

  before(async () => {
    const dir = tempDir('diag-kdc');
    kdc = await startKdc({ dir, users: ['alice'] });
    Object.assign(process.env, kdc.serverEnv());
    lab = await startLabOrg({});
    ntp = await startLabNtp();
    const rootCaFile = path.join(dir, 'lab-root.pem');
    fs.writeFileSync(rootCaFile, lab.rootCaPem);
    const userEnv = await kdc.kinit('alice');
    agentEnv = { ...userEnv, DTA_DEVICE_KEYTAB: kdc.deviceKeytab, DTA_DEVICE_PRINCIPAL: kdc.devicePrincipal, DTA_PLATFORM_LOG: 'off' };
    profile = makeProfile({ orgUrl: lab.orgUrl, rootCaFile });
    env = { ...process.env as Record<string, string>, ...profile.env, ...agentEnv };
    // This process is the agent too: the GSS library reads the user's ccache from process.env.
    process.env.KRB5CCNAME = userEnv.KRB5CCNAME;
    const r = await runAgent(['run'], { ...profile.env, ...agentEnv });
    assert.equal(r.code, 0, r.stderr + r.stdout);
  });

  after(async () => {
    await lab?.close();
    await ntp?.close();
    await kdc?.stop();
  });

  test('a healthy lab: every probe answers stage by stage, no warning, and the sign-in is recorded', async () => {
    const r = await diagnose();
    assert.deepEqual(r.findings.filter((f) => f.severity !== 'info'), [], JSON.stringify(r.findings, null, 2));
    assert.equal(r.exitCode, 0);
    for (const id of ['org', 'clock:org', 'iwa:primary', 'iwa:backup:1', 'crl', 'kerberos:user', 'kerberos:device', `kdc:127.0.0.1:${kdc.kdcPort}`, 'clock:dc:127.0.0.1', 'certificate']) {
      assert.equal(probe(r, id).status, 'ok', `${id}: ${JSON.stringify(probe(r, id))}`);
    }
    assert.deepEqual(probe(r, 'org').stages.map((s) => [s.name, s.status]), [['dns', 'ok'], ['tcp', 'ok'], ['tls', 'ok'], ['http', 'ok']]);
    assert.deepEqual(probe(r, 'iwa:primary').stages.map((s) => s.name), ['dns', 'tcp', 'tls', 'http', 'auth']);
    assert.deepEqual(probe(r, 'iwa:primary').facts.auth, { ok: true, via: 'Negotiate', principal: 'alice@LAB.TEST' });
    // The device key is in the NSS token: the mTLS probe presents it through openssl + libp11 (a child process).
    assert.equal(probe(r, 'mtls').status, 'ok', JSON.stringify(probe(r, 'mtls')));
    assert.equal(probe(r, 'mtls').facts.trusted, true, JSON.stringify(probe(r, 'mtls')));
    assert.equal(probe(r, 'crl').facts.revoked, false);
    assert.equal(probe(r, 'kerberos:user').facts.principal, 'alice@LAB.TEST');
    assert.ok(Math.abs(probe(r, 'clock:dc:127.0.0.1').facts.skewMs as number) < 2000);
    const seen = new EventLog(profile.stateDir, undefined, { sinks: [] }).query({ ids: [1220] });
    assert.match(seen.at(-1)!.message, /alice@LAB\.TEST signed in to the IWA web app/);
  });

  for (const [mode, code, severity] of [
    ['REDIRECT_TO_BACKUP', 'IWA_PRIMARY_DOWN_FAILOVER', 'warning'],
    ['PRIMARY_ONLY', 'IWA_PRIMARY_DOWN_NO_FAILOVER', 'error'],
    ['FIXED_URL', 'IWA_FIXED_URL_DOWN', 'error'],
  ] as const) {
    test(`primary IWA down with failover mode ${mode} → ${code}`, async () => {
      resetLab();
      lab.switches.failoverMode = mode;
      lab.switches.iwaPrimaryDown = true;
      try {
        const r = await diagnose();
        const f = finding(r, code);
        assert.equal(f.severity, severity);
        assert.equal(probe(r, 'iwa:primary').status, 'fail');
        assert.equal(probe(r, 'iwa:backup:1').status, 'ok');
        assert.equal(r.org?.failoverMode, mode);
        if (mode === 'REDIRECT_TO_BACKUP') assert.match(f.cause, /redirects to a healthy backup/);
        else {
          assert.match(f.cause, /may still show it as active although it is down/);
          assert.ok(f.evidence.some((e) => /answer but are not used in this mode/.test(e)), f.evidence.join('\n'));
        }
        assert.equal(r.exitCode, severity === 'error' ? 30 : 20);
      } finally {
        resetLab();
      }
    });
  }

  test('primary and backup down with failover → IWA_ALL_DOWN', async () => {
    resetLab();
    lab.switches.iwaPrimaryDown = true;
    lab.switches.iwaBackupDown = true;
    try {
      assert.equal(finding(await diagnose(), 'IWA_ALL_DOWN').severity, 'error');
    } finally {
      resetLab();
    }
  });

  test('a slow target trips its own timeout and no other probe', async () => {
    resetLab();
    lab.switches.targetDelayMs = { iwaBackup: TIMEOUT_MS * 3 };
    try {
      const r = await diagnose();
      const slow = probe(r, 'iwa:backup:1');
      assert.equal(slow.status, 'timeout');
      assert.equal(slow.error?.code, 'TIMEOUT');
      assert.equal(slow.stages.find((s) => s.name === 'http')?.status, 'timeout', JSON.stringify(slow.stages));
      for (const p of r.probes.filter((x) => x.id !== slow.id)) assert.notEqual(p.status, 'timeout', `${p.id} must not time out`);
      for (const id of ['org', 'iwa:primary', 'crl']) assert.equal(probe(r, id).status, 'ok', id);
      assert.equal(finding(r, 'IWA_BACKUP_DOWN').severity, 'warning');
    } finally {
      resetLab();
    }
  });

  test('the KDC stopped: the KDC probe fails and the Kerberos finding says what to do', async () => {
    resetLab();
    const fresh = (await kdc.kinit('alice')).KRB5CCNAME!; // a TGT but no service tickets yet: the next ones need the KDC
    const saved = process.env.KRB5CCNAME;
    process.env.KRB5CCNAME = fresh;
    await kdc.stop();
    try {
      const r = await diagnose({ KRB5CCNAME: fresh });
      const kdcProbe = probe(r, `kdc:127.0.0.1:${kdc.kdcPort}`);
      assert.equal(kdcProbe.status, 'fail');
      assert.equal(kdcProbe.error?.code, 'TCP_REFUSED');
      const f = finding(r, 'KDC_UNREACHABLE');
      assert.equal(f.severity, 'warning', 'enrolled: renewal still works without Kerberos');
      assert.match(f.remedy, /corporate network or VPN/);
      const iwaAuth = probe(r, 'iwa:primary').facts.auth as { ok: boolean; code: string };
      assert.equal(iwaAuth.ok, false);
      assert.equal(iwaAuth.code, 'KDC_UNREACHABLE');
      assert.equal(probe(r, 'iwa:primary').status, 'ok', 'the IWA server itself is fine');
    } finally {
      process.env.KRB5CCNAME = saved;
      await kdc.start();
    }
  });

  test('the org\'s clock (HTTP Date) 10 minutes ahead → CLOCK_SKEW error; 90 s → warning', async () => {
    resetLab();
    lab.switches.dateSkewSeconds = 600;
    try {
      const r = await diagnose();
      const skew = probe(r, 'clock:org').facts.skewMs as number;
      assert.ok(Math.abs(skew - 600_000) < 2500, String(skew));
      const f = finding(r, 'CLOCK_SKEW');
      assert.equal(f.severity, 'error');
      assert.match(f.title, /10\.0 min behind the org/);
      lab.switches.dateSkewSeconds = 90;
      assert.equal(finding(await diagnose(), 'CLOCK_SKEW').severity, 'warning');
    } finally {
      resetLab();
    }
  });

  test('the DC\'s clock (SNTP) 7 minutes behind → CLOCK_SKEW error naming the domain controller', async () => {
    resetLab();
    ntp.skewSeconds = -420;
    try {
      const r = await diagnose();
      assert.ok(Math.abs((probe(r, 'clock:dc:127.0.0.1').facts.skewMs as number) + 420_000) < 1000);
      const f = finding(r, 'CLOCK_SKEW');
      assert.equal(f.severity, 'error');
      assert.match(f.title, /ahead of the domain controller/);
    } finally {
      resetLab();
    }
  });

  test('read-only org, unhealthy access gateway, revoked certificate', async () => {
    resetLab();
    lab.switches.readOnly = true;
    lab.switches.gatewayStatus = 'UNHEALTHY';
    try {
      const r = await diagnose({ DTA_GATEWAY_HEALTH_URL: `${lab.orgUrl}/api/v1/gateway/health` });
      assert.equal(finding(r, 'ORG_READ_ONLY').severity, 'warning');
      assert.match(finding(r, 'GATEWAY_UNHEALTHY').title, /UNHEALTHY/);
      assert.equal(probe(r, 'gateway').facts.status, 'UNHEALTHY');
      lab.switches.gatewayStatus = 'HEALTHY';
      const serial = readState(profile).current.serialNumber;
      lab.revoke(serial);
      const r2 = await diagnose({ DTA_GATEWAY_HEALTH_URL: `${lab.orgUrl}/api/v1/gateway/health` });
      assert.ok(!codes(r2).includes('GATEWAY_UNHEALTHY'));
      const rev = finding(r2, 'CERT_REVOKED');
      assert.ok(rev.evidence.some((e) => e.includes(`crl: serial ${serial} revoked`)));
      assert.match(rev.remedy, /--forceRenewal/);
    } finally {
      resetLab();
    }
  });

  test('a TLS-inspecting middlebox in front of the org and the mTLS endpoint → TLS_INTERCEPTION', async () => {
    resetLab();
    const ca = await interceptorCa('Zscaler Root CA (test)');
    const mtlsOrigin = new URL(lab.mtlsUrl).origin;
    const mtlsBox = await startInterceptor({ upstream: mtlsOrigin, upstreamCa: lab.rootCaPem, ca });
    const orgBox = await startInterceptor({ upstream: lab.orgUrl, upstreamCa: lab.rootCaPem, ca, rewrite: (b) => b.split(mtlsOrigin).join(mtlsBox.origin) });
    // The box's CA is trusted on this device (as enterprises deploy it), so TLS itself does not fail.
    const trust = path.join(tempDir('box'), 'trust.pem');
    fs.writeFileSync(trust, `${lab.rootCaPem}\n${ca.rootCaPem}`);
    try {
      const r = await diagnose({ DTA_ORG_URL: orgBox.origin, DTA_TLS_CA_FILE: trust });
      assert.equal(probe(r, 'org').status, 'ok', JSON.stringify(probe(r, 'org')));
      const f = finding(r, 'TLS_INTERCEPTION');
      assert.equal(f.severity, 'error');
      // Named by the chain the org publishes (discovery serverTls) — not the lab's — for the org and the mTLS host.
      assert.ok(f.evidence.some((e) => /^org: the certificate presented for localhost:\d+ is issued by "Zscaler Root CA \(test\)", not by a CA the org publishes/.test(e)), f.evidence.join('\n'));
      assert.ok(!codes(r).includes('CERT_NOT_TRUSTED'), 'the certificate is not blamed');
    } finally {
      await orgBox.close();
      await mtlsBox.close();
    }
  });

  test('the CLI: diagnose --json follows the schema and exits by the worst finding; --watch reports health; events finds it', async () => {
    resetLab();
    lab.switches.iwaPrimaryDown = true;
    lab.switches.failoverMode = 'PRIMARY_ONLY';
    try {
      const cliEnv = { ...profile.env, ...agentEnv, KRB5_CONFIG: kdc.krb5Config };
      const r = await runAgent(['diagnose', '--json', '--timeout', '5'], cliEnv);
      const report = DiagnoseReportSchema.parse(JSON.parse(r.stdout));
      assert.equal(r.code, 30, r.stderr);
      assert.equal(report.schema, 'device-trust-agent/diagnose');
      assert.equal(report.version, 1);
      assert.ok(report.findings.some((f) => f.code === 'IWA_PRIMARY_DOWN_NO_FAILOVER'));
      const text = await runAgent(['diagnose', '--timeout', '5'], cliEnv);
      assert.match(text.stdout, /\[ERROR\] IWA_PRIMARY_DOWN_NO_FAILOVER/);
      assert.match(text.stdout, /what to do: /);
      assert.match(text.stdout, /✗ iwa:primary/);
      const w = await runAgent(['diagnose', '--watch', '--json', '--count', '2', '--interval', '1', '--timeout', '5', '--retries', '0'], cliEnv);
      const lines = w.stdout.trim().split('\n').map((l) => DiagnoseReportSchema.parse(JSON.parse(l)));
      assert.equal(lines.length, 2);
      const primary = lines[1]!.health!.find((h) => h.target === 'iwa:primary')!;
      assert.equal(primary.state, 'DEGRADED', 'two failed checks: below the failure threshold of 3');
      assert.equal(primary.consecutiveFailures, 2);
      assert.equal(lines[1]!.health!.find((h) => h.target === 'org')!.state, 'ONLINE');
      const ev = await runAgent(['events', '--id', '1200-1299', '--level', 'warning', '--grep', 'only primary', '--json'], cliEnv);
      const events = JSON.parse(ev.stdout) as { id: number; task: string }[];
      assert.ok(events.length >= 1 && events.every((e) => e.id === 1202 && e.task === 'diagnose'), ev.stdout);
      const bad = await runAgent(['events', '--since', 'yesterday'], cliEnv);
      assert.equal(bad.code, 78);
      assert.match(bad.stderr, /--since must be/);
    } finally {
      resetLab();
    }
  });
});
