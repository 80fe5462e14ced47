import type { EventLog } from '../events.js';
import { HealthMonitor, type HealthPolicy, type TargetHealth, type Transition } from './health.js';
import { recordOutcome } from './run-diagnostics.js';
import type { DiagnoseReport } from './types.js';

export interface WatchCycleResult {
  /** The first run's report, with every target's health after this cycle. */
  report: DiagnoseReport;
  /** The health transitions this cycle caused (all of them, the quiet UNKNOWN → ONLINE ones included). */
  transitions: Transition[];
  /** The sorted finding codes, comma-separated ('' for none). */
  codes: string;
  /** Whether the findings differ from the previous cycle's (always true on the first cycle). */
  findingsChanged: boolean;
}

export interface WatchCycleOptions {
  /** Called before each re-check of the failed targets (the dashboard shows it as a progress step). */
  onRetry?: (attempt: number, of: number) => void;
  /** Asked before each re-check: a stopping `diagnose --watch` does not wait for them. */
  stop?: () => boolean;
}

/**
 * One cycle of watching the org's dependencies, the same for `diagnose --watch` and the dashboard: a
 * diagnostics run; the failed targets checked again (up to the policy's maxRetries) before a failure counts —
 * a target is good if any attempt was; the health model moves each target (DEGRADED, then OFFLINE after the
 * failure threshold); transitions other than a target's first ONLINE, and findings that changed, go to the
 * event log. The caller says how to run diagnostics and where the events go, and shows the result.
 */
export class DiagnoseWatch {
  private readonly monitor: HealthMonitor;
  private lastCodes: string | undefined;

  constructor(policy: HealthPolicy, now?: () => number) {
    this.monitor = new HealthMonitor(policy, now);
  }

  get policy(): HealthPolicy {
    return this.monitor.policy;
  }

  target(id: string): TargetHealth {
    return this.monitor.target(id);
  }

  async cycle(diagnose: () => Promise<DiagnoseReport>, events: EventLog, opts: WatchCycleOptions = {}): Promise<WatchCycleResult> {
    const report = await diagnose();
    const ok = new Map(report.probes.filter((p) => p.status !== 'skipped').map((p) => [p.id, p.status === 'ok']));
    const retries = this.policy.maxRetries;
    for (let r = 0; r < retries && [...ok.values()].some((v) => !v) && !opts.stop?.(); r++) {
      opts.onRetry?.(r + 1, retries);
      const again = await diagnose();
      for (const p of again.probes) if (ok.get(p.id) === false && p.status === 'ok') ok.set(p.id, true);
    }
    const transitions: Transition[] = [];
    for (const p of report.probes.filter((x) => x.status !== 'skipped')) transitions.push(...this.monitor.observe(p.id, ok.get(p.id) ?? false, p.ms, p.error?.message ?? ''));
    for (const t of transitions.filter((x) => x.from !== 'UNKNOWN' || x.to !== 'ONLINE')) {
      const kind = t.to === 'OFFLINE' ? 'TARGET_OFFLINE' : t.to === 'DEGRADED' ? 'TARGET_DEGRADED' : 'TARGET_ONLINE';
      events.record(kind, `${t.target}: ${t.from} → ${t.to} (${t.reason}).`, { target: t.target, from: t.from, to: t.to });
    }
    const codes = report.findings.map((f) => f.code).sort().join(',');
    const findingsChanged = codes !== this.lastCodes;
    if (findingsChanged) recordOutcome(events, report);
    this.lastCodes = codes;
    return { report: { ...report, health: this.monitor.snapshots() }, transitions, codes, findingsChanged };
  }
}
