/**
 * `proxy-check`: for each URL the agent uses, which rule chose which route, whether the route works, and
 * how long each step took (route decision with PAC fetch and evaluation, TCP or proxy tunnel, TLS handshake,
 * HTTP answer). It uses the same resolver and connection code as every request, step by step.
 */
import net, { type Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import http from 'node:http';
import type { buildConnector } from 'undici';
import type { Config } from '../config.js';
import { discoverOrg } from '../discovery.js';
import { AgentError, isAgentError } from '../../base/errors.js';
import { classifyNetworkError, HttpClient, rootCertificates } from '../http.js';
import type { OrgConfig } from '../protocol.js';
import { ProxyTunnel, ProxyUnreachableError, tlsConnector, type TlsSettings } from './connect.js';
import { diagnoseRouteFailure } from './diagnose.js';
import { redactUserInfo } from './env.js';
import { httpOptionsFor } from './options.js';
import { describeRoute, type Route, type RouteDecision } from './types.js';

export interface CheckStep {
  name: string;
  ms: number;
  ok: boolean;
  detail?: string;
}

export interface UrlCheck {
  what: string;
  url: string;
  ok: boolean;
  /** The rule that decided and the routes it gave, in order. */
  rule?: string;
  routes?: string[];
  /** The route that worked (or the last one tried). */
  route?: string;
  status?: number;
  detail: string;
  code?: string;
  steps: CheckStep[];
}

export interface ProxyCheckReport {
  ok: boolean;
  settings: { httpProxy?: string; httpProxyPacLocation?: string; environment: Record<string, string> };
  checks: UrlCheck[];
}

const ENV_NAMES = ['https_proxy', 'HTTPS_PROXY', 'http_proxy', 'HTTP_PROXY', 'no_proxy', 'NO_PROXY'];

async function timed<T>(steps: CheckStep[], name: string, fn: () => Promise<T>, describe?: (r: T) => string): Promise<T> {
  const t0 = performance.now();
  try {
    const r = await fn();
    const detail = describe?.(r);
    steps.push({ name, ms: round(performance.now() - t0), ok: true, ...(detail ? { detail } : {}) });
    return r;
  } catch (e) {
    steps.push({ name, ms: round(performance.now() - t0), ok: false, detail: (e as Error).message });
    throw e;
  }
}

function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}

function tcp(host: string, port: number, timeoutMs: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host, port });
    const timer = setTimeout(() => s.destroy(Object.assign(new Error(`connect timeout after ${timeoutMs} ms`), { code: 'ETIMEDOUT' })), timeoutMs);
    s.once('connect', () => {
      clearTimeout(timer);
      resolve(s);
    });
    s.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

function tlsOver(socket: Socket, u: URL, tls: TlsSettings): Promise<TLSSocket> {
  const connect = tlsConnector(tls);
  return new Promise((resolve, reject) => {
    connect({ hostname: u.hostname, host: u.host, protocol: 'https:', port: u.port || '443', servername: u.hostname, httpSocket: socket }, ((err: Error | null, s: TLSSocket | null) =>
      err ? reject(err) : resolve(s!)) as buildConnector.Callback);
  });
}

/** One GET on the socket the previous steps opened (node:http takes a ready connection; undici's Client does not). */
function httpAnswer(socket: Socket, u: URL, timeoutMs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: u.hostname, port: u.port, path: `${u.pathname}${u.search}`, method: 'GET', headers: { host: u.host, accept: '*/*', connection: 'close' }, createConnection: () => socket, timeout: timeoutMs },
      (res) => {
        res.resume();
        res.on('end', () => socket.destroy());
        resolve(res.statusCode ?? 0);
      },
    );
    req.on('timeout', () => req.destroy(Object.assign(new Error(`no answer within ${timeoutMs} ms`), { code: 'UND_ERR_HEADERS_TIMEOUT' })));
    req.on('error', reject);
    req.end();
  });
}

/** One URL over one route, step by step; throws the step's error. */
async function probeRoute(u: URL, route: Route, tls: TlsSettings, http: HttpClient, steps: CheckStep[]): Promise<number> {
  const port = Number(u.port || (u.protocol === 'https:' ? 443 : 80));
  let socket: Socket;
  if (route.kind === 'direct') {
    socket = await timed(steps, `TCP connect to ${u.hostname}:${port}`, () => tcp(u.hostname, port, tls.timeoutMs));
  } else {
    const tunnel = new ProxyTunnel(route.proxy, http.resolver, tls);
    try {
      socket = await timed(steps, `CONNECT ${u.hostname}:${port} through ${describeRoute(route)}`, () => tunnel.open(`${u.hostname}:${port}`));
    } finally {
      void tunnel.close();
    }
  }
  const stream = u.protocol === 'https:' ? await timed(steps, `TLS handshake with ${u.host}`, () => tlsOver(socket, u, tls), (s) => `certificate issued by ${issuerOf(s)}`) : socket;
  return timed(steps, `HTTP answer from ${u.host}`, () => httpAnswer(stream, u, tls.timeoutMs), (status) => `HTTP ${status}`);
}

