import { request as httpRequest } from 'node:http';
import net, { type Socket } from 'node:net';
import { request } from 'undici';
import type { z } from 'zod';
import { AgentError } from '../../base/errors.js';
import type { EventLog } from '../events.js';
import { ErrorAnswerSchema } from '../enrollment/protocol.js';
import type { TokenTlsConnection, TokenTlsPresenter } from '../../platform/keystore.js';
import { ProxyAuthError, ProxyTunnel, routeDispatcher, ProxyUnreachableError, type PresentedCertificate, type RouteConnection, type TlsSettings } from '../proxy/connect.js';
import { diagnoseRouteFailure, type InterceptionFinding } from '../proxy/diagnose.js';
import { deadlineError, withDeadline } from '../time/deadline.js';
import { osProxyReader, type OsProxyReader } from '../proxy/os.js';
import { PAC_TIME_LIMIT_MS } from '../proxy/pac.js';
import { ProxyResolver } from '../proxy/resolver.js';
import { describeRoute, type Route, type RouteDecision } from '../proxy/types.js';
import { runCommand } from '../../base/exec.js';
import { newTraceId, requestIdsFor, serverErrorCode, type LastExchange } from '../fleet/correlation.js';
import { withServerTime } from '../time/server-time.js';
import type { SystemProxySource } from '../proxy/system.js';

/** A hostile or broken server must not be able to make us buffer without bound. */
const MAX_BODY_BYTES = 1024 * 1024;

export interface HttpOptions {
  /** PEM file of extra trust anchors (added to the system roots, never replacing verification). */
  tlsCaFile?: string | undefined;
  /** Per step (TCP/TLS connect, waiting for headers, between body chunks) and, unless `deadlineMs`, the whole exchange. */
  timeoutMs: number;
  /** The deadline of one whole exchange: route decision (PAC), connect, tunnel, TLS, headers and body together. */
  deadlineMs?: number | undefined;
  /**
   * Where requests go (see proxy/resolver.ts for the precedence): the explicit proxy and PAC location from
   * the configuration; the environment and the OS settings are read unless turned off. Absent: environment
   * and OS settings only.
   */
  proxy?: {
    httpProxy?: string | undefined;
    httpProxyPacLocation?: string | undefined;
    env?: NodeJS.ProcessEnv;
    os?: OsProxyReader | false;
    /** The host's own per-URL answer (Electron's session.resolveProxy), from the context. */
    system?: SystemProxySource | undefined;
    pacTimeLimitMs?: number;
  };
  /** Where a detected TLS interception is recorded (event TLS_INTERCEPTED). */
  events?: EventLog | undefined;
  /** Hosts an interception finding asks to exempt besides the failing one (the org's). */
  exemptHosts?: string[] | undefined;
  /** Trace lines about routes (PAC answers, fall-through); credentials never appear in them. */
  log?: ((line: string) => void) | undefined;
  /** The pass's correlation (W3C trace) ID; a fresh one per client when absent (fleet/correlation.ts). */
  traceId?: string | undefined;
}

export interface ClientCertificate {
  certPem: string;
  keyPem: string;
}

/** A certificate whose key is in a token: the platform's TLS client presents it (platform/token-tls.ts). */
export interface TokenClientCertificate {
  certPem: string;
  chainPem?: string[];
  presenter: TokenTlsPresenter;
}

export interface HttpResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

export interface RequestSpec {
  url: string;
  method?: 'GET' | 'POST';
  headers?: Record<string, string>;
  json?: unknown;
  /** A binary body (e.g. a SCEP PKI message); set its content-type in `headers`. */
  body?: Uint8Array;
  /** What the server is, for error messages ("the org", "the IWA web app"). */
  what: string;
}

const NETWORK_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EPIPE',
  'UND_ERR_SOCKET', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_CLOSED',
]);
const TLS_CODES = /^(CERT_|UNABLE_TO_|SELF_SIGNED|DEPTH_ZERO|ERR_TLS_CERT|ERR_SSL|HOSTNAME_MISMATCH)/;

