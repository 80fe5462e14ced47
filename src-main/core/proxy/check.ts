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
import { discoverOrg } from '../enrollment/discovery.js';
import { AgentError, isAgentError } from '../../base/errors.js';
import { classifyNetworkError, HttpClient, rootCertificates } from '../net/http.js';
import type { OrgConfig } from '../enrollment/protocol.js';
import { ProxyTunnel, ProxyUnreachableError, tlsConnector, type PresentedCertificate, type TlsSettings } from './connect.js';
import { diagnoseRouteFailure, strippedCertificateFinding } from './diagnose.js';
import { currentCredential, peekState, type LocalCredential } from '../diagnostics/probes.js';
import { checkMtlsPath, mtlsCredential } from '../net/mtls.js';
import type { DeviceKeyStore } from '../../platform/keystore.js';
import { MtlsCheckAnswerSchema, type MtlsCheckAnswer } from '../enrollment/protocol.js';
import { redactUserInfo } from './env.js';
import { chainFinding, pinsInForce } from '../net/server-chain.js';
import type { NetworkContext } from '../context.js';
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

const MAX_CHECK_BODY = 64 * 1024;

/** One GET on the socket the previous steps opened (node:http takes a ready connection; undici's Client does not). */
function httpAnswer(socket: Socket, u: URL, timeoutMs: number): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: u.hostname, port: u.port, path: `${u.pathname}${u.search}`, method: 'GET', headers: { host: u.host, accept: '*/*', connection: 'close' }, createConnection: () => socket, timeout: timeoutMs },
      (res) => {
        // The body is read only for the mTLS endpoint's verdict; a few KB are enough, the rest is dropped.
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          if (size < MAX_CHECK_BODY) chunks.push(c);
          size += c.length;
          if (size >= MAX_CHECK_BODY) res.destroy();
        });
        const done = () => {
          socket.destroy();
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) });
        };
        res.on('end', done);
        res.on('close', done);
        res.on('error', done);
      },
    );
    req.on('timeout', () => req.destroy(Object.assign(new Error(`no answer within ${timeoutMs} ms`), { code: 'UND_ERR_HEADERS_TIMEOUT' })));
    req.on('error', reject);
    req.end();
  });
}

/** One URL over one route, step by step; throws the step's error. */
async function probeRoute(u: URL, route: Route, tls: TlsSettings, http: HttpClient, steps: CheckStep[], open: Set<Socket>): Promise<{ status: number; body: Buffer }> {
  const port = Number(u.port || (u.protocol === 'https:' ? 443 : 80));
  let socket: Socket;
  if (route.kind === 'direct') {
    socket = await timed(steps, `TCP connect to ${u.hostname}:${port}`, () => tcp(u.hostname, port, tls.timeoutMs));
    open.add(socket);
  } else {
    const tunnel = new ProxyTunnel(route.proxy, http.resolver, tls);
    try {
      socket = await timed(steps, `CONNECT ${u.hostname}:${port} through ${describeRoute(route)}`, () => tunnel.open(`${u.hostname}:${port}`));
      open.add(socket);
    } finally {
      void tunnel.close();
    }
  }
  const stream = u.protocol === 'https:' ? await timed(steps, `TLS handshake with ${u.host}`, () => tlsOver(socket, u, tls), (s) => `certificate issued by ${issuerOf(s)}`) : socket;
  open.add(stream);
  return timed(steps, `HTTP answer from ${u.host}`, () => httpAnswer(stream, u, tls.timeoutMs), (r) => `HTTP ${r.status}`);
}

function issuerOf(s: TLSSocket): string {
  const issuer = s.getPeerCertificate()?.issuer as Record<string, string> | undefined;
  return issuer?.CN ?? issuer?.O ?? 'unknown issuer';
}

/** The device certificate to present to the mTLS endpoint (without one its check proves only the route). */
interface Presenting {
  certPem: string;
  keyPem: string;
  serialNumber: string;
}

/**
 * One URL, bounded by one deadline (route decision, every route tried, each step): at the deadline the check
 * ends with what it got through, and names what it was waiting for.
 */
