/**
 * Bench section: `diagnose` and `proxy-check` behind a blackholed proxy — a real listener on loopback that
 * takes every TCP connection and never answers — explicit (HttpProxy=) and from a PAC file. Every probe's
 * deadline applies through the proxy route and the tunnels open in parallel, so the wall time should stay
 * within 1.2× the probe timeout (diagnose) or the request timeout (proxy-check). Prints ratios with their goal.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import path from 'node:path';
import { startLabOrg } from '../../lab/org.js';
import { runPass } from '../../src-main/core/enrollment/pass.js';
import { loadConfig } from '../../src-main/core/config.js';
import { runDiagnostics } from '../../src-main/core/diagnostics/run-diagnostics.js';
import { DEFAULT_HEALTH_POLICY } from '../../src-main/core/diagnostics/health.js';
import { EventLog } from '../../src-main/core/events.js';
import { proxyCheck } from '../../src-main/core/proxy/check.js';
import { Trace } from '../../src-main/base/trace.js';
import { createLinuxPlatform } from '../../src-main/platform/linux.js';
import { AGENT_BIN, tempDir } from '../support/agent.js';
import { median, table, time } from './util.js';
import { testContext } from '../support/context.js';

function runCli(args: string[], env: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [AGENT_BIN, ...args], { env, stdio: 'ignore' });
    child.on('error', reject);
    child.on('exit', (code) => resolve(code ?? -1));
  });
}

export default async function bench(): Promise<void> {
  const dir = tempDir('bench-blackhole');
  const held = new Set<net.Socket>();
  const blackhole = net.createServer((s) => {
    held.add(s);
    s.on('error', () => undefined);
  });
  await new Promise<void>((r) => blackhole.listen(0, '127.0.0.1', r));
  const proxyUrl = `http://127.0.0.1:${(blackhole.address() as AddressInfo).port}`;
  const pac = http.createServer((_q, res) => res.end(`function FindProxyForURL(url, host) { return "PROXY ${proxyUrl.slice(7)}"; }\n`));
  await new Promise<void>((r) => pac.listen(0, '127.0.0.1', r));
  const pacUrl = `http://127.0.0.1:${(pac.address() as AddressInfo).port}/proxy.pac`;
  const lab = await startLabOrg({ allowLabSignIn: true });
  const rootCa = path.join(dir, 'root.pem');
  fs.writeFileSync(rootCa, lab.rootCaPem);
  const krb5 = path.join(dir, 'krb5.conf');
  fs.writeFileSync(krb5, '# no realm\n');
  const home = path.join(dir, 'home');
  const env = { ...(process.env as Record<string, string>), HOME: home, USER: 'alice', KRB5_CONFIG: krb5, DTA_MANAGED_CONFIG_DIR: path.join(home, 'managed'), DTA_PLATFORM_LOG: 'off' };
  const timeoutMs = DEFAULT_HEALTH_POLICY.timeoutMs;
  const base = { orgUrl: lab.orgUrl, tlsCaFile: rootCa, browserPolicyDirs: [path.join(home, 'policy')], labSignIn: 'true', requestTimeoutMs: String(timeoutMs) };
  const rows: (string | number)[][] = [];
  try {
    // Enrolled directly first: the org's answer is cached, so every probe runs at once behind the proxy.
    const direct = loadConfig({ env, cli: base });
    await runPass({ loaded: direct, platform: createLinuxPlatform(direct.config), context: testContext(), side: 'user', force: false, trace: new Trace(undefined) });
    for (const [label, extra] of [['explicit proxy', { httpProxy: proxyUrl }], ['PAC file → proxy', { httpProxyPacLocation: pacUrl }]] as const) {
      const loaded = loadConfig({ env, cli: { ...base, ...extra } });
      const walls: number[] = [];
      const checks: number[] = [];
      for (let i = 0; i < 3; i++) {
        const t0 = performance.now();
        await runDiagnostics({ loaded, context: testContext(), env, secrets: null, events: new EventLog(loaded.config.stateDir, 'bench', { sinks: [] }), recordOutcome: false });
        walls.push(performance.now() - t0);
        const t1 = performance.now();
        await proxyCheck(loaded.config, {}, env);
        checks.push(performance.now() - t1);
      }
      rows.push([`diagnose, blackholed ${label}: wall ms`, median(walls)], [`  wall / probe timeout ${timeoutMs} ms (goal ≤ 1.2)`, median(walls) / timeoutMs]);
      // The first run in this process pays the PAC worker's cold start (QuickJS compile, pac-resolver load).
      rows.push([`  first run (cold): wall / probe timeout (goal ≤ 1.2)`, walls[0]! / timeoutMs]);
      // As a user runs it: a new process (start-up and module loading included), from spawn to exit.
      const cli = await time(3, () => runCli(['diagnose', '--json', '--timeout', String(timeoutMs / 1000)], {
        ...env, DTA_ORG_URL: lab.orgUrl, DTA_TLS_CA_FILE: rootCa, DTA_LAB_SIGN_IN: 'true', DTA_BROWSER_POLICY_DIRS: path.join(home, 'policy'),
        ...('httpProxy' in extra ? { DTA_HTTP_PROXY: extra.httpProxy } : { DTA_PAC_URL: extra.httpProxyPacLocation }),
      }));
      rows.push([`  the CLI, spawn to exit: wall / probe timeout (goal ≤ 1.2)`, median(cli) / timeoutMs]);
      rows.push([`proxy-check, blackholed ${label}: wall ms`, median(checks)], [`  wall / request timeout ${timeoutMs} ms (goal ≤ 1.2)`, median(checks) / timeoutMs]);
    }
  } finally {
    for (const s of held) s.destroy();
    blackhole.close();
    pac.close();
    await lab.close();
  }
  const start = await time(3, () => runCli(['--version'], env));
  rows.push(['for reference: the CLI\'s start-up (--version), spawn to exit, ms', median(start)]);
  table('diagnose and proxy-check behind a proxy that accepts TCP and never answers (median of 3)', ['measure', 'value'], rows);
}