/** The trust anchors every TLS connection of the agent uses (also the diagnostics TLS stage). */
import { rootCertificates } from './tls-roots.js';
export { rootCertificates };

/**
 * Every request the agent makes goes through one HttpClient, so trust, timeouts, limits and the proxy
 * route are uniform. Each request asks the proxy resolver for its routes and takes the first that works: a
 * proxy that cannot be reached falls through to the next entry of the PAC answer.
 */
export class HttpClient {
  readonly resolver: ProxyResolver;
  private readonly roots: string[];
  private readonly routes = new Map<string, RouteConnection>();
  private readonly intercepted = new Set<string>();
  private readonly announced = new Set<string>();
  /** Every request carries a request ID under this trace ID (the pass's correlation ID). */
  readonly traceId: string;
  /** The last request sent and what came back: recorded with a failure. */
  last: LastExchange | undefined;
  /** The chain each https host presented last (host:port → chain), for the interception findings. */
  private readonly chains = new Map<string, PresentedCertificate[]>();
  private readonly findings = new Map<string, InterceptionFinding>();
  /** Exchanges under way, so that `cutOff` (a pass past its deadline) can end them all at once. */
  private readonly inFlight = new Set<AbortController>();
  private cut: AgentError | undefined;

  constructor(private readonly opts: HttpOptions) {
    this.traceId = opts.traceId ?? newTraceId();
    this.roots = rootCertificates(opts.tlsCaFile);
    const p = opts.proxy ?? {};
    const log = opts.log;
    this.resolver = new ProxyResolver({
      httpProxy: p.httpProxy,
      httpProxyPacLocation: p.httpProxyPacLocation,
      env: p.env ?? process.env,
      os: p.os ?? osProxyReader(runCommand),
      system: p.system,
      ca: this.roots,
      timeoutMs: opts.timeoutMs,
      // One PAC budget, the documented one, for every command: a valid PAC that `run` can use is never called
      // a loop by `diagnose` (which gives its routed probes that budget on top of their own timeout).
      pacTimeLimitMs: p.pacTimeLimitMs ?? PAC_TIME_LIMIT_MS,
      ...(log ? { log } : {}),
    });
  }

  private tls(clientCert?: ClientCertificate): TlsSettings {
    return { ca: this.roots, timeoutMs: this.opts.timeoutMs, onChain: (host, chain) => this.chains.set(host, chain), ...(clientCert ? { cert: clientCert.certPem, key: clientCert.keyPem } : {}) };
  }

  private connection(route: Route): RouteConnection {
    const key = describeRoute(route);
    let c = this.routes.get(key);
    if (!c) {
      c = routeDispatcher(route, this.tls(), this.resolver);
      this.routes.set(key, c);
    }
    return c;
  }

  /** The route decision for a URL (which rule, which routes), as `proxy-check` shows it. */
  decide(url: string): Promise<RouteDecision> {
    return this.resolver.decide(url);
  }

  /** The certificate chain `host` (host:port) presented on its last TLS handshake, leaf first. */
  presentedChain(host: string): PresentedCertificate[] | undefined {
    return this.chains.get(host) ?? this.chains.get(host.replace(/:443$/, '')) ?? this.chains.get(`${host}:443`);
  }

  /** The interception found for `host` (host:port) by this client, if any. */
  interceptionFor(host: string): InterceptionFinding | undefined {
    return this.findings.get(host);
  }

  /** Records an interception found by a caller (e.g. the mTLS endpoint saw no client certificate). */
  noteInterception(f: InterceptionFinding, message: string): void {
    this.findings.set(f.host, f);
    if (!this.opts.events || this.intercepted.has(f.host)) return;
    this.intercepted.add(f.host);
    this.opts.events.record('TLS_INTERCEPTED', message, {
      host: f.host, issuer: f.issuer, exempt: f.exempt, verifyError: f.code, ...(f.route ? { route: f.route } : {}),
      chain: f.chain.map((c) => ({ subject: c.subject, issuer: c.issuer, sha256: c.fingerprint256 })),
    });
  }

