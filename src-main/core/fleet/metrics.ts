/**
 * Prometheus metrics for node_exporter's textfile collector (and `device-trust-agent metrics`).
 *
 * Hand-written exposition (text format 0.0.4) instead of prom-client: the agent exposes a few dozen gauges
 * that it computes once per pass, never serves them and never keeps them in memory between passes, so a
 * registry with collectors, default process metrics and histograms buys nothing; what must be right is the
 * escaping, which `escapeLabelValue`/`escapeHelp` do and the tests (and `promtool check metrics`) check.
 *
 * Cardinality is bounded by construction: label values come from closed sets (states, outcome classes, key
 * protection kinds, health states, posture results) or from short lists the agent defines (diagnostics
 * targets, posture check names), never from serial numbers, user or host names.
 */
import { AGENT_STATES, type AgentStateName } from '../scheduler/states.js';

export const METRIC_PREFIX = 'device_trust_agent';

export type Labels = Record<string, string>;
export interface Sample {
  labels?: Labels;
  value: number;
}
export interface MetricFamily {
  name: string;
  help: string;
  type: 'gauge' | 'counter' | 'untyped';
  samples: Sample[];
}

/** Label values: backslash, double quote and line feed are escaped (exposition format). */
export function escapeLabelValue(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** HELP text: backslash and line feed are escaped. */
export function escapeHelp(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

/** Renders families in the text exposition format; names and label names are checked, values escaped. */
export function renderExposition(families: MetricFamily[]): string {
  const out: string[] = [];
  for (const f of families) {
    if (!NAME.test(f.name)) throw new Error(`invalid metric name ${f.name}`);
    if (f.samples.length === 0) continue;
    out.push(`# HELP ${f.name} ${escapeHelp(f.help)}`, `# TYPE ${f.name} ${f.type}`);
    for (const s of f.samples) {
      const labels = Object.entries(s.labels ?? {});
      for (const [k] of labels) if (!LABEL.test(k) || k.startsWith('__')) throw new Error(`invalid label name ${k}`);
      const l = labels.length ? `{${labels.map(([k, v]) => `${k}="${escapeLabelValue(v)}"`).join(',')}}` : '';
      out.push(`${f.name}${l} ${formatValue(s.value)}`);
    }
  }
  return out.length ? `${out.join('\n')}\n` : '';
}

// --- the agent's metric families ---

export const OUTCOME_CLASSES = ['success', 'nothing_to_do', 'retry_later', 'rejected', 'bad_answer', 'local', 'config', 'internal'] as const;
export type OutcomeClass = (typeof OUTCOME_CLASSES)[number];
export const KEY_PROTECTIONS = ['tpm', 'os_store', 'software', 'unknown'] as const;
export type KeyProtection = (typeof KEY_PROTECTIONS)[number];
export const HEALTH_STATES = ['UNKNOWN', 'ONLINE', 'DEGRADED', 'OFFLINE'] as const;

/**
 * Posture checks (issue "posture"): the metric names are fixed here so dashboards and alerts do not depend on
 * who computes the results. `postureFamilies` takes the list of {check, result} the posture code produces.
 */
export const POSTURE_METRICS = {
  result: `${METRIC_PREFIX}_posture_check_result`,
  failing: `${METRIC_PREFIX}_posture_checks_failing`,
} as const;
export const POSTURE_RESULTS = ['pass', 'fail', 'unknown'] as const;
export interface PostureCheckResult {
  check: string;
  result: string;
}
/** At most this many checks are exported (a bound on cardinality whatever the caller passes). */
export const MAX_POSTURE_CHECKS = 32;
export const MAX_TARGETS = 16;

/** A check name as a label value: short, lower case, [a-z0-9_.-] only. */
export function labelToken(s: string, max = 48): string {
  return s.toLowerCase().replace(/[^a-z0-9_.-]+/g, '_').replace(/^_+|_+$/g, '').slice(0, max) || 'unnamed';
}

function normalizeResult(r: string): (typeof POSTURE_RESULTS)[number] {
  const v = r.toLowerCase();
  if (/^(pass|passed|ok|true|compliant|yes)$/.test(v)) return 'pass';
  if (/^(fail|failed|false|noncompliant|non-compliant|no)$/.test(v)) return 'fail';
  return 'unknown';
}

export function postureFamilies(checks: readonly PostureCheckResult[] | undefined): MetricFamily[] {
  if (!checks || checks.length === 0) return [];
  const seen = new Map<string, (typeof POSTURE_RESULTS)[number]>();
  for (const c of checks) {
    if (seen.size >= MAX_POSTURE_CHECKS) break;
    if (c && typeof c.check === 'string' && typeof c.result === 'string') seen.set(labelToken(c.check), normalizeResult(c.result));
  }
  const samples: Sample[] = [];
  for (const [check, result] of seen) for (const r of POSTURE_RESULTS) samples.push({ labels: { check, result: r }, value: r === result ? 1 : 0 });
  return [
    { name: POSTURE_METRICS.result, help: 'Device posture check result (one-hot over pass, fail, unknown).', type: 'gauge', samples },
    { name: POSTURE_METRICS.failing, help: 'Number of device posture checks failing.', type: 'gauge', samples: [{ value: [...seen.values()].filter((r) => r === 'fail').length }] },
  ];
}

/** Everything the metrics say, gathered from state.json, the schedule and the event log (metrics-writer.ts). */
export interface MetricsInput {
  version: string;
  backend: string;
  task: string;
  state: AgentStateName;
  stuck: boolean;
  /** When the agent entered `state` (seconds since the epoch). */
  stateSinceSeconds?: number;
  trusted: boolean;
  certificate?: { notBeforeSeconds: number; notAfterSeconds: number; renewAtSeconds?: number };
  keyProtection?: KeyProtection;
  lastPass?: { atSeconds: number; outcomeClass: OutcomeClass };
  lastSuccessSeconds?: number;
  nextAttemptSeconds?: number;
  consecutiveFailures: number;
  targets: { target: string; state: string }[];
  posture?: PostureCheckResult[];
}

const g = (name: string, help: string, samples: Sample[]): MetricFamily => ({ name: `${METRIC_PREFIX}_${name}`, help, type: 'gauge', samples });
const one = (value: number | undefined): Sample[] => (value === undefined || !Number.isFinite(value) ? [] : [{ value }]);

export function agentFamilies(m: MetricsInput): MetricFamily[] {
  const targets = m.targets.slice(0, MAX_TARGETS).map((t) => ({ target: labelToken(t.target), state: t.state }));
  return [
    g('info', 'Agent version, enrollment backend and task (always 1).', [{ labels: { version: m.version, backend: m.backend, task: m.task }, value: 1 }]),
    g('state', 'The agent\'s named state (one-hot).', Object.keys(AGENT_STATES).map((s) => ({ labels: { state: s }, value: s === m.state ? 1 : 0 }))),
    g('state_since_timestamp_seconds', 'When the agent entered its current named state.', one(m.stateSinceSeconds)),
    g('stuck', '1 when the agent is in a state it will not leave without a person.', [{ value: m.stuck ? 1 : 0 }]),
    g('trusted', '1 when a valid device certificate is installed and usable (not expired, revoked or keyless).', [{ value: m.trusted ? 1 : 0 }]),
    g('certificate_present', '1 when the agent holds a device certificate.', [{ value: m.certificate ? 1 : 0 }]),
    g('certificate_not_before_seconds', 'Device certificate notBefore (seconds since the epoch).', one(m.certificate?.notBeforeSeconds)),
    g('certificate_not_after_seconds', 'Device certificate notAfter (seconds since the epoch).', one(m.certificate?.notAfterSeconds)),
    g('certificate_renewal_timestamp_seconds', 'The moment the agent renews the certificate (seconds since the epoch).', one(m.certificate?.renewAtSeconds)),
    g('key_protection', 'Where the device key is kept (one-hot: tpm, os_store, software, unknown).',
      m.certificate ? KEY_PROTECTIONS.map((k) => ({ labels: { protection: k }, value: k === (m.keyProtection ?? 'unknown') ? 1 : 0 })) : []),
    g('last_pass_timestamp_seconds', 'When the last registration pass ended.', one(m.lastPass?.atSeconds)),
    g('last_pass_outcome', 'Outcome class of the last pass (one-hot).', m.lastPass ? OUTCOME_CLASSES.map((c) => ({ labels: { class: c }, value: c === m.lastPass!.outcomeClass ? 1 : 0 })) : []),
    g('last_success_timestamp_seconds', 'When a pass last succeeded.', one(m.lastSuccessSeconds)),
    g('next_attempt_timestamp_seconds', 'When the scheduler runs the next pass.', one(m.nextAttemptSeconds)),
    g('consecutive_failures', 'Failed passes in a row.', [{ value: m.consecutiveFailures }]),
    g('target_health', 'Health state of each diagnostics target (one-hot over UNKNOWN, ONLINE, DEGRADED, OFFLINE).',
      targets.flatMap((t) => HEALTH_STATES.map((h) => ({ labels: { target: t.target, state: h }, value: h === t.state ? 1 : 0 })))),
    ...postureFamilies(m.posture),
  ];
}

export function renderAgentMetrics(m: MetricsInput): string {
  return renderExposition(agentFamilies(m));
}
