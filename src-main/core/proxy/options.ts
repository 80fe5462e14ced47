import type { Config } from '../config.js';
import type { NetworkContext } from '../context.js';
import type { EventLog } from '../events.js';
import type { HttpOptions } from '../net/http.js';

/**
 * HttpClient options from the agent's configuration and the context's network part (the host's proxy answer):
 * trust anchors, timeout, proxy settings, event log.
 */
export function httpOptionsFor(config: Config, net: NetworkContext, extra: { events?: EventLog; log?: (line: string) => void; env?: NodeJS.ProcessEnv } = {}): HttpOptions {
  let orgHost: string | undefined;
  try {
    orgHost = config.orgUrl ? new URL(config.orgUrl).host : undefined;
  } catch {
    orgHost = undefined;
  }
  return {
    tlsCaFile: config.tlsCaFile,
    timeoutMs: config.requestTimeoutMs,
    proxy: { httpProxy: config.httpProxy, httpProxyPacLocation: config.httpProxyPacLocation, ...(extra.env ? { env: extra.env } : {}), system: net.systemProxy },
    events: extra.events,
    exemptHosts: orgHost ? [orgHost] : [],
    log: extra.log,
  };
}
