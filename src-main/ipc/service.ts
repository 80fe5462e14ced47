/**
 * The main process's side of the dashboard, over the agent core: status, runs (one at a time, with
 * progress pushed to the dashboard), diagnostics through the engine with the health model per target, and
 * the event log.
 * The IPC handlers and the tray both use it; it never imports Electron.
 */
import type { RunResult } from '../core/enrollment/pass.js';
import { createPassEngine, passRunningError } from '../core/scheduler/create-pass-engine.js';
import { writeSupportBundle } from '../core/diagnostics/bundle.js';
import { runDiagnostics } from '../core/diagnostics/run-diagnostics.js';
import { DEFAULT_HEALTH_POLICY, type HealthPolicy } from '../core/diagnostics/health.js';
import { DiagnoseWatch } from '../core/diagnostics/watch.js';
import { AgentError } from '../base/errors.js';
import { EventLog } from '../core/events.js';
import { HttpClient } from '../core/net/http.js';
import { httpOptionsFor } from '../core/proxy/options.js';
import type { RouteDecision } from '../core/proxy/types.js';
import { redact } from '../base/safe-text.js';
import { adminTokenStatus, checkAdminToken, removeAdminToken, storeAdminToken } from '../core/secrets/admin-token.js';
import { safeJson } from '../base/safe-text.js';
import { getDoctorStatus } from '../core/fleet/doctor.js';
import { Trace } from '../base/trace.js';
import type { Activity, AdminTokenCheck, AdminTokenStatus, DiagnosticsReport, EventPage, EventQuery, ExportResult, PostureView, RunSummary, StatusView, UiEvent } from './contract.js';
import { toFindings, toTargets } from './diagnostics.js';
import { exportEvents, queryEvents } from './event-query.js';
import type { ServiceHost } from './host.js';
import { toStatusView } from './status-view.js';
import { lastPosture, runPostureView } from './posture-view.js';

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
  private diagnosing: Promise<DiagnosticsReport> | undefined;
  private readonly policy: HealthPolicy;
  private readonly watch: DiagnoseWatch;
  private monitorTimer: NodeJS.Timeout | undefined;

  private readonly host: ServiceHost;

  constructor(host: ServiceHost) {
    // Pushed events (progress steps, failures) reach the dashboard through the output-safety layer too.
    this.host = Object.assign(Object.create(host) as ServiceHost, { emit: (e: Parameters<ServiceHost['emit']>[0]) => host.emit(safeJson(e)) });
    this.policy = host.healthPolicy ?? DEFAULT_HEALTH_POLICY;
    this.watch = new DiagnoseWatch(this.policy);
  }

  get activity(): Activity | null {
    return this.busy;
  }

  async status(): Promise<StatusView> {
    const loaded = this.host.loadConfig();
    const report = await getDoctorStatus(loaded, { platform: this.host.context.platform(loaded.config), context: this.host.context });
    return toStatusView(report, { busy: this.busy, deviceName: loaded.config.deviceName, next: this.host.scheduler?.next() });
  }

  /** One run at a time: a renewal and the scheduler's run must never overlap. */
  private async exclusive<T>(activity: Activity, fn: () => Promise<T>): Promise<T> {
    if (this.busy) {
      throw new AgentError('retry-later', 'BUSY', 'The agent is already renewing; try again when it has finished.');
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
      const loaded = this.host.loadConfig();
      // Through the one pass engine, under the state directory's pass lock and recorded in the schedule: a
      // pass of the scheduler, a systemd daemon or a `run` in a terminal is never raced.
      const { engine } = createPassEngine({ loadConfig: () => loaded, context: this.host.context, stateDir: loaded.config.stateDir, side: 'user', trace: () => trace,
        force: kind === 'forceRenewal', renewNow: kind === 'renew', respectRenewalMoment: false });
      const res = await engine.attempt('manual');
      if (!res.ran) throw res.why === 'busy' ? passRunningError(res) : new AgentError('internal', 'INTERNAL', res.detail);
      if (res.error) throw res.error;
      return summarize(res.result!);
    });
  }

  rendererReady(): { pending: UiEvent[] } {
    return { pending: this.host.rendererReady?.() ?? [] };
  }

  /** The last posture pass of the user task (the daemon's), for the Posture card. */
  posture(): PostureView | null {
    return lastPosture(this.host.loadConfig());
  }

  runPosture(): Promise<PostureView> {
    return runPostureView(this.host.loadConfig(), this.host.context);
  }

  lastDiagnostics(): DiagnosticsReport | null {
    return this.last;
  }

  /**
   * One check of every target, as `diagnose --watch` does one: failed probes are retried (up to the policy's
   * maxRetries) before they count, the health model moves each target (DEGRADED, then OFFLINE after the
   * failure threshold), transitions and changed findings go to the event log. Diagnostics only read, so they
   * may run beside a renewal; two at once share one run.
   */
  runDiagnostics(opts: { background?: boolean } = {}): Promise<DiagnosticsReport> {
    this.diagnosing ??= this.diagnose(Boolean(opts.background)).finally(() => {
      this.diagnosing = undefined;
    });
    return this.diagnosing;
  }

  private async diagnose(background: boolean): Promise<DiagnosticsReport> {
    const t0 = performance.now();
    if (!background) this.host.emit({ type: 'progress', activity: 'diagnostics', phase: 'start' });
    try {
      const loaded = this.host.loadConfig();
      const events = new EventLog(loaded.config.stateDir, 'dashboard', { sinks: this.host.context.events });
      const run = () =>
        runDiagnostics({
          loaded, policy: this.policy, events, recordOutcome: false, env: this.host.env ?? process.env,
          context: this.host.context,
        });
      const onRetry = (attempt: number, of: number) => {
        if (!background) this.host.emit({ type: 'progress', activity: 'diagnostics', phase: 'step', step: `Checking failed targets again (${attempt} of ${of})` });
      };
      const [{ report }, proxy] = await Promise.all([this.watch.cycle(run, events, { onRetry }), this.proxyRoute(loaded.config)]);
      this.last = {
        at: report.generatedAt,
        durationMs: performance.now() - t0,
        targets: toTargets({ report, health: (id) => this.watch.target(id), proxy }),
        findings: toFindings(report.findings),
      };
      if (!background) this.host.emit({ type: 'progress', activity: 'diagnostics', phase: 'done' });
      this.host.emit({ type: 'diagnostics-updated' });
      return this.last;
    } catch (e) {
      if (!background) this.host.emit({ type: 'progress', activity: 'diagnostics', phase: 'failed', message: redact((e as Error).message) });
      throw e;
    }
  }

  /** The route the resolver picks for the org: the "proxy path" card. */
  private async proxyRoute(config: ReturnType<ServiceHost['loadConfig']>['config']): Promise<{ decision?: RouteDecision; error?: string; ms: number } | undefined> {
    if (!config.orgUrl) return undefined;
    const t0 = performance.now();
    const http = new HttpClient(httpOptionsFor(config, this.host.context, this.host.env ? { env: this.host.env } : {}));
    try {
      return { decision: await http.resolver.decide(config.orgUrl), ms: performance.now() - t0 };
    } catch (e) {
      return { error: redact((e as Error).message), ms: performance.now() - t0 };
    } finally {
      await http.close();
    }
  }

  /** Checks every policy interval while someone looks at the dashboard (the shell starts and stops it). */
  monitorWhileOpen(open: boolean): void {
    if (open && !this.monitorTimer) {
      this.monitorTimer = setInterval(() => void this.runDiagnostics({ background: true }).catch(() => undefined), this.policy.intervalMs);
      this.monitorTimer.unref?.();
    } else if (!open && this.monitorTimer) {
      clearInterval(this.monitorTimer);
      this.monitorTimer = undefined;
    }
  }

  private events(): EventLog {
    return new EventLog(this.host.loadConfig().config.stateDir, undefined, { sinks: [] });
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

  /** The tray's "Copy support bundle": the core's redacted support bundle (zip), written to `file`. */
  // ---- the admin API token (settings) ----

  /** Never throws for a store that cannot be used: the panel shows why and what to do instead. */
  async adminToken(): Promise<AdminTokenStatus> {
    const loaded = this.host.loadConfig();
    const store = this.host.context.secrets;
    if (!loaded.config.orgUrl) return { org: null, stored: false, store: store.description };
    try {
      return await adminTokenStatus(loaded, this.host.context);
    } catch (e) {
      if (e instanceof AgentError && e.code === 'KEYRING_UNAVAILABLE') {
        return { org: new URL(loaded.config.orgUrl).host, stored: false, store: store.description, problem: `${e.message}${e.remedy ? ` ${e.remedy}` : ''}` };
      }
      throw e;
    }
  }

  async setAdminToken(token: string): Promise<AdminTokenStatus> {
    const r = await storeAdminToken(this.host.loadConfig(), this.host.context, token, 'dashboard');
    // The AD-agent card can now be checked: refresh diagnostics in the background.
    void this.runDiagnostics({ background: true }).catch(() => undefined);
    return r;
  }

  testAdminToken(): Promise<AdminTokenCheck> {
    return checkAdminToken(this.host.loadConfig(), this.host.context, this.host.env ?? process.env);
  }

  async removeAdminToken(): Promise<{ removed: boolean }> {
    return { removed: await removeAdminToken(this.host.loadConfig(), this.host.context, 'dashboard') };
  }

  async supportBundle(file: string, version: string): Promise<string> {
    const r = await writeSupportBundle({
      loaded: this.host.loadConfig(), file, version, env: this.host.env ?? process.env,
      context: this.host.context,
    });
    return r.file;
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
