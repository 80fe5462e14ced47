/**
 * Bench section: the fleet's metrics. 10,000 simulated agents each render their device_trust_agent.prom
 * (the real renderer, src-main/core/fleet/metrics.ts) from a realistic mix of states: 98.5 % ENROLLED,
 * 1 % stuck for more than a day (org unreachable, IWA unreachable, revoked, key missing), 0.5 % recently
 * failing. Reports bytes and series per host (what one node_exporter scrape carries), the fleet's totals,
 * the render time, and checks that the alert expression of docs/monitoring/device-trust-agent.rules.yml
 * (evaluated here over the same samples) finds exactly the stuck 1 %. Reports; asserts nothing.
 */
import { renderAgentMetrics, type MetricsInput } from '../../src-main/core/fleet/metrics.js';
import type { AgentStateName } from '../../src-main/core/scheduler/states.js';
import { seededRandom } from '../support/random.js';
import { median, table } from './util.js';

const N = Number(process.env.DTA_BENCH_FLEET ?? 10_000);
const NOW = Date.parse('2026-06-01T12:00:00Z') / 1000;
const DAY = 86_400;
const TARGETS = ['org', 'iwa-primary', 'iwa-backup', 'kdc', 'proxy', 'mtls'];

function agent(i: number, rnd: () => number): { input: MetricsInput; stuck: boolean } {
  const r = rnd();
  const stuckStates: AgentStateName[] = ['ORG_UNREACHABLE', 'IWA_UNREACHABLE', 'REVOKED', 'KEY_MISSING'];
  let state: AgentStateName = 'ENROLLED';
  let since = NOW - rnd() * 200 * DAY;
  let stuck = false;
  if (r < 0.01) {
    state = stuckStates[i % stuckStates.length]!;
    since = NOW - (1.2 + rnd() * 10) * DAY;
    stuck = true;
  } else if (r < 0.015) {
    state = 'ORG_UNREACHABLE';
    since = NOW - rnd() * 0.9 * DAY; // failing, but not for a day yet: not an alert
  }
  const notAfter = NOW + (30 + rnd() * 300) * DAY;
  return {
    stuck,
    input: {
      version: '0.1.0', backend: 'idp', task: 'user', state, stuck: state === 'REVOKED' || state === 'KEY_MISSING', stateSinceSeconds: Math.floor(since),
      trusted: state !== 'REVOKED' && state !== 'KEY_MISSING',
      certificate: { notBeforeSeconds: Math.floor(notAfter - 365 * DAY), notAfterSeconds: Math.floor(notAfter), renewAtSeconds: Math.floor(notAfter - 12 * DAY) },
      keyProtection: i % 3 === 0 ? 'tpm' : 'software',
      lastPass: { atSeconds: Math.floor(NOW - rnd() * DAY), outcomeClass: state === 'ENROLLED' ? 'nothing_to_do' : 'retry_later' },
      lastSuccessSeconds: Math.floor(NOW - rnd() * DAY),
      nextAttemptSeconds: Math.floor(NOW + rnd() * DAY),
      consecutiveFailures: state === 'ENROLLED' ? 0 : 3,
      targets: TARGETS.map((t) => ({ target: t, state: state === 'ORG_UNREACHABLE' && t === 'org' ? 'OFFLINE' : 'ONLINE' })),
      posture: [{ check: 'disk_encryption', result: 'pass' }, { check: 'firewall', result: 'pass' }, { check: 'os_up_to_date', result: rnd() < 0.05 ? 'fail' : 'pass' }],
    },
  };
}

/** The alert's PromQL, evaluated over one host's text: state not ENROLLED/RENEWAL_DUE for more than 24 h. */
function alertFires(text: string): boolean {
  const active = /^device_trust_agent_state\{state="([A-Z_]+)"\} 1$/m.exec(text)?.[1];
  const since = Number(/^device_trust_agent_state_since_timestamp_seconds (\d+)$/m.exec(text)?.[1]);
  return active !== undefined && !['ENROLLED', 'RENEWAL_DUE'].includes(active) && NOW - since > DAY;
}

export default async function metricsBench(): Promise<void> {
  const rnd = seededRandom(15);
  const fleet = Array.from({ length: N }, (_, i) => agent(i, rnd));
  const sizes: number[] = [];
  const series: number[] = [];
  const times: number[] = [];
  let found = 0;
  let truePositives = 0;
  for (const a of fleet) {
    const t0 = performance.now();
    const text = renderAgentMetrics(a.input);
    times.push((performance.now() - t0) * 1000);
    sizes.push(Buffer.byteLength(text));
    series.push(text.split('\n').filter((l) => l && !l.startsWith('#')).length);
    if (alertFires(text)) {
      found++;
      if (a.stuck) truePositives++;
    }
  }
  const stuck = fleet.filter((a) => a.stuck).length;
  const mb = (b: number) => `${(b / 1024 / 1024).toFixed(1)} MiB`;
  table(`Metrics per host and for a fleet of ${N.toLocaleString('en')} agents`, ['measure', 'value', 'goal'], [
    ['bytes per host (median)', median(sizes), '≤ 12 KiB (a small fraction of node_exporter\'s own ~100 KiB)'],
    ['series per host (median)', median(series), '≤ 100'],
    ['series in the fleet', series.reduce((a, b) => a + b, 0).toLocaleString('en'), '≤ 1,000,000 (one mid-size Prometheus)'],
    ['bytes per fleet scrape cycle', mb(sizes.reduce((a, b) => a + b, 0)), ''],
    ['render time per host (median, µs)', median(times).toFixed(1), '≤ 1000'],
    [`stuck agents (simulated)`, `${stuck} (${((stuck / N) * 100).toFixed(2)} %)`, ''],
    ['found by the DeviceTrustAgentStuck expression', `${found} (${truePositives} true)`, `= ${stuck}, no false positives`],
  ]);
}
