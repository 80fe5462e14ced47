import fs from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../../base/fsutil.js';
import { AGENT_VERSION } from '../../base/version.js';
import type { LoadedConfig } from '../config.js';
import { CredentialFiles } from '../certificates/credentials.js';
import { EVENTS, EventLog } from '../events.js';
import type { EventSinks } from '../context.js';
import { namedState } from '../scheduler/plan.js';
import { DEFAULT_POLICY } from '../scheduler/policy.js';
import { emptyRecord } from '../scheduler/record.js';
import { certFacts, probeConfig } from '../scheduler/store.js';
import { StateSchema, stateFile, type AgentState } from '../state/state.js';
import { renderAgentMetrics, type KeyProtection, type MetricsInput, type OutcomeClass, type PostureCheckResult } from './metrics.js';

export const METRICS_FILE = 'device_trust_agent.prom';
/** The writer's own small record in the state directory: when the state began, and what was warned about. */
const SIDECAR = 'metrics-state.json';

/** Reads state.json without side effects (loadState moves a corrupt file aside; metrics must not). */
function readStateRaw(stateDir: string): { state?: AgentState; raw: Record<string, unknown> } {
  try {
    const raw = JSON.parse(fs.readFileSync(stateFile(stateDir), 'utf8')) as Record<string, unknown>;
    const parsed = StateSchema.safeParse(raw);
    return { ...(parsed.success ? { state: parsed.data } : {}), raw: raw && typeof raw === 'object' ? raw : {} };
  } catch {
    return { raw: {} };
  }
}

/** Key protection from whatever field the state carries (read defensively: other code adds it). */
export function keyProtectionFrom(raw: Record<string, unknown>, softwareKeyPresent: boolean): KeyProtection {
  const cur = (raw.current && typeof raw.current === 'object' ? raw.current : {}) as Record<string, unknown>;
  const key = (cur.key && typeof cur.key === 'object' ? cur.key : {}) as Record<string, unknown>;
  const v = [raw.keyProtection, cur.keyProtection, key.protection, cur.keyStorage].find((x) => typeof x === 'string') as string | undefined;
  if (v) {
    if (/tpm|pkcs11|hardware|secure.?enclave/i.test(v)) return 'tpm';
    if (/keychain|cng|os|store|keyring|capi/i.test(v)) return 'os_store';
    if (/software|file|pem/i.test(v)) return 'software';
    return 'unknown';
  }
  return softwareKeyPresent ? 'software' : 'unknown';
}

/** Posture results the state may carry (`posture: [{check, result}]` or `posture: {checks: […]}`). */
export function postureFrom(raw: Record<string, unknown>): PostureCheckResult[] | undefined {
  const p = raw.posture as unknown;
  const list = Array.isArray(p) ? p : p && typeof p === 'object' && Array.isArray((p as { checks?: unknown }).checks) ? (p as { checks: unknown[] }).checks : undefined;
  if (!list) return undefined;
  const out: PostureCheckResult[] = [];
  for (const c of list) {
    if (!c || typeof c !== 'object') continue;
    const o = c as Record<string, unknown>;
    const check = [o.check, o.name, o.id].find((x) => typeof x === 'string') as string | undefined;
    const result = [o.result, o.status].find((x) => typeof x === 'string') ?? (typeof o.ok === 'boolean' ? (o.ok ? 'pass' : 'fail') : undefined);
    if (check && typeof result === 'string') out.push({ check, result });
  }
  return out;
}

function outcomeClass(outcome: string, failure: string | undefined): OutcomeClass {
  if (outcome === 'nothing-to-do') return 'nothing_to_do';
  if (outcome !== 'failed') return 'success';
  switch (failure) {
    case 'retry-later':
      return 'retry_later';
    case 'rejected':
      return 'rejected';
    case 'bad-answer':
      return 'bad_answer';
    case 'local':
      return 'local';
    case 'config':
      return 'config';
    default:
      return 'internal';
  }
}

interface Sidecar {
  state?: string;
  since?: string;
  warned?: string;
}

function readSidecar(stateDir: string): Sidecar {
  try {
    return JSON.parse(fs.readFileSync(path.join(stateDir, SIDECAR), 'utf8')) as Sidecar;
  } catch {
    return {};
  }
}

function saveSidecar(stateDir: string, s: Sidecar): void {
  try {
    writeFileAtomic(path.join(stateDir, SIDECAR), `${JSON.stringify(s)}\n`);
  } catch {
    /* best effort: only "since" precision and the once-only warning depend on it */
  }
}

const SEC = (ms: number) => Math.floor(ms / 1000);
const isoSec = (s: string | undefined) => (s && Number.isFinite(Date.parse(s)) ? SEC(Date.parse(s)) : undefined);