async function checkUrl(what: string, url: string, http: HttpClient, tls: TlsSettings, anchors: string, exemptHosts: string[], present?: Presenting): Promise<UrlCheck> {
  const steps: CheckStep[] = [];
  const deadlineMs = tls.timeoutMs + 500;
  const open = new Set<Socket>();
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<UrlCheck>((resolve) => {
    timer = setTimeout(() => {
      // Abandoned means closed: a trickling server must not keep the process alive after the report.
      for (const s of open) s.destroy();
      const waiting = steps.length ? `after "${steps[steps.length - 1]!.name}"` : 'while deciding the route';
      resolve({ what, url, ok: false, code: 'REQUEST_TIMEOUT', steps: [...steps], detail: `${what} at ${new URL(url).host} did not complete within the ${deadlineMs} ms deadline (${waiting}); the check was abandoned.` });
    }, deadlineMs);
  });
  try {
    return await Promise.race([checkUrlSteps(what, url, http, tls, anchors, exemptHosts, steps, present, open), late]);
  } finally {
    clearTimeout(timer);
  }
}

async function checkUrlSteps(what: string, url: string, http: HttpClient, tls: TlsSettings, anchors: string, exemptHosts: string[], steps: CheckStep[], present: Presenting | undefined, open: Set<Socket>): Promise<UrlCheck> {
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
      let chain: PresentedCertificate[] | undefined;
      const routeTls: TlsSettings = { ...tls, onChain: (h, c) => { chain = c; tls.onChain?.(h, c); }, ...(present ? { cert: present.certPem, key: present.keyPem } : {}) };
      const { status, body } = await probeRoute(u, route, routeTls, http, steps, open);
      const used = describeRoute(route);
      if (present) {
        const verdict = mtlsVerdict(status, body);
        if (verdict?.reason === 'no-certificate' && !verdict.trusted) {
          const found = strippedCertificateFinding({ host: u.host, serialNumber: present.serialNumber, chain, exemptHosts, route: decision.rule });
          http.noteInterception(found.interception, found.error.message);
          return { ...base, ok: false, route: used, status, code: found.error.code, detail: `${found.error.message} What to do: ${found.error.remedy}`, steps };
        }
        if (!verdict || !verdict.trusted) {
          return { ...base, ok: false, route: used, status, code: 'MTLS_NOT_TRUSTED', detail: `answered HTTP ${status} via ${used}, but the mTLS endpoint did not accept certificate ${present.serialNumber} (${verdict ? verdict.reason ?? 'no reason given' : 'no verdict in its answer'})`, steps };
        }
        return { ...base, ok: true, route: used, status, detail: `answered HTTP ${status} via ${used}; certificate ${present.serialNumber} accepted`, steps };
      }
      return { ...base, ok: true, route: used, status, detail: `answered HTTP ${status} via ${used}`, steps };
    } catch (e) {
      const found = diagnoseRouteFailure(e, { what, host: u.host, decision, anchors, exemptHosts });
      last = found?.error ?? classifyNetworkError(e, what, u.host);
      if (!(e instanceof ProxyUnreachableError)) return { ...base, ok: false, route: describeRoute(route), detail: last.message, code: last.code, steps };
    }
  }
  return { ...base, ok: false, detail: last?.message ?? 'no route', ...(last ? { code: last.code } : {}), steps };
}

