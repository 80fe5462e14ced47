/**
 * The one proxy resolver: which route each request takes. Precedence, highest first (docs/ADMINS.md "Proxy and PAC"):
 *   1. an explicit proxy (`httpProxy`, install parameter HttpProxy=): every request, no exceptions;
 *   2. a PAC file (`httpProxyPacLocation`, HttpProxyPacLocation=): FindProxyForURL decides per server;
 *   3. the environment: HTTPS_PROXY / HTTP_PROXY by the URL's scheme, NO_PROXY exceptions;
 *   4. the operating system's settings (PAC URL or manual proxy with its exceptions);
 *   5. DIRECT.
 * Loopback gets no implicit exception: it is bypassed only when NO_PROXY, the OS list or the PAC says so.
 */
import { AgentError } from '../../base/errors.js';
import { envProxy, parseProxyUrl, redactUserInfo, type EnvProxy } from './env.js';
import type { OsProxyReader, OsProxySettings } from './os.js';
import { fetchPac, PacScript, parsePacResult } from './pac.js';
import { bypasses } from './bypass.js';
import type { SystemProxySource } from './system.js';
import { describeRoute, proxyKey, stripCredentials, type ProxyCredentials, type Route, type RouteDecision } from './types.js';

/** A PAC file is fetched again after this long (a long-running agent picks up an admin's change). */
export const PAC_SCRIPT_TTL_MS = 30 * 60 * 1000;
/** FindProxyForURL answers are reused per scheme://host:port for this long (PACs may depend on the time). */
export const PAC_RESULT_TTL_MS = 5 * 60 * 1000;
/** A proxy that could not be reached is tried last for this long (Chromium's rule is similar). */
export const FAILED_PROXY_TTL_MS = 5 * 60 * 1000;

export interface ProxySettings {
  httpProxy?: string | undefined;
  httpProxyPacLocation?: string | undefined;
  env: NodeJS.ProcessEnv;
  /** The OS settings reader; `false` to ignore OS settings. */
  os: OsProxyReader | false;
  /** The host's own per-URL answer (the context's, core/context.ts), asked before the OS settings are read. */
  system?: SystemProxySource | undefined;
  /** Trust anchors and timeout for fetching a PAC file over https. */
  ca: string[];
  timeoutMs: number;
  pacTimeLimitMs?: number;
  /** Trace lines (PAC alerts, fall-through); never given credentials. */
  log?: (line: string) => void;
}

interface LoadedPac {
  script: PacScript;
  loadedAt: number;
}

export class ProxyResolver {
  private readonly explicit: URL | undefined;
  private readonly env: EnvProxy;
  private readonly credentials = new Map<string, ProxyCredentials>();
  private readonly failed = new Map<string, number>();
  private readonly results = new Map<string, { at: number; decision: RouteDecision }>();
  private readonly deciding = new Map<string, Promise<RouteDecision>>();
  private pac: Map<string, Promise<LoadedPac>> = new Map();
  private osSettings: Promise<OsProxySettings | undefined> | undefined;

  constructor(private readonly settings: ProxySettings) {
    if (settings.httpProxy) this.explicit = this.remember(parseProxyUrl(settings.httpProxy, 'httpProxy (HttpProxy=)'));
    this.env = envProxy(settings.env);
    if (this.env.https) this.env.https.url = this.remember(this.env.https.url);
    if (this.env.http) this.env.http.url = this.remember(this.env.http.url);
  }

  /** Keeps a proxy URL's user-info aside (by host:port) and returns the URL without it. */
  private remember(u: URL): URL {
    const { url, credentials } = stripCredentials(u);
    if (credentials && !this.credentials.has(proxyKey(url))) this.credentials.set(proxyKey(url), credentials);
    return url;
  }

  /** Basic credentials for a proxy, from the user-info of whichever setting named it (explicit or environment). */
  credentialsFor(proxy: URL): ProxyCredentials | undefined {
    return this.credentials.get(proxyKey(proxy));
  }

  get pacLocation(): string | undefined {
    return this.settings.httpProxyPacLocation;
  }

  markFailed(proxy: URL): void {
    this.failed.set(proxyKey(proxy), Date.now());
  }

  /** Proxies that failed recently go last, keeping the PAC's order otherwise. */
  private order(routes: Route[]): Route[] {
    const now = Date.now();
    const bad = (r: Route) => r.kind === 'proxy' && now - (this.failed.get(proxyKey(r.proxy)) ?? -Infinity) < FAILED_PROXY_TTL_MS;
    return [...routes.filter((r) => !bad(r)), ...routes.filter(bad)];
  }

  async decide(target: string): Promise<RouteDecision> {
    const u = new URL(target);
    const origin = `${u.protocol}//${u.host}`;
    const cached = this.results.get(origin);
    if (cached && Date.now() - cached.at < PAC_RESULT_TTL_MS) return { ...cached.decision, url: target, routes: this.order(cached.decision.routes) };
    // Concurrent requests to one origin share one evaluation instead of queuing several.
    let inFlight = this.deciding.get(origin);
    if (!inFlight) {
      inFlight = this.decideUncached(u).finally(() => this.deciding.delete(origin));
      this.deciding.set(origin, inFlight);
    }
    const decision = await inFlight;
    // Only PAC answers cost something to compute; the others are cheap and must follow config at once.
    if (decision.source === 'pac' || (decision.source === 'os' && decision.rule.includes('PAC'))) this.results.set(origin, { at: Date.now(), decision });
    return { ...decision, url: target, routes: this.order(decision.routes) };
  }

