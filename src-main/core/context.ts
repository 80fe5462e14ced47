/**
 * What one process is wired with. Each composition root (cli/main.ts, electron/main.ts) builds one
 * AgentContext and hands it, or the narrow part a function needs, down; core never picks an implementation
 * and keeps no process-wide registry, so two contexts in one process (the tests, a CLI run inside the app)
 * stay apart.
 */
import type { EventSink, ManagedConfigReader, PlatformFactory } from '../platform/types.js';
import type { SystemProxySource } from './proxy/system.js';
import type { SecretStore } from './secrets/types.js';

export interface AgentContext {
  /** Builds this OS's store, keys and browser setup for a configuration. */
  readonly platform: PlatformFactory;
  /** This OS's managed configuration (what loadConfig ranks above everything else). */
  readonly managed: ManagedConfigReader;
  /** Where the admin API token is kept: the OS keyring, or Electron's safeStorage in the app. */
  readonly secrets: SecretStore;
  /** The host's own per-URL proxy answer (Electron's session.resolveProxy); the CLI has none and reads the OS settings. */
  readonly systemProxy?: SystemProxySource | undefined;
  /** Outside logs every event of this context goes to: the platform log and the remote forwarder. */
  readonly events: EventSinks;
}

/** The HTTP side of a context: what every HttpClient of it is built with. */
export type NetworkContext = Pick<AgentContext, 'systemProxy'>;

/**
 * The outside logs of one context. The platform log is fixed when the root builds it; forwarders come and go as
 * the configuration is (re)loaded, so EventLogs read the current set at every event.
 */
export class EventSinks {
  private readonly added = new Set<EventSink>();

  /** `platformLog`: this OS's log (platform/event-sinks.ts `platformSink`), left out when the environment says DTA_PLATFORM_LOG=off. */
  constructor(private readonly platformLog?: EventSink, env: NodeJS.ProcessEnv = {}) {
    if (/^(0|off|false|no)$/i.test(env.DTA_PLATFORM_LOG ?? '')) this.platformLog = undefined;
  }

  /** No outside log at all: readers of the event log, and tests. */
  static none(): EventSinks {
    return new EventSinks();
  }

  /** Adds a sink (the remote syslog forwarder); returns its removal. */
  add(sink: EventSink): () => void {
    this.added.add(sink);
    return () => void this.added.delete(sink);
  }

  /** Every sink an event goes to now. */
  list(): EventSink[] {
    return this.platformLog ? [this.platformLog, ...this.added] : [...this.added];
  }
}