function issuerOf(s: TLSSocket): string {
  const issuer = s.getPeerCertificate()?.issuer as Record<string, string> | undefined;
  return issuer?.CN ?? issuer?.O ?? 'unknown issuer';
}

async function checkUrl(what: string, url: string, http: HttpClient, tls: TlsSettings, anchors: string, exemptHosts: string[]): Promise<UrlCheck> {
  const steps: CheckStep[] = [];
  const u = new URL(url);
  let decision: RouteDecision;
  try {
    decision = await timed(steps, 'Decide the route (proxy rules, PAC)', () => http.decide(url), (d) => `${d.routes.map(describeRoute).join('; ')}`);
  } catch (e) {
    const err = classifyNetworkError(e, what, u.host);
    return { what, url, ok: false, detail: err.message, code: err.code, steps };
  }
  const base = { what, url, rule: decision.rule, routes: decision.routes.map(describeRoute) };
  let last: AgentError | undefined;
  for (const route of decision.routes) {
    try {
      const status = await probeRoute(u, route, tls, http, steps);
      return { ...base, ok: true, route: describeRoute(route), status, detail: `answered HTTP ${status} via ${describeRoute(route)}`, steps };
    } catch (e) {
      const found = diagnoseRouteFailure(e, { what, host: u.host, decision, anchors, exemptHosts });
      last = found?.error ?? classifyNetworkError(e, what, u.host);
      if (!(e instanceof ProxyUnreachableError)) return { ...base, ok: false, route: describeRoute(route), detail: last.message, code: last.code, steps };
    }
  }
  return { ...base, ok: false, detail: last?.message ?? 'no route', ...(last ? { code: last.code } : {}), steps };
}

/** The URLs the agent uses: the org first, then what the org names (IWA primary and backups, CRL, mTLS). */
export async function proxyCheck(config: Config, env: NodeJS.ProcessEnv = process.env): Promise<ProxyCheckReport> {
  const environment: Record<string, string> = {};
  for (const n of ENV_NAMES) if (env[n]) environment[n] = redactUserInfo(env[n]!);
  const settings = {
    ...(config.httpProxy ? { httpProxy: redactUserInfo(config.httpProxy) } : {}),
    ...(config.httpProxyPacLocation ? { httpProxyPacLocation: config.httpProxyPacLocation } : {}),
    environment,
  };
  if (!config.orgUrl) {
    throw new AgentError('config', 'NOT_CONFIGURED', 'No org URL is configured, so there is nothing to check.', 'Set OktaURL= (orgUrl) first.');
  }
  const orgUrl = config.orgUrl.replace(/\/+$/, '');
  const opts = httpOptionsFor(config, { env });
  const http = new HttpClient(opts);
  const tls: TlsSettings = { ca: rootCertificates(config.tlsCaFile), timeoutMs: config.requestTimeoutMs };
  const anchors = config.tlsCaFile ? `system roots and ${config.tlsCaFile}` : 'system roots';
  const exempt = opts.exemptHosts ?? [];
  const checks: UrlCheck[] = [];
  try {
    const discoveryUrl = `${orgUrl}/api/v1/device-trust/config`;
    const orgCheck = await checkUrl('the org', discoveryUrl, http, tls, anchors, exempt);
    checks.push(orgCheck);
    let org: OrgConfig | undefined;
    if (orgCheck.ok) {
      try {
        org = await discoverOrg(http, orgUrl);
      } catch (e) {
        orgCheck.ok = false;
        orgCheck.detail = isAgentError(e) ? e.message : String(e);
      }
    }
    if (org) {
      const targets: [string, string][] = [
        ['the IWA web app (primary)', `${org.iwa.primary.replace(/\/+$/, '')}/authenticated.aspx`],
        ...org.iwa.backups.map((b, i): [string, string] => [`the IWA web app (backup ${i + 1})`, `${b.replace(/\/+$/, '')}/authenticated.aspx`]),
        ...(org.crlUrl ? [['the revocation list (CRL)', org.crlUrl] as [string, string]] : []),
        ['the mTLS endpoint', org.mtls.url],
      ];
      for (const [what, url] of targets) checks.push(await checkUrl(what, url, http, tls, anchors, [...exempt, ...org.mtls.hostPatterns.map(hostOfPattern)]));
    }
  } finally {
    await http.close();
  }
  return { ok: checks.every((c) => c.ok), settings, checks };
}

function hostOfPattern(p: string): string {
  try {
    return new URL(p).host;
  } catch {
    return p;
  }
}