  /** Ends every exchange under way with `error`, and refuses new ones: a pass past its own deadline stops here. */
  cutOff(error: AgentError): void {
    this.cut = error;
    for (const c of this.inFlight) c.abort(error);
  }

  /**
   * One request, bounded by one deadline for the whole exchange (route decision with PAC evaluation, proxy
   * tunnel, TLS, headers and body together): a server that trickles its answer is abandoned at the deadline.
   */
  async send(spec: RequestSpec, clientCert?: ClientCertificate): Promise<HttpResponse> {
    if (this.cut) throw this.cut;
    const host = safeHost(spec.url);
    const deadlineMs = this.opts.deadlineMs ?? this.opts.timeoutMs;
    const control = new AbortController();
    let current: { route: Route; conn?: RouteConnection } | undefined;
    const timer = setTimeout(() => {
      const stall = current?.conn?.stall?.();
      // A proxy that took the connection and then said nothing is named as such, not as "unreachable"; a PAC
      // file that gave no route in time is the route's failure, not the server's.
      const deciding = !current;
      control.abort(deadlineError(spec.what, host, deadlineMs, stall ?? (current ? `on route ${describeRoute(current.route)}` : 'while evaluating the PAC file to choose the route'),
        stall ? 'PROXY_NO_ANSWER' : deciding ? 'PAC_NO_ANSWER' : 'REQUEST_TIMEOUT'));
    }, deadlineMs);
    this.inFlight.add(control);
    try {
      return await this.sendWithin(spec, host, control.signal, clientCert, (c) => (current = c));
    } catch (e) {
      if (control.signal.aborted) throw control.signal.reason;
      throw e;
    } finally {
      clearTimeout(timer);
      this.inFlight.delete(control);
    }
  }

  private async sendWithin(spec: RequestSpec, host: string, signal: AbortSignal, clientCert: ClientCertificate | undefined, onRoute: (c: { route: Route; conn?: RouteConnection }) => void): Promise<HttpResponse> {
    let decision: RouteDecision | undefined;
    try {
      decision = await withDeadline(this.resolver.decide(spec.url), signal);
    } catch (e) {
      if (signal.aborted) throw e;
      throw classifyNetworkError(e, spec.what, host);
    }
    const { routes } = decision;
    if (!this.announced.has(host)) {
      this.announced.add(host);
      this.opts.log?.(`Route to ${host}: ${routes.map(describeRoute).join('; ')} (${decision.rule})`);
    }
    for (let i = 0; i < routes.length; i++) {
      const route = routes[i]!;
      try {
        return await this.sendOn(route, spec, clientCert, signal, onRoute);
      } catch (caught) {
        if (signal.aborted) throw caught;
        const e = route.kind === 'proxy' && spec.url.startsWith('http:') ? plainProxyError(caught, route.proxy, this.resolver) : caught;
        const unreachable = proxyUnreachable(e);
        if (unreachable && route.kind === 'proxy') {
          this.resolver.markFailed(route.proxy);
          if (i < routes.length - 1) {
            this.opts.log?.(`${unreachable.message}; trying ${describeRoute(routes[i + 1]!)} for ${host}`);
            continue;
          }
        }
        throw this.classify(e, spec.what, host, decision);
      }
    }
    throw new AgentError('internal', 'NO_ROUTE', `No route to ${spec.what} at ${host}.`);
  }