/** Gathers the metrics of one state directory. `persistSince` records when the named state began. */
export function collectMetrics(loaded: LoadedConfig, opts: { now?: number; persistSince?: boolean; posture?: PostureCheckResult[] } = {}): MetricsInput {
  const now = opts.now ?? Date.now();
  const { config } = loaded;
  const { state, raw } = readStateRaw(config.stateDir);
  const st: AgentState = state ?? { version: 1, deviceId: '00000000-0000-4000-8000-000000000000', createdAt: new Date(now).toISOString() };
  // The settled state (as after the pass), not "CHECKING": the engine calls this while it still holds the lock.
  const policy = DEFAULT_POLICY;
  const record = st.schedule ?? emptyRecord();
  const probe = probeConfig(() => loaded);
  const named = namedState(policy, { record, cert: certFacts(st, policy.defaultWindowMs), configured: probe.configured, configFingerprint: probe.fingerprint }, now);
  const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());
  const view = { state: named.state, stuck: named.stuck, failures: named.failures, renewAt: iso(named.renewAt), nextAttempt: named.next ? { at: iso(named.next.at) } : undefined,
    lastPass: record.lastPass, lastSuccessAt: record.lastSuccessAt };
  const side = readSidecar(config.stateDir);
  const since = side.state === view.state && side.since ? side.since : new Date(now).toISOString();
  if (side.state !== view.state && opts.persistSince) saveSidecar(config.stateDir, { ...side, state: view.state, since });

  const cur = st.current;
  const notAfter = cur ? Date.parse(cur.notAfter) : NaN;
  const trusted = Boolean(cur) && notAfter > now && !['REVOKED', 'KEY_MISSING', 'EXPIRED', 'REJECTED'].includes(view.state);
  const renewAt = isoSec(view.renewAt) ?? isoSec(cur?.renewFrom);
  const softwareKey = cur ? new CredentialFiles(config.stateDir).readKeyPem(cur.thumbprint) !== undefined : false;

  const targets = new Map<string, string>();
  try {
    const ids = [EVENTS.TARGET_ONLINE.id, EVENTS.TARGET_DEGRADED.id, EVENTS.TARGET_OFFLINE.id];
    for (const e of new EventLog(config.stateDir, undefined, { sinks: [] }).query({ ids })) {
      const t = e.data?.target;
      const to = e.data?.to;
      if (typeof t === 'string' && typeof to === 'string') targets.set(t, to);
    }
  } catch {
    /* no event log yet */
  }
  const lp = view.lastPass;
  const posture = opts.posture ?? postureFrom(raw);
  return {
    version: AGENT_VERSION,
    backend: config.backend,
    task: 'user',
    state: view.state,
    stuck: view.stuck,
    ...(isoSec(since) !== undefined ? { stateSinceSeconds: isoSec(since)! } : {}),
    trusted,
    ...(cur ? { certificate: { notBeforeSeconds: SEC(Date.parse(cur.notBefore)), notAfterSeconds: SEC(notAfter), ...(renewAt !== undefined ? { renewAtSeconds: renewAt } : {}) } } : {}),
    ...(cur ? { keyProtection: keyProtectionFrom(raw, softwareKey) } : {}),
    ...(lp ? { lastPass: { atSeconds: SEC(Date.parse(lp.at)), outcomeClass: outcomeClass(lp.outcome, lp.failure) } } : {}),
    ...(isoSec(view.lastSuccessAt) !== undefined ? { lastSuccessSeconds: isoSec(view.lastSuccessAt)! } : {}),
    ...(isoSec(view.nextAttempt?.at) !== undefined ? { nextAttemptSeconds: isoSec(view.nextAttempt?.at)! } : {}),
    consecutiveFailures: view.failures,
    targets: [...targets].map(([target, s]) => ({ target, state: s })),
    ...(posture && posture.length ? { posture } : {}),
  };
}

export function metricsText(loaded: LoadedConfig, opts: { now?: number; persistSince?: boolean } = {}): string {
  return renderAgentMetrics(collectMetrics(loaded, opts));
}

export type WriteOutcome = { written: string } | { skipped: 'off' } | { failed: string; warnedNow: boolean };

/**
 * Writes device_trust_agent.prom atomically (temp file + rename in the same directory; node_exporter reads
 * only *.prom, so it never sees a half-written file). The directory is not created: a missing one means
 * node_exporter is not installed. A failure is reported once per directory and reason (event 1250), never
 * thrown.
 */
export function writeMetricsFile(loaded: LoadedConfig, sinks: EventSinks, opts: { now?: number } = {}): WriteOutcome {
  const { config } = loaded;
  const dir = config.metricsDir;
  if (/^(off|none|false|no|0)$/i.test(dir)) return { skipped: 'off' };
  const side = () => readSidecar(config.stateDir);
  try {
    const text = metricsText(loaded, { ...opts, persistSince: true });
    let st: fs.Stats;
    try {
      st = fs.statSync(dir);
    } catch {
      throw Object.assign(new Error(`the directory ${dir} does not exist (is prometheus-node-exporter installed?)`), { code: 'ENOENT' });
    }
    if (!st.isDirectory()) throw Object.assign(new Error(`${dir} is not a directory`), { code: 'ENOTDIR' });
    const file = path.join(dir, METRICS_FILE);
    writeFileAtomic(file, text, 0o644);
    const s = side();
    if (s.warned) saveSidecar(config.stateDir, { ...s, warned: undefined });
    return { written: file };
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const key = `${dir}|${err.code ?? 'ERR'}`;
    const s = side();
    const warnedNow = s.warned !== key;
    if (warnedNow) {
      saveSidecar(config.stateDir, { ...s, warned: key });
      try {
        new EventLog(config.stateDir, 'user', { sinks }).record('METRICS_UNWRITABLE',
          `The Prometheus metrics file could not be written to ${dir}: ${err.message}. Passes are not affected; set metricsDir (DTA_METRICS_DIR) to node_exporter's --collector.textfile.directory, make it writable for this user, or set it to "off". This is reported once.`,
          { dir, code: err.code ?? null });
      } catch {
        /* the warning is best effort */
      }
    }
    return { failed: err.message, warnedNow };
  }
}

/** The engine's hook: never throws, never slows a pass noticeably (a few small file reads and one rename). */
export function writeMetricsAfterPass(loadConfig: () => LoadedConfig, _stateDir: string, sinks: EventSinks): void {
  try {
    writeMetricsFile(loadConfig(), sinks);
  } catch {
    /* configuration unreadable: nothing to write */
  }
}
