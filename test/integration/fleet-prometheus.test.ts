/**
 * The fleet view through engines admins already run: the agent's textfile is read by Debian's real
 * prometheus-node-exporter (textfile collector) and scraped by a real Prometheus on loopback; the test asks
 * Prometheus' HTTP API for the device's expiry and state after an enrollment and after a failure.
 * `promtool check metrics` and `promtool check rules` (the shipped alert rules) must pass.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startLabOrg, type LabOrg } from '../../lab/org.js';
import { makeProfile, REPO, runAgent, tempDir, writeRootCa, type Profile } from '../support/agent.js';
import { haveCommand, readIf, startDaemon, type Daemon } from '../support/fleet.js';
import { freePort } from '../support/net.js';
import { readState } from '../support/state.js';
import { waitFor } from '../support/wait.js';

const NODE_EXPORTER = 'prometheus-node-exporter';
const missing = ['prometheus', NODE_EXPORTER, 'promtool'].filter((c) => !haveCommand(c));

describe('Prometheus (real node_exporter + Prometheus on loopback) sees the device', { skip: missing.length ? `skipped: ${missing.join(', ')} not installed (apt-get install prometheus prometheus-node-exporter)` : false }, () => {
  let lab: LabOrg;
  let profile: Profile;
  let metricsDir: string;
  let exporter: Daemon;
  let prom: Daemon;
  let promUrl: string;

  /** The value of an instant query's only series, once Prometheus has scraped it. */
  async function query(q: string): Promise<number | undefined> {
    const res = await fetch(`${promUrl}/api/v1/query?query=${encodeURIComponent(q)}`);
    const body = (await res.json()) as { status: string; data: { result: { value: [number, string] }[] } };
    if (body.status !== 'success' || body.data.result.length !== 1) return undefined;
    return Number(body.data.result[0]!.value[1]);
  }
  const until = (q: string, expected: number) => waitFor(`${q} == ${expected} in Prometheus`, async () => ((await query(q)) === expected ? true : undefined), 40_000, 500);

  before(async () => {
    lab = await startLabOrg({ allowLabSignIn: true });
    metricsDir = tempDir('textfile');
    profile = makeProfile({ orgUrl: lab.orgUrl, rootCaFile: writeRootCa(lab.rootCaPem), extraEnv: { DTA_LAB_SIGN_IN: 'true', DTA_METRICS_DIR: metricsDir, DTA_PLATFORM_LOG: 'off' } });
    const exporterPort = await freePort();
    exporter = startDaemon(NODE_EXPORTER, [`--web.listen-address=127.0.0.1:${exporterPort}`, '--collector.disable-defaults', '--collector.textfile', `--collector.textfile.directory=${metricsDir}`]);
    const promDir = tempDir('prometheus');
    const promPort = await freePort();
    fs.writeFileSync(path.join(promDir, 'prometheus.yml'), `global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: node\n    static_configs:\n      - targets: ['127.0.0.1:${exporterPort}']\n`);
    prom = startDaemon('prometheus', [`--config.file=${path.join(promDir, 'prometheus.yml')}`, `--storage.tsdb.path=${path.join(promDir, 'data')}`, `--web.listen-address=127.0.0.1:${promPort}`]);
    promUrl = `http://127.0.0.1:${promPort}`;
    await waitFor('Prometheus to be ready', async () => ((await fetch(`${promUrl}/-/ready`)).ok ? true : undefined), 60_000).catch((e) => {
      throw new Error(`${(e as Error).message}\n${prom.output().slice(-2000)}\n${exporter.output().slice(-2000)}`);
    });
  });

  after(async () => {
    await Promise.all([prom?.stop(), exporter?.stop()]);
    await lab?.close();
  });

  test('after an enrollment Prometheus shows the certificate\'s expiry and the ENROLLED state; promtool accepts the file', async () => {
    const r = await runAgent(['run'], profile.env);
    assert.equal(r.code, 0, r.stderr);
    const file = path.join(metricsDir, 'device_trust_agent.prom');
    const text = readIf(file);
    assert.match(text, /^device_trust_agent_state\{state="ENROLLED"\} 1$/m);
    assert.deepEqual(fs.readdirSync(metricsDir), ['device_trust_agent.prom'], 'no temp file left behind');
    const lint = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    assert.equal(lint.status, 0, `promtool check metrics: ${lint.stdout}${lint.stderr}`);
    // `metrics` prints what the pass wrote.
    const printed = await runAgent(['metrics'], profile.env);
    assert.equal(printed.code, 0, printed.stderr);
    const pick = (t: string) => t.split('\n').filter((l) => /^device_trust_agent_(certificate_not_after_seconds|state\{|trusted)/.test(l)).join('\n');
    assert.equal(pick(printed.stdout), pick(text));

    const notAfter = Math.floor(Date.parse(readState(profile).current.notAfter) / 1000);
    await until('device_trust_agent_certificate_not_after_seconds', notAfter);
    await until('device_trust_agent_state{state="ENROLLED"}', 1);
    await until('device_trust_agent_trusted', 1);
    await until('device_trust_agent_last_pass_outcome{class="success"}', 1);
    await until('device_trust_agent_key_protection{protection="software"}', 1);
    assert.equal(await query('device_trust_agent_consecutive_failures'), 0);
    assert.equal(await query('device_trust_agent_info{backend="idp",version="0.1.0"}'), 1);
    // No serials or names as labels: every series' labels come from closed sets.
    const series = (await (await fetch(`${promUrl}/api/v1/series?match[]=${encodeURIComponent('{__name__=~"device_trust_agent_.*"}')}`)).json()) as { data: Record<string, string>[] };
    const serial = readState(profile).current.serialNumber as string;
    assert.ok(series.data.length > 20 && series.data.length < 80, `series per host: ${series.data.length}`);
    assert.ok(!JSON.stringify(series.data).includes(serial) && !JSON.stringify(series.data).includes('alice'));
  });

  test('after a failure Prometheus shows the state, the outcome class and the failure count', async () => {
    lab.switches.orgDown = true;
    try {
      const r = await runAgent(['run', '--forceRenewal'], profile.env);
      assert.equal(r.code, 20, r.stderr);
    } finally {
      lab.switches.orgDown = false;
    }
    await until('device_trust_agent_state{state="ORG_UNREACHABLE"}', 1);
    await until('device_trust_agent_consecutive_failures', 1);
    await until('device_trust_agent_last_pass_outcome{class="retry_later"}', 1);
    assert.equal(await query('device_trust_agent_state{state="ENROLLED"}'), 0);
    assert.equal(await query('device_trust_agent_trusted'), 1, 'the previous certificate is still valid and installed');
  });

  test('every query of the shipped Grafana dashboard runs on the real Prometheus', async () => {
    const dash = JSON.parse(fs.readFileSync(path.join(REPO, 'docs', 'monitoring', 'grafana-dashboard.json'), 'utf8')) as { panels: { title: string; targets: { expr: string }[] }[] };
    assert.ok(dash.panels.length >= 10);
    for (const p of dash.panels) {
      for (const t of p.targets) {
        const body = (await (await fetch(`${promUrl}/api/v1/query?query=${encodeURIComponent(t.expr)}`)).json()) as { status: string; error?: string };
        assert.equal(body.status, 'success', `${p.title}: ${t.expr}: ${body.error}`);
      }
    }
    assert.equal(await query('count(device_trust_agent_info)'), 1);
  });

  test('the shipped alert rules pass promtool check rules', () => {
    const rules = path.join(REPO, 'docs', 'monitoring', 'device-trust-agent.rules.yml');
    const r = spawnSync('promtool', ['check', 'rules', rules], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /SUCCESS: 4 rules found/);
  });
});