  private async sendOn(route: Route, spec: RequestSpec, clientCert: ClientCertificate | undefined, signal: AbortSignal, onRoute: (c: { route: Route; conn?: RouteConnection }) => void): Promise<HttpResponse> {
    // A client certificate gets its own connections, closed after the request: it is never offered elsewhere.
    const conn = clientCert ? routeDispatcher(route, this.tls(clientCert), this.resolver) : this.connection(route);
    onRoute({ route, conn });
    const ids = requestIdsFor(this.traceId);
    const headers: Record<string, string> = { accept: 'application/json', ...spec.headers, 'x-request-id': ids.requestId, traceparent: ids.traceparent };
    const method = spec.method ?? 'GET';
    this.last = { requestId: ids.requestId, what: spec.what, host: safeHost(spec.url), method };
    this.opts.log?.(`${method} ${spec.what} at ${safeHost(spec.url)} [request ID ${ids.requestId}]`);
    let body: string | Uint8Array | undefined = spec.body;
    if (spec.json !== undefined) {
      body = JSON.stringify(spec.json);
      headers['content-type'] = 'application/json';
    }
    try {
      // undici honours the signal only once a connection is up: a tunnel or handshake still under way would
      // outlive the deadline. The exchange ends at the deadline regardless; a late answer is discarded.
      const pending = request(spec.url, { method, headers, body, dispatcher: conn.dispatcher, signal });
      pending.then((r) => signal.aborted && r.body.destroy(), () => undefined);
      const res = await withDeadline(pending, signal);
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const chunk of res.body) {
        size += (chunk as Buffer).length;
        if (size > MAX_BODY_BYTES) {
          res.body.destroy();
          throw new AgentError('bad-answer', 'ANSWER_TOO_LARGE', `${cap(spec.what)} at ${safeHost(spec.url)} sent an answer larger than ${MAX_BODY_BYTES} bytes; it was refused.`);
        }
        chunks.push(chunk as Buffer);
      }
      const answer = { status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) };
      const serverCode = answer.status >= 400 ? serverErrorCode(answer.body) : undefined;
      this.last = { ...this.last, status: answer.status, ...(serverCode ? { serverCode } : {}) };
      return answer;
    } finally {
      // At the deadline nothing is waited for: a half-open tunnel or TLS handshake is torn down.
      if (clientCert) await (signal.aborted ? conn.destroy() : conn.close());
    }
  }

  private classify(e: unknown, what: string, host: string, decision: RouteDecision): AgentError {
    if (e instanceof AgentError) return e;
    const anchors = this.opts.tlsCaFile ? `system roots and ${this.opts.tlsCaFile}` : 'system roots';
    const found = diagnoseRouteFailure(e, { what, host, decision, anchors, ...(this.opts.exemptHosts ? { exemptHosts: this.opts.exemptHosts } : {}) });
    if (!found) return classifyNetworkError(e, what, host);
    if (found.interception) this.noteInterception(found.interception, found.error.message);
    return found.error;
  }

  /**
   * One GET presenting a key Node's TLS cannot hold (a token key): the platform's TLS client (a child process)
   * connects to a loopback relay of this client's own route to the server (direct, or the proxy's CONNECT tunnel
   * with its authentication), so the check goes the way every other request goes. Same deadline for the whole.
   */
  async sendPresenting(spec: RequestSpec, cert: TokenClientCertificate): Promise<HttpResponse> {
    if (this.cut) throw this.cut;
    const host = safeHost(spec.url);
    const deadlineMs = this.opts.deadlineMs ?? this.opts.timeoutMs;
    const control = new AbortController();
    const timer = setTimeout(() => control.abort(deadlineError(spec.what, host, deadlineMs, 'presenting the device key from its token', 'REQUEST_TIMEOUT')), deadlineMs);
    this.inFlight.add(control);
    const until = Date.now() + deadlineMs;
    try {
      const decision = await withDeadline(this.resolver.decide(spec.url), control.signal).catch((e) => {
        throw control.signal.aborted ? e : classifyNetworkError(e, spec.what, host);
      });
      const url = new URL(spec.url);
      const target = `${url.hostname}:${url.port || 443}`;
      for (let i = 0; i < decision.routes.length; i++) {
        const route = decision.routes[i]!;
        let upstream: Socket | undefined;
        try {
          upstream = await withDeadline(this.rawSocket(route, url), control.signal);
        } catch (e) {
          if (control.signal.aborted) throw control.signal.reason;
          if (route.kind === 'proxy' && proxyUnreachable(e)) {
            this.resolver.markFailed(route.proxy);
            if (i < decision.routes.length - 1) continue;
          }
          throw this.classify(e, spec.what, host, decision);
        }
        this.last = { requestId: requestIdsFor(this.traceId).requestId, what: spec.what, host, method: 'GET' };
        this.opts.log?.(`GET ${spec.what} at ${host} presenting the key in its token (${cert.presenter.description}, ${describeRoute(route)} to ${target})`);
        return await withDeadline(exchangeOverRelay(upstream, spec, url, cert, this.roots, Math.max(1, until - Date.now())), control.signal);
      }
      throw new AgentError('internal', 'NO_ROUTE', `No route to ${spec.what} at ${host}.`);
    } finally {
      clearTimeout(timer);
      this.inFlight.delete(control);
    }
  }

  /** A plain TCP stream to the URL's host:port on `route` (for a TLS client of another process). */
  private async rawSocket(route: Route, url: URL): Promise<Socket> {
    const port = Number(url.port || 443);
    const hostname = url.hostname.replace(/^\[|\]$/g, '');
    if (route.kind === 'direct') {
      return new Promise((resolve, reject) => {
        const s = net.connect({ host: hostname, port, timeout: this.opts.timeoutMs });
        s.once('connect', () => { s.setTimeout(0); resolve(s); });
        s.once('timeout', () => s.destroy(Object.assign(new Error(`connect ETIMEDOUT ${hostname}:${port}`), { code: 'ETIMEDOUT' })));
        s.once('error', reject);
      });
    }
    const tunnel = new ProxyTunnel(route.proxy, this.resolver, this.tls());
    try {
      const socket = await tunnel.open(`${url.hostname}:${port}`);
      socket.once('close', () => void tunnel.destroy());
      return socket;
    } catch (e) {
      await tunnel.destroy();
      throw e;
    }
  }

  /** Sends and parses a JSON answer; non-2xx answers become AgentErrors with the server's own words. */
  async json<T extends z.ZodType>(schema: T, spec: RequestSpec, clientCert?: ClientCertificate | TokenClientCertificate): Promise<{ data: z.infer<T>; response: HttpResponse }> {
    const response = clientCert && 'presenter' in clientCert ? await this.sendPresenting(spec, clientCert) : await this.send(spec, clientCert);
    if (response.status < 200 || response.status > 299) throw withServerTime(errorFromAnswer(response, spec.what, safeHost(spec.url)), response.status, response.headers);
    return { data: parseJsonAnswer(schema, response.body, spec.what, safeHost(spec.url)), response };
  }

  async close(): Promise<void> {
    await Promise.all([...this.routes.values()].map((c) => c.close()));
    this.routes.clear();
    await this.resolver.close();
  }

  /** Like close, but aborts requests still under way (diagnostics stop waiting for a target at its deadline). */
  async destroy(): Promise<void> {
    for (const c of this.inFlight) c.abort(new AgentError('retry-later', 'ABANDONED', 'The request was abandoned.'));
    await Promise.all([...this.routes.values()].map((c) => c.destroy()));
    this.routes.clear();
    await this.resolver.close();
  }
}

