/**
 * The main process's side of the dashboard, over the agent core: status, runs (one at a time, with
 * progress pushed to the dashboard), diagnostics with a bounded history per target, and the event log.
 * The IPC handlers and the tray both use it; it never imports Electron.
 */
import { runTask, type RunResult } from '../core/agent.js';
import { AgentError } from '../core/errors.js';
import { EventLog } from '../core/events.js';
import { HttpClient } from '../core/http.js';
import type { OrgConfig } from '../core/protocol.js';
import { redact } from '../core/redact.js';
import { loadState } from '../core/state.js';
import { getStatus } from '../core/status.js';
import { Trace } from '../core/trace.js';
import type { Activity, DiagnosticsReport, EventPage, EventQuery, ExportResult, HistoryPoint, RunSummary, StatusView, UiEvent } from './contract.js';
import { deviceCredential, findingsFor, runProbes } from './diagnostics.js';
import { exportEvents, queryEvents } from './event-query.js';
import type { ServiceHost } from './host.js';
import { toStatusView } from './status-view.js';

const HISTORY_POINTS = 30;
/** Diagnostics should answer within the health policy's spirit (3 s per check), not a full request timeout. */
const PROBE_TIMEOUT_MS = 5000;

/** A Trace that also tells the dashboard which step is running. */
class ProgressTrace extends Trace {
  constructor(sink: ((line: string) => void) | undefined, private readonly onStep: (name: string) => void) {
    super(sink, false);
  }

  override step<T>(name: string, fn: () => Promise<T>, describe?: (r: T) => string): Promise<T> {
    this.onStep(name);
    return super.step(name, fn, describe);
  }
}

export type RunKind = 'renew' | 'forceRenewal' | 'scheduled';

export class DashboardService {
  private busy: Activity | null = null;
  private last: DiagnosticsReport | null = null;
  private readonly history = new Map<string, HistoryPoint[]>();
  private lastOrg: OrgConfig | undefined;

  constructor(private readonly host: ServiceHost) {}

  get activity(): Activity | null {
    return this.busy;
  }

  async status(): Promise<StatusView> {
    const loaded = this.host.loadConfig();
    const report = await getStatus(loaded, this.host.platform ? { platform: this.host.platform } : {});
    return toStatusView(report, { busy: this.busy, deviceName: loaded.config.deviceName, next: this.host.scheduler?.next() });
  }

  /** One activity at a time: a renewal and the scheduler's run must never overlap. */
  private async exclusive<T>(activity: Activity, fn: () => Promise<T>): Promise<T> {
    if (this.busy) {
      throw new AgentError('retry-later', 'BUSY', `The agent is busy (${this.busy === 'diagnostics' ? 'running diagnostics' : 'renewing'}); try again when it has finished.`);
    }
    this.busy = activity;
    this.host.emit({ type: 'progress', activity, phase: 'start' });
    this.host.emit({ type: 'status-changed' });
    try {
      const r = await fn();
      this.host.emit({ type: 'progress', activity, phase: 'done' });
      return r;
    } catch (e) {
      this.host.emit({ type: 'progress', activity, phase: 'failed', message: redact((e as Error).message) });
      throw e;
    } finally {
      this.busy = null;
      this.host.emit({ type: 'status-changed' });
    }
  }

  /** Renew now (renews a valid certificate before its window), force renewal, or the scheduler's pass. */
  run(kind: RunKind): Promise<RunSummary> {
    return this.exclusive(kind, async () => {
      const trace = new ProgressTrace(this.host.debugSink, (step) => this.host.emit({ type: 'progress', activity: kind, phase: 'step', step }));
      const result = await runTask({ loaded: this.host.loadConfig(), task: 'user', force: kind === 'forceRenewal', renewNow: kind === 'renew', trace, ...(this.host.platform ? { platform: this.host.platform } : {}) });
      return summarize(result);
    });
  }

  rendererReady(): { pending: UiEvent[] } {
    return { pending: this.host.rendererReady?.() ?? [] };
  }

