/**
 * What the dashboard service needs from whoever hosts it: the Electron shell in the app, the test process
 * in the Chromium tests. Small interfaces ("ports"), so the service never imports Electron. The shell hands
 * in the context it built (core/context.ts): its platform, safeStorage as the secret store, session.resolveProxy
 * as the system proxy source, and its event sinks.
 */
import type { LoadedConfig } from '../core/config.js';
import type { HealthPolicy } from '../core/diagnostics/health.js';
import type { AgentContext } from '../core/context.js';
import type { UiEvent } from './contract.js';

/**
 * The scheduler as the shell hosts it: started with the app, asked when it runs next
 * (electron/agent-scheduler.ts: the agent's own scheduler, src-main/core/scheduler).
 */
export interface SchedulerPort {
  start(): void;
  stop(): void;
  /** The next planned run and why, if the scheduler knows. */
  next(): { at: string; why: string } | undefined;
}

export interface ServiceHost {
  /** The agent's configuration, read afresh for every call (an admin may change it while the app runs). */
  loadConfig(): LoadedConfig;
  /** Pushes an event to the dashboard, if one is open. */
  emit(event: UiEvent): void;
  /** The dashboard subscribed to events: returns what was queued for it before (none if not queued). */
  rendererReady?(): UiEvent[];
  /** Lets the user save an export (a save dialog in the app); resolves to the path written, or null if cancelled. */
  saveExport(suggestedName: string, content: string): Promise<string | null>;
  /** What the shell wired (platform, secret store, system proxy source, event sinks): everything the service does uses it. */
  context: AgentContext;
  scheduler?: SchedulerPort;
  /** The health policy of the reachability cards (default: the diagnostics engine's). */
  healthPolicy?: HealthPolicy;
  /** Environment for diagnostics (KRB5_CONFIG, USER…); default process.env. */
  env?: NodeJS.ProcessEnv;
  /** Lines of the step-by-step account while a run is in progress (the app's --debug mode). */
  debugSink?: (line: string) => void;
}
