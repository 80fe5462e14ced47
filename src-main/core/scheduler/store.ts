import crypto from 'node:crypto';
import fs from 'node:fs';
import { backendConfigured } from '../backends/configured.js';
import type { LoadedConfig } from '../config.js';
import { isAgentError } from '../../base/errors.js';
import { loadState, saveState, stateFile, type AgentState } from '../state/state.js';
import type { ScheduleStore } from './pass-engine.js';
import type { CertFacts, Snapshot } from './plan.js';
import { DEFAULT_POLICY, type SchedulePolicy } from './policy.js';
import { findClockAnomalies, repairRecord, repairTimes, type ClockAnomaly } from './anomaly.js';
import { emptyRecord, type ScheduleRecord } from './record.js';

/** What the configuration says right now, reduced to what scheduling needs. */
export interface ConfigProbe {
  configured: boolean;
  /** Changes whenever the effective configuration changes (or its error does). */
  fingerprint: string;
}

export function probeConfig(load: () => LoadedConfig): ConfigProbe {
  try {
    const loaded = load();
    return { configured: backendConfigured(loaded), fingerprint: hash(JSON.stringify(loaded.config)) };
  } catch (e) {
    return { configured: false, fingerprint: hash(`error:${isAgentError(e) ? e.code : ''}:${(e as Error).message}`) };
  }
}

function hash(s: string): string {
  return crypto.createHash('sha256').update(s).digest('hex').slice(0, 16);
}

export function certFacts(state: AgentState, defaultWindowMs = DEFAULT_POLICY.defaultWindowMs): CertFacts | undefined {
  const c = state.current;
  if (!c) return undefined;
  const notAfter = Date.parse(c.notAfter);
  return { sha256: c.sha256, serialNumber: c.serialNumber, notAfter, windowStart: c.renewFrom ? Date.parse(c.renewFrom) : notAfter - defaultWindowMs };
}

/**
 * The schedule record lives in state.json beside the agent's record of its certificate, so one atomic
 * write keeps them in agreement. A corrupt state file is moved aside by loadState and reported; the next
 * pass rebuilds the certificate record from the store, and the renewal moment (derived from the
 * certificate itself) comes back unchanged.
 */
export class StateFileStore implements ScheduleStore {
  private lastProbe: { at: number; probe: ConfigProbe } | undefined;

  /**
   * `probeEveryMs`: how stale the configuration may be between passes. Reading it can cost process
   * launches (Windows reads the registry with reg.exe), so the per-minute tick does not re-read it each time.
   */
  constructor(
    private readonly stateDir: string,
    private readonly probeConfig: () => ConfigProbe,
    private readonly onRecovered?: (movedTo: string) => void,
    private readonly probeEveryMs = 5 * 60_000,
    private readonly now: () => number = Date.now,
    private readonly policy: SchedulePolicy = DEFAULT_POLICY,
  ) {}

  repairClock(now: number): ClockAnomaly[] {
    const { state, recoveredFrom } = loadState(this.stateDir);
    if (recoveredFrom) this.onRecovered?.(recoveredFrom);
    const record = state.schedule ?? emptyRecord();
    const found = findClockAnomalies(this.policy, record, now, state);
    if (found.length) saveState(this.stateDir, { ...repairTimes(state, now), schedule: repairRecord(record, found, now) });
    return found;
  }

  private probe(fresh: boolean): ConfigProbe {
    const now = this.now();
    if (fresh || !this.lastProbe || now - this.lastProbe.at >= this.probeEveryMs || now < this.lastProbe.at) {
      this.lastProbe = { at: now, probe: this.probeConfig() };
    }
    return this.lastProbe.probe;
  }

  load(): Snapshot {
    const { state, recoveredFrom } = loadState(this.stateDir);
    if (recoveredFrom) this.onRecovered?.(recoveredFrom);
    const p = this.probe(true);
    return { record: state.schedule ?? emptyRecord(), cert: certFacts(state), configured: p.configured, configFingerprint: p.fingerprint };
  }

  save(record: ScheduleRecord): void {
    const { state, recoveredFrom } = loadState(this.stateDir);
    if (recoveredFrom) this.onRecovered?.(recoveredFrom);
    saveState(this.stateDir, { ...state, schedule: record });
  }

  changeToken(): string {
    let st = 'none';
    try {
      const s = fs.statSync(stateFile(this.stateDir));
      st = `${s.mtimeMs}:${s.size}:${s.ino}`;
    } catch {
      /* no state yet */
    }
    return `${st}|${this.probe(false).fingerprint}`;
  }
}