  private async decideUncached(u: URL): Promise<RouteDecision> {
    const url = u.href;
    if (this.explicit) return { url, source: 'explicit', rule: `explicit proxy (httpProxy / HttpProxy=) ${describeRoute({ kind: 'proxy', proxy: this.explicit })}`, routes: [{ kind: 'proxy', proxy: this.explicit }] };
    if (this.settings.httpProxyPacLocation) return this.fromPac(this.settings.httpProxyPacLocation, u, 'pac', 'PAC file (httpProxyPacLocation / HttpProxyPacLocation=)');

    const envEntry = u.protocol === 'https:' ? this.env.https : this.env.http;
    if (envEntry) {
      const hit = bypasses(u.hostname, portOf(u), this.env.noProxy);
      if (hit) return { url, source: 'env', rule: `environment: NO_PROXY entry "${hit}"`, routes: [{ kind: 'direct' }] };
      return { url, source: 'env', rule: `environment: ${envEntry.variable}`, routes: [{ kind: 'proxy', proxy: envEntry.url }] };
    }

    // The host's own per-URL answer (Electron's session.resolveProxy in the tray app) stands for the OS step.
    const system = this.settings.os === false ? undefined : this.settings.system;
    const fromSystem = system ? await this.fromSystem(system, u) : undefined;
    if (fromSystem) return fromSystem;

    const os = await this.readOs();
    if (os) {
      const hit = bypasses(u.hostname, portOf(u), os.bypass);
      if (hit) return { url, source: 'os', rule: `${os.source}: exception "${hit}"`, routes: [{ kind: 'direct' }] };
      if (os.pacUrl) return this.fromPac(os.pacUrl, u, 'os', `${os.source}: PAC file`);
      const manual = u.protocol === 'https:' ? os.https : os.http;
      if (manual) {
        const proxy = this.remember(parseProxyUrl(manual, os.source));
        return { url, source: 'os', rule: `${os.source}: ${u.protocol === 'https:' ? 'HTTPS' : 'HTTP'} proxy`, routes: [{ kind: 'proxy', proxy }] };
      }
    }
    return { url, source: 'none', rule: 'no proxy configured (explicit, PAC, environment, OS settings)', routes: [{ kind: 'direct' }] };
  }

  /** Undefined when the source cannot answer: the OS settings are then read as without it. */
  private async fromSystem(system: SystemProxySource, u: URL): Promise<RouteDecision | undefined> {
    let answer: string;
    try {
      // Like a PAC, it sees only scheme://host:port/ for https URLs.
      answer = await system.resolve(u.protocol === 'https:' ? `${u.protocol}//${u.host}/` : u.href);
    } catch {
      return undefined;
    }
    const { routes } = parsePacResult(answer, system.description);
    return { url: u.href, source: 'os', rule: `${system.description} returned "${answer}"`, routes };
  }

  private readOs(): Promise<OsProxySettings | undefined> {
    if (!this.settings.os) return Promise.resolve(undefined);
    this.osSettings ??= this.settings.os().catch(() => undefined);
    return this.osSettings;
  }

  private async fromPac(location: string, u: URL, source: 'pac' | 'os', label: string): Promise<RouteDecision> {
    const { script } = await this.loadPac(location);
    // Like Chromium, the PAC sees only scheme://host:port/ for https URLs: paths and queries stay private.
    const pacUrl = u.protocol === 'https:' ? `${u.protocol}//${u.host}/` : u.href;
    const answer = await script.evaluate(pacUrl);
    const { routes, skipped } = parsePacResult(answer, location);
    if (skipped.length) this.settings.log?.(`PAC ${location}: skipped unsupported entries ${skipped.join('; ')}`);
    return { url: u.href, source, rule: `${label} ${redactUserInfo(location)} returned "${String(answer)}"`, routes };
  }

  private loadPac(location: string): Promise<LoadedPac> {
    const current = this.pac.get(location);
    if (current) {
      return current.then((p) => {
        if (Date.now() - p.loadedAt < PAC_SCRIPT_TTL_MS) return p;
        this.pac.delete(location);
        p.script.dispose();
        return this.loadPac(location);
      });
    }
    const loading = (async () => {
      const source = await fetchPac(location, { ca: this.settings.ca, timeoutMs: this.settings.timeoutMs });
      const script = await PacScript.compile(location, source, {
        ...(this.settings.pacTimeLimitMs ? { timeLimitMs: this.settings.pacTimeLimitMs } : {}),
        ...(this.settings.log ? { log: this.settings.log } : {}),
      });
      return { script, loadedAt: Date.now() };
    })();
    this.pac.set(location, loading);
    // A failed load is not cached: the next request tries again.
    loading.catch(() => this.pac.delete(location));
    return loading;
  }

  async close(): Promise<void> {
    for (const p of this.pac.values()) {
      try {
        (await p).script.dispose();
      } catch {
        /* it never loaded */
      }
    }
    this.pac.clear();
  }
}

function portOf(u: URL): string {
  return u.port || (u.protocol === 'https:' ? '443' : '80');
}

export function isProxyConfigError(e: unknown): e is AgentError {
  return e instanceof AgentError && /^(PAC_|PROXY_)/.test(e.code);
}
