/**
 * Bench section: a full `diagnose` against the lab org with one target (the backup IWA web app) slowed past
 * the probe timeout. Probes run in parallel, so the wall time should be close to the slowest single probe
 * (goal ≤ 1.2×), not the sum. Uses a real KDC and the lab DC time source when Kerberos is installed.
 * Prints a table; asserts nothing (timings are not tests).
 */
import fs from 'node:fs';
import path from 'node:path';
import { kerberosToolsAvailable, startKdc, type Kdc } from '../../lab/kdc.js';
import { startLabNtp } from '../../lab/ntp.js';
import { startLabOrg } from '../../lab/org.js';
import { runPass } from '../../src-main/core/enrollment/pass.js';
import { loadConfig } from '../../src-main/core/config.js';
import { runDiagnostics } from '../../src-main/core/diagnostics/run-diagnostics.js';
import { DEFAULT_HEALTH_POLICY } from '../../src-main/core/diagnostics/health.js';
import { EventLog } from '../../src-main/core/events.js';
import { Trace } from '../../src-main/base/trace.js';
import { tempDir } from '../support/agent.js';
import { createLinuxPlatform } from '../../src-main/platform/linux.js';
import { median, table } from './util.js';
import { testContext } from '../support/context.js';

export default async function bench(): Promise<void> {
  const dir = tempDir('bench-diag');
  const useKdc = kerberosToolsAvailable();
  let kdc: Kdc | undefined;
  const krbEnv: Record<string, string> = {};
  if (useKdc) {
    kdc = await startKdc({ dir: path.join(dir, 'kdc'), users: ['alice'] });
    Object.assign(process.env, kdc.serverEnv());
    Object.assign(krbEnv, await kdc.kinit('alice'), { DTA_DEVICE_KEYTAB: kdc.deviceKeytab, DTA_DEVICE_PRINCIPAL: kdc.devicePrincipal });
    process.env.KRB5CCNAME = krbEnv.KRB5CCNAME;
  } else {
    fs.writeFileSync(path.join(dir, 'krb5.conf'), '# no realm\n');
    krbEnv.KRB5_CONFIG = path.join(dir, 'krb5.conf');
  }
  const lab = await startLabOrg({ allowLabSignIn: !useKdc });
  const ntp = await startLabNtp();
  const rootCa = path.join(dir, 'root.pem');
  fs.writeFileSync(rootCa, lab.rootCaPem);
  const home = path.join(dir, 'home');
  const env = { ...(process.env as Record<string, string>), HOME: home, USER: 'alice', DTA_MANAGED_CONFIG_DIR: path.join(home, 'managed'), DTA_PLATFORM_LOG: 'off', ...krbEnv };
  const cli = { orgUrl: lab.orgUrl, tlsCaFile: rootCa, browserPolicyDirs: [path.join(home, 'policy')], gatewayHealthUrl: `${lab.orgUrl}/api/v1/gateway/health`, ...(useKdc ? {} : { labSignIn: 'true' }) };
  const loaded = loadConfig({ env, cli });
  const timeoutMs = DEFAULT_HEALTH_POLICY.timeoutMs;
  const runs = 4;
  const rows: { wall: number; slowest: number; sum: number; probes: number; slowId: string; slowStatus: string }[] = [];
  try {
    await runPass({ loaded, platform: createLinuxPlatform(loaded.config), context: testContext(), side: 'user', force: false, trace: new Trace(undefined) });
    lab.switches.targetDelayMs = { iwaBackup: timeoutMs + 1000 };
    for (let i = 0; i < runs; i++) {
      const t0 = performance.now();
      const r = await runDiagnostics({ loaded, context: testContext(), env, secrets: null, ntpPort: ntp.port, events: new EventLog(loaded.config.stateDir, 'bench', { sinks: [] }), recordOutcome: false });
      const wall = performance.now() - t0;
      const slow = [...r.probes].sort((a, b) => b.ms - a.ms)[0]!;
      rows.push({ wall, slowest: slow.ms, sum: r.probes.reduce((n, p) => n + p.ms, 0), probes: r.probes.length, slowId: slow.id, slowStatus: slow.status });
    }
  } finally {
    await lab.close();
    await ntp.close();
    await kdc?.stop();
  }
  // The first run has no cached org answer, so the IWA/mTLS/CRL probes wait for discovery; later runs start them at once.
  const [first, ...later] = rows;
  const wall = median(later.map((r) => r.wall));
  const slowest = median(later.map((r) => r.slowest));
  table(`Full diagnose against the lab, backup IWA slowed past the ${timeoutMs} ms timeout (${useKdc ? 'real KDC' : 'lab-only sign-in, no KDC'})`, ['measure', 'first run', `median of next ${later.length}`], [
    ['wall time of the whole diagnose', first!.wall, wall],
    [`slowest single probe (${first!.slowId}, ${first!.slowStatus})`, first!.slowest, slowest],
    [`sum of all ${first!.probes} probes (what one-by-one would take)`, first!.sum, median(later.map((r) => r.sum))],
    ['wall / slowest probe (goal ≤ 1.2)', first!.wall / first!.slowest, wall / slowest],
  ]);
  console.log('The first run waits for org discovery before probing the IWA web apps; later runs start them from the cached answer.');
}