  lastDiagnostics(): DiagnosticsReport | null {
    return this.last;
  }

  runDiagnostics(): Promise<DiagnosticsReport> {
    return this.exclusive('diagnostics', async () => {
      const t0 = performance.now();
      const loaded = this.host.loadConfig();
      const { config } = loaded;
      const status = await getStatus(loaded, this.host.platform ? { platform: this.host.platform } : {});
      const http = new HttpClient({ tlsCaFile: config.tlsCaFile, timeoutMs: Math.min(config.requestTimeoutMs, PROBE_TIMEOUT_MS) });
      try {
        const current = loadState(config.stateDir).state.current;
        const credential = current && current.storeId === status.certificate?.storeId ? deviceCredential(config.stateDir, current.thumbprint) : undefined;
        this.host.emit({ type: 'progress', activity: 'diagnostics', phase: 'step', step: 'Checking the org, IWA web apps, mTLS endpoint and CRL' });
        const run = await runProbes({ config, http, status, credential, lastOrg: this.lastOrg, systemProxy: this.host.systemProxy });
        if (run.org) this.lastOrg = run.org;
        const findings = findingsFor(status, run, run.org);
        const targets = run.targets.map(({ errorCode: _code, ...t }) => {
          if (t.lastCheck && t.health !== 'UNKNOWN') {
            const h = [...(this.history.get(t.id) ?? []), { at: t.lastCheck, ok: t.health !== 'OFFLINE', ...(t.latencyMs !== undefined ? { ms: t.latencyMs } : {}) }].slice(-HISTORY_POINTS);
            this.history.set(t.id, h);
          }
          return { ...t, history: this.history.get(t.id) ?? [] };
        });
        this.last = { at: new Date().toISOString(), durationMs: performance.now() - t0, targets, findings };
        return this.last;
      } finally {
        await http.close();
      }
    });
  }

  private events(): EventLog {
    return new EventLog(this.host.loadConfig().config.stateDir);
  }

  queryEvents(q: EventQuery): EventPage {
    return queryEvents(this.events().read(), q);
  }

  async exportEvents(q: EventQuery, format: 'jsonl' | 'csv'): Promise<ExportResult> {
    const { content, count } = exportEvents(this.events().read(), q, format);
    const name = `device-trust-events-${new Date().toISOString().slice(0, 10)}.${format}`;
    const savedTo = await this.host.saveExport(name, content);
    return { savedTo, count };
  }

  /** What the tray's "Copy support bundle" puts on the clipboard: status, findings, recent events; redacted. */
  async supportSummary(): Promise<string> {
    const lines: string[] = ['Device Trust Agent — support summary', `generated ${new Date().toISOString()}`, ''];
    try {
      lines.push('Status:', JSON.stringify(await this.status(), null, 2));
    } catch (e) {
      lines.push(`Status unavailable: ${(e as Error).message}`);
    }
    if (this.last) {
      lines.push('', `Diagnostics (${this.last.at}):`);
      for (const t of this.last.targets) lines.push(`  ${t.health.padEnd(8)} ${t.name}: ${t.summary}`);
      for (const f of this.last.findings) lines.push(`  [${f.severity}] ${f.title} — ${f.remedy}`);
    }
    try {
      const recent = this.queryEvents({ limit: 50 });
      lines.push('', `Recent events (${recent.events.length} of ${recent.total}):`);
      for (const e of recent.events) lines.push(`  ${e.time} ${e.id} ${e.level} ${e.title}: ${e.message}`);
    } catch (e) {
      lines.push(`Events unavailable: ${(e as Error).message}`);
    }
    return redact(lines.join('\n'));
  }
}

function summarize(r: RunResult): RunSummary {
  return {
    outcome: r.outcome,
    message: r.message,
    ...(r.certificate ? { serialNumber: r.certificate.serialNumber, notAfter: r.certificate.notAfter } : {}),
    warnings: r.warnings,
  };
}
