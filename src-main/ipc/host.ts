/**
 * What the dashboard service needs from whoever hosts it: the Electron shell in the app, the test process
 * in the Chromium tests. Small interfaces ("ports") so the service never imports Electron, and so the
 * scheduler (src-main/core/scheduler, issue 3) and the proxy resolver (src-main/core/proxy, issue 4) plug in
 * when they land without changing the dashboard.
 */
import type { LoadedConfig } from '../core/config.js';
import type { Platform } from '../platform/index.js';
import type { UiEvent } from './contract.js';

/** The scheduler as the shell hosts it: started with the app, asked when it runs next. */
export interface SchedulerPort {
  start(): void;
  stop(): void;
  /** The next planned run and why, if the scheduler knows. */
  next(): { at: string; why: string } | undefined;
}

/**
 * The operating system's proxy answer for a URL, in PAC result form ("DIRECT", "PROXY host:port; DIRECT").
 * In the app it is Electron's session.resolveProxy, offered to the proxy resolver as its system-settings
 * source.
 */
export interface SystemProxySource {
  readonly description: string;
  resolve(url: string): Promise<string>;
}

/** Secrets at rest (e.g. an admin API token for agent-pool status), encrypted by the OS. */
export interface SecretStore {
  readonly description: string;
  get(name: string): Promise<string | undefined>;
  set(name: string, value: string): Promise<void>;
  delete(name: string): Promise<void>;
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
  platform?: Platform;
  scheduler?: SchedulerPort;
  systemProxy?: SystemProxySource;
  /** Where secrets live (safeStorage in the app); for the diagnostics engine's admin API token. */
  secrets?: SecretStore;
  /** Lines of the step-by-step account while a run is in progress (the app's --debug mode). */
  debugSink?: (line: string) => void;
}