/**
 * The exchange of sendPresenting: a one-connection loopback relay to `upstream`, the platform's TLS client on it,
 * and Node's HTTP/1.1 client over that client's plaintext stream (Connection: close; the body is bounded).
 */
async function exchangeOverRelay(upstream: Socket, spec: RequestSpec, url: URL, cert: TokenClientCertificate, roots: string[], deadlineMs: number): Promise<HttpResponse> {
  const relay = net.createServer({ pauseOnConnect: false });
  relay.maxConnections = 1;
  relay.on('connection', (local) => {
    relay.close();
    local.pipe(upstream).pipe(local);
    local.on('error', () => upstream.destroy());
    upstream.on('error', () => local.destroy());
    local.on('close', () => upstream.destroy());
    upstream.on('close', () => local.destroy());
  });
  await new Promise<void>((r) => relay.listen(0, '127.0.0.1', r));
  const port = (relay.address() as net.AddressInfo).port;
  let conn: TokenTlsConnection | undefined;
  try {
    conn = await cert.presenter.open({ connect: { host: '127.0.0.1', port }, serverName: url.hostname.replace(/^\[|\]$/g, ''), certPem: cert.certPem, ...(cert.chainPem ? { chainPem: cert.chainPem } : {}), caPem: roots, deadlineMs });
    const stream = conn.stream;
    const ids = requestIdsFor(newTraceId());
    return await new Promise<HttpResponse>((resolve, reject) => {
      const req = httpRequest({ createConnection: () => stream as unknown as Socket, method: 'GET', path: `${url.pathname}${url.search}`, setHost: false,
        headers: { host: url.host, accept: 'application/json', connection: 'close', 'x-request-id': ids.requestId, traceparent: ids.traceparent, ...spec.headers } });
      const fail = (e: Error) => {
        const why = conn?.failure();
        reject(why ? tokenTlsError(why, spec.what, url.host) : e);
      };
      req.on('error', fail);
      req.on('response', (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > MAX_BODY_BYTES) {
            res.destroy();
            reject(new AgentError('bad-answer', 'ANSWER_TOO_LARGE', `${cap(spec.what)} at ${url.host} sent an answer larger than ${MAX_BODY_BYTES} bytes; it was refused.`));
          } else chunks.push(c);
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on('error', fail);
      });
      req.end();
    });
  } finally {
    relay.close();
    upstream.destroy();
    await conn?.close();
  }
}