/** The URLs the agent uses: the org first, then what the org names (IWA primary and backups, CRL, mTLS). */
export async function proxyCheck(config: Config, net: NetworkContext, env: NodeJS.ProcessEnv = process.env, keys?: Pick<DeviceKeyStore, 'tlsPresenter'>, managedPins = false): Promise<ProxyCheckReport> {
  const environment: Record<string, string> = {};
  for (const n of ENV_NAMES) if (env[n]) environment[n] = redactUserInfo(env[n]!);
  const settings = {
    ...(config.httpProxy ? { httpProxy: redactUserInfo(config.httpProxy) } : {}),
    ...(config.httpProxyPacLocation ? { httpProxyPacLocation: redactUserInfo(config.httpProxyPacLocation) } : {}),
    environment,
  };
  if (!config.orgUrl) {
    throw new AgentError('config', 'NOT_CONFIGURED', 'No org URL is configured, so there is nothing to check.', 'Set OktaURL= (orgUrl) first.');
  }
  const orgUrl = config.orgUrl.replace(/\/+$/, '');
  const opts = httpOptionsFor(config, net, { env });
  const http = new HttpClient(opts);
  // The chain each host presented, compared with the TLS issuers the org publishes once discovery answered.
  const seen = new Map<string, PresentedCertificate[]>();
  const tls: TlsSettings = { ca: rootCertificates(config.tlsCaFile), timeoutMs: config.requestTimeoutMs, onChain: (h, c) => seen.set(h, c) };
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
      // In parallel: a silent proxy costs one deadline for all of them, not one each.
      const cred = currentCredential(config);
      const present = cred?.keyPem ? { certPem: cred.certPem, keyPem: cred.keyPem, serialNumber: cred.serialNumber } : undefined;
      const exemptAll = [...exempt, ...org.mtls.hostPatterns.map(hostOfPattern)];
      checks.push(...(await Promise.all(targets.map(([what, url]) => checkUrl(what, url, http, tls, anchors, exemptAll, url === org!.mtls.url ? present : undefined)))));
      // A key in a token: the route was proven above without a certificate; the platform's TLS client then presents it.
      const mtlsCheck = checks.find((c) => c.url === org!.mtls.url);
      if (cred && !present && cred.keyRef && mtlsCheck?.ok) await presentFromToken(mtlsCheck, http, cred, keys, exemptAll);
      const set = pinsInForce(org, config, managedPins, peekState(config.stateDir)?.serverTls);
      for (const c of checks) {
        if (!c.ok || !(c === orgCheck || c.url === org.mtls.url)) continue;
        const host = new URL(c.url).host;
        const found = chainFinding({ host, what: c.what, chain: seen.get(host) ?? seen.get(`${host}:443`), set, exemptHosts: exemptAll, route: c.rule });
        if (!found) continue;
        http.noteInterception(found.interception, found.error.message);
        Object.assign(c, { ok: false, code: found.error.code, detail: `${found.error.message} What to do: ${found.error.remedy}` });
      }
    }
  } finally {
    await http.close();
  }
  return { ok: checks.every((c) => c.ok), settings, checks };
}

/** The mTLS check of proxy-check for a key in a token, on the same route decision (a loopback relay of it). */
async function presentFromToken(c: UrlCheck, http: HttpClient, cred: LocalCredential, keys: Pick<DeviceKeyStore, 'tlsPresenter'> | undefined, exemptHosts: string[]): Promise<void> {
  const mc = mtlsCredential(cred, keys);
  const t0 = performance.now();
  const name = 'Present the device key from its token (openssl child, same route)';
  if ('unavailable' in mc) {
    c.steps.push({ name, ok: false, ms: 0, detail: mc.unavailable });
    Object.assign(c, { ok: false, code: 'TOKEN_TLS_UNAVAILABLE', detail: `${c.detail}; certificate ${cred.serialNumber} not presented: ${mc.unavailable}` });
    return;
  }
  try {
    const { answer, intercepted } = await checkMtlsPath(http, c.url, mc, exemptHosts);
    c.steps.push({ name, ok: answer.trusted, ms: performance.now() - t0, detail: 'presenter' in mc ? mc.presenter.description : '' });
    if (intercepted) Object.assign(c, { ok: false, code: intercepted.code, detail: `${intercepted.message} What to do: ${intercepted.remedy}` });
    else if (!answer.trusted) Object.assign(c, { ok: false, code: 'MTLS_NOT_TRUSTED', detail: `${c.detail}, but the mTLS endpoint did not accept certificate ${cred.serialNumber} (${answer.reason ?? 'no reason given'})` });
    else c.detail = `${c.detail}; certificate ${cred.serialNumber} accepted (key presented from its token)`;
  } catch (e) {
    c.steps.push({ name, ok: false, ms: performance.now() - t0, detail: (e as Error).message });
    Object.assign(c, { ok: false, code: isAgentError(e) ? e.code : 'TOKEN_TLS_FAILED', detail: (e as Error).message });
  }
}

function hostOfPattern(p: string): string {
  try {
    return new URL(p).host;
  } catch {
    return p;
  }
}

function mtlsVerdict(status: number, body: Buffer): MtlsCheckAnswer | undefined {
  if (status !== 200) return undefined;
  try {
    const parsed = MtlsCheckAnswerSchema.safeParse(JSON.parse(body.toString('utf8')));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}