/** The TLS client's own words when its handshake failed: an unverifiable server, or a key it could not use. */
function tokenTlsError(why: string, what: string, host: string): AgentError {
  if (/verify error|certificate verify failed|unable to get local issuer|self.signed|hostname mismatch|IP address mismatch/i.test(why)) {
    return new AgentError('bad-answer', 'TLS_UNTRUSTED', `The TLS certificate presented for ${host} (${what}) could not be verified (${why}).`,
      'If a proxy or security product inspects TLS on this network, exempt the identity provider\'s hosts from inspection; otherwise check the system clock and the trust anchors (tlsCaFile).');
  }
  return new AgentError('local', 'TOKEN_TLS_FAILED', `The device key in its token could not be presented to ${what} at ${host}: ${why}.`,
    'Run device-trust-agent status: if the key is reported missing, run device-trust-agent run --forceRenewal; otherwise give the --debug output to the help desk.');
}

const CONNECT_FAILURES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_CONNECT_TIMEOUT']);

/**
 * A plain-http URL through a proxy travels on one connection, to the proxy (absolute-form request), so a
 * failure to connect is the proxy's; undici's ProxyAgent reports a 407 only as text.
 */
function plainProxyError(e: unknown, proxy: URL, resolver: ProxyResolver): unknown {
  const err = e as { code?: string; message?: string; cause?: { code?: string } };
  const code = err.cause?.code ?? err.code ?? '';
  if (CONNECT_FAILURES.has(code)) return new ProxyUnreachableError(proxy, e as Error);
  if (/Proxy Authentication Required/i.test(err.message ?? '')) return new ProxyAuthError(proxy, [], resolver.credentialsFor(proxy) ? 'rejected' : 'no-credentials');
  return e;
}

function proxyUnreachable(e: unknown): ProxyUnreachableError | undefined {
  let cur: unknown = e;
  for (let i = 0; i < 5 && cur; i++) {
    if (cur instanceof ProxyUnreachableError) return cur;
    cur = (cur as { cause?: unknown }).cause;
  }
  return undefined;
}

export function parseJsonAnswer<T extends z.ZodType>(schema: T, body: Buffer, what: string, host: string): z.infer<T> {
  let raw: unknown;
  try {
    raw = JSON.parse(body.toString('utf8'));
  } catch {
    throw new AgentError('bad-answer', 'ANSWER_MALFORMED', `${cap(what)} at ${host} answered with something that is not JSON; it was refused and nothing was changed.`,
      'This is a server or network-appliance problem: check that nothing rewrites answers between this device and the server, then try again.');
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const first = parsed.error.issues[0];
    const where = first ? `${first.path.join('.') || '(top level)'}: ${first.message}` : 'unexpected shape';
    throw new AgentError('bad-answer', 'ANSWER_INVALID', `${cap(what)} at ${host} answered with an unexpected shape (${where}); it was refused and nothing was changed.`,
      'Check that the org URL points at the identity provider and that the server is up to date.');
  }
  return parsed.data;
}

function errorFromAnswer(res: HttpResponse, what: string, host: string): AgentError {
  let code = `HTTP_${res.status}`;
  let summary = '';
  try {
    const parsed = ErrorAnswerSchema.safeParse(JSON.parse(res.body.toString('utf8')));
    if (parsed.success) {
      code = parsed.data.errorCode;
      summary = parsed.data.errorSummary;
    }
  } catch {
    /* not JSON: the status says enough */
  }
  const said = summary ? `: "${summary}"` : '';
  if (code === 'E0000_READ_ONLY' || (res.status === 503 && /read.?only/i.test(summary))) {
    return new AgentError('retry-later', 'ORG_READ_ONLY', `The org is in read-only mode, so devices cannot enroll right now${said}.`,
      'Nothing to do on this device: the agent tries again later on its own.');
  }
  if (res.status >= 500 || res.status === 429 || res.status === 408) {
    return new AgentError('retry-later', 'SERVER_UNAVAILABLE', `${cap(what)} at ${host} is unavailable (HTTP ${res.status})${said}.`,
      'The agent tries again later; if it persists, ask the identity-provider admin to check the server.');
  }
  if (code === 'E0000_USER_NOT_ACTIVE') {
    return new AgentError('rejected', 'USER_NOT_ACTIVE', `The org refused enrollment because the user is not active${said}.`,
      'Ask an admin to check that the user is active (not suspended or deactivated) in the org.');
  }
  return new AgentError('rejected', code, `${cap(what)} at ${host} refused the request (HTTP ${res.status})${said}.`,
    'Run with --debug for the step-by-step account and give it to the help desk.');
}

export function classifyNetworkError(e: unknown, what: string, host: string): AgentError {
  if (e instanceof AgentError) return e;
  const err = e as { code?: string; message?: string; cause?: { code?: string; message?: string } };
  const code = err.cause?.code ?? err.code ?? '';
  const message = err.cause?.message ?? err.message ?? String(e);
  if (TLS_CODES.test(code) || /certificate|self.signed|TLS|SSL/i.test(message)) {
    return new AgentError('bad-answer', 'TLS_UNTRUSTED',
      `The TLS certificate presented for ${host} (${what}) could not be verified (${code || message}).`,
      'If a proxy or security product inspects TLS on this network, exempt the identity provider\'s hosts from inspection; otherwise check the system clock and the trust anchors (tlsCaFile).',
      { cause: e });
  }
  if (NETWORK_CODES.has(code) || /timeout|socket|ECONN|closed/i.test(message)) {
    return new AgentError('retry-later', 'UNREACHABLE', `Cannot reach ${what} at ${host} (${code || message}).`,
      'Check the network connection (the corporate network or VPN is needed for enrollment); the agent tries again later.', { cause: e });
  }
  return new AgentError('internal', 'HTTP_FAILED', `The request to ${what} at ${host} failed: ${message}.`, undefined, { cause: e });
}

function safeHost(u: string): string {
  try {
    return new URL(u).host;
  } catch {
    return u;
  }
}

function cap(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}
