/**
 * Connections for each route: DIRECT, or a CONNECT tunnel through a proxy with the TLS handshake (and the
 * client certificate, for mTLS) inside it. undici's ProxyAgent is not used for https: on a 407 it drops the
 * Proxy-Authenticate challenge (so Negotiate cannot be answered when the proxy asks), it sends one fixed
 * Proxy-Authorization for every tunnel (a Kerberos token may be used once), and it keeps no record of the
 * certificate chain a TLS-intercepting proxy presented. The CONNECT itself is undici's `Client.connect`;
 * the TLS handshake is undici's connector, with the presented chain recorded before verification fails.
 */
import { X509Certificate } from 'node:crypto';
import type { Socket } from 'node:net';
import { createSecureContext, rootCertificates, type SecureContext, type TLSSocket } from 'node:tls';
import { Agent, buildConnector, Pool, ProxyAgent, type Dispatcher } from 'undici';
import { KerberosError, negotiateAuthorization } from '../auth/negotiate.js';
import type { ProxyResolver } from './resolver.js';
import { spkiSha256 } from '../../base/certinfo.js';
import { describeRoute, proxyKey, type Route } from './types.js';

export interface TlsSettings {
  ca: string[];
  cert?: string;
  key?: string;
  timeoutMs: number;
  /** Told the chain every https server presented (verified or not), leaf first: interception evidence. */
  onChain?: ((host: string, chain: PresentedCertificate[]) => void) | undefined;
}

export interface PresentedCertificate {
  subject: string;
  issuer: string;
  subjectCN: string;
  issuerCN: string;
  fingerprint256: string;
  /** Base64 SHA-256 of the certificate's SubjectPublicKeyInfo: what the org's published TLS pins name (PROTOCOL §1). */
  spkiSha256?: string | undefined;
}

/** A TLS verification failure, with the chain the other end presented (for the interception diagnosis). */
export class PresentedChainError extends Error {
  readonly code: string | undefined;
  constructor(readonly original: Error & { code?: string }, readonly presented: PresentedCertificate[]) {
    super(original.message, { cause: original });
    this.name = 'PresentedChainError';
    this.code = original.code;
  }
}

const SILENT_CODES = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_ABORTED', 'ABORT_ERR', 'UND_ERR_SOCKET', 'ECONNRESET']);

/**
 * The proxy itself failed us: it could not be reached, or it accepted the connection and then never answered
 * (a blackholed or overloaded proxy). Either way the next route (PAC fall-through) may work.
 */
export class ProxyUnreachableError extends Error {
  readonly code: string | undefined;
  /** True when the TCP connection to the proxy was made but the proxy did not answer the CONNECT. */
  readonly silent: boolean;
  constructor(readonly proxy: URL, cause: Error & { code?: string }, opts: { connected?: boolean; timeoutMs?: number } = {}) {
    const silent = Boolean(opts.connected) && SILENT_CODES.has(cause.code ?? cause.name ?? '');
    super(silent
      ? `the proxy ${proxyKey(proxy)} accepted the connection but did not answer${cause.code === 'UND_ERR_HEADERS_TIMEOUT' && opts.timeoutMs ? ` within ${opts.timeoutMs} ms` : ` (${cause.code ?? cause.message})`}`
      : `the proxy ${proxyKey(proxy)} cannot be reached (${cause.code ?? cause.message})`, { cause });
    this.name = 'ProxyUnreachableError';
    this.code = cause.code;
    this.silent = silent;
  }
}

/** The proxy wants authentication the agent cannot give, or refused what it gave. */
export class ProxyAuthError extends Error {
  constructor(readonly proxy: URL, readonly schemes: string[], readonly reason: 'no-credentials' | 'rejected' | 'negotiate-failed', detail?: string) {
    super(`the proxy ${proxyKey(proxy)} requires authentication (${schemes.join(', ') || 'no scheme offered'})${detail ? `: ${detail}` : ''}`);
    this.name = 'ProxyAuthError';
  }
}

/** The proxy answered the CONNECT with an error (forbidden destination, upstream failure…). */
export class ProxyRefusedError extends Error {
  constructor(readonly proxy: URL, readonly target: string, readonly status: number, readonly detail: string | undefined) {
    super(`the proxy ${proxyKey(proxy)} refused to connect to ${target} (HTTP ${status}${detail ? `, ${detail}` : ''})`);
    this.name = 'ProxyRefusedError';
  }
}

const TLS_FAILURE = /^(CERT_|UNABLE_TO_|SELF_SIGNED|DEPTH_ZERO|ERR_TLS_CERT|HOSTNAME_MISMATCH)/;

function cn(dn: string | undefined): string {
  return /(?:^|\n|, ?)CN=([^\n,]*)/.exec(dn ?? '')?.[1] ?? '';
}

function spkiOf(raw: Buffer | undefined): string | undefined {
  if (!raw) return undefined;
  try {
    return spkiSha256(new X509Certificate(raw));
  } catch {
    return undefined;
  }
}

/** The chain as sent by the server, leaf first (issuer links followed; stops at a self-signed certificate). */
function presentedChain(socket: TLSSocket): PresentedCertificate[] {
  const out: PresentedCertificate[] = [];
  try {
    let c = socket.getPeerCertificate(true) as (ReturnType<TLSSocket['getPeerCertificate']> & { issuerCertificate?: unknown }) | undefined;
    const seen = new Set<string>();
    while (c && c.fingerprint256 && !seen.has(c.fingerprint256)) {
      seen.add(c.fingerprint256);
      const subject = Object.entries(c.subject ?? {}).map(([k, v]) => `${k}=${String(v)}`).join(', ');
      const issuer = Object.entries(c.issuer ?? {}).map(([k, v]) => `${k}=${String(v)}`).join(', ');
      out.push({ subject, issuer, subjectCN: cn(subject), issuerCN: cn(issuer), fingerprint256: c.fingerprint256, spkiSha256: spkiOf(c.raw) });
      c = c.issuerCertificate as typeof c;
    }
  } catch {
    /* no chain to report */
  }
  return out;
}

/**
 * Building a TLS context parses every trust anchor (~150 system roots): tens of milliseconds that would be
 * paid on every handshake. One context per set of anchors and client identity is shared instead.
 */
const contexts = new WeakMap<string[], Map<string, SecureContext>>();
export function secureContextFor(tls: TlsSettings): SecureContext {
  let byIdentity = contexts.get(tls.ca);
  if (!byIdentity) contexts.set(tls.ca, (byIdentity = new Map()));
  const id = tls.cert && tls.key ? `${tls.cert}\0${tls.key}` : '';
  let ctx = byIdentity.get(id);
  if (!ctx) {
    ctx = buildSecureContext(tls.ca, tls.cert && tls.key ? { cert: tls.cert, key: tls.key } : {});
    byIdentity.set(id, ctx);
  }
  return ctx;
}

/**
 * `ca: [...tls.rootCertificates, extra]` makes Node parse all ~145 PEM roots again for each context (≈ 50 ms of
 * a pass's CPU, bench "enrollment"). When the anchors are exactly Node's bundled roots plus extra PEMs, Node's
 * own root store (parsed once per process) is copied instead and only the extras are added: the same anchors.
 * Node's default store differs from the bundled list when NODE_EXTRA_CA_CERTS or --use-openssl-ca is in
 * effect; then the exact list is built as before.
 */
function buildSecureContext(ca: string[], identity: { cert?: string; key?: string }): SecureContext {
  const bundled = rootCertificates;
  const defaultIsBundled = !process.env.NODE_EXTRA_CA_CERTS && !/--use-openssl-ca/.test(`${process.execArgv.join(' ')} ${process.env.NODE_OPTIONS ?? ''}`);
  if (!defaultIsBundled || ca.length < bundled.length || bundled.some((r, i) => ca[i] !== r)) return createSecureContext({ ca, ...identity });
  const ctx = createSecureContext(identity);
  // addCACert on a context using the shared root store gives the context its own copy first (Node's
  // SecureContext::GetCertStoreOwnedByThisSecureContext): other contexts do not gain these anchors.
  for (const extra of ca.slice(bundled.length)) (ctx.context as { addCACert(pem: string): void }).addCACert(extra);
  return ctx;
}

type SyncConnector = (opts: buildConnector.Options, cb: buildConnector.Callback) => Socket | TLSSocket | undefined;

/**
 * undici's own connector (verification on, trust anchors, optional client certificate), plus a record of the
 * presented chain: read on the socket's 'secure' event, which fires before Node checks the chain and
 * destroys the socket. Without it a failed handshake leaves nothing to say who issued the certificate.
 */
export function tlsConnector(tls: TlsSettings): SyncConnector {
  const base = buildConnector({
    secureContext: secureContextFor(tls),
    rejectUnauthorized: true,
    timeout: tls.timeoutMs,
  }) as unknown as SyncConnector;
  return (opts, cb) => {
    let chain: PresentedCertificate[] = [];
    const socket = base(opts, ((err: Error | null, s: Socket | TLSSocket | null) => {
      const code = (err as { code?: string } | null)?.code ?? '';
      if (err && opts.protocol === 'https:' && TLS_FAILURE.test(code)) cb(new PresentedChainError(err, chain), null);
      else if (err) cb(err, null);
      else cb(null, s as Socket);
    }) as buildConnector.Callback);
    if (opts.protocol === 'https:' && socket) {
      (socket as TLSSocket).prependListener('secure', () => {
        chain = presentedChain(socket as TLSSocket);
        tls.onChain?.(`${opts.hostname}${opts.port ? `:${opts.port}` : ''}`, chain);
      });
    }
    return socket;
  };
}

function challengeSchemes(header: string | string[] | undefined): string[] {
  const values = Array.isArray(header) ? header : header ? [header] : [];
  return values.flatMap((v) => v.split(/,(?=\s*[A-Za-z-]+(?:\s|$))/)).map((v) => v.trim().split(/\s+/)[0]!).filter(Boolean);
}

/**
 * Opens CONNECT tunnels through one proxy, answering its authentication challenges. A pool, not a single
 * client: tunnels to several servers open in parallel instead of one after another behind a slow CONNECT.
 */
export class ProxyTunnel {
  private readonly client: Pool;
  private readonly timeoutMs: number;
  /** Whether the proxy has taken a TCP connection / answered a CONNECT: "silent" vs "unreachable". */
  accepted = false;
  answered = false;

  constructor(readonly proxy: URL, private readonly resolver: ProxyResolver | undefined, tls: TlsSettings) {
    this.timeoutMs = tls.timeoutMs;
    this.client = new Pool(proxy.origin, {
      connect: { secureContext: secureContextFor({ ca: tls.ca, timeoutMs: tls.timeoutMs }), rejectUnauthorized: true, timeout: tls.timeoutMs },
      headersTimeout: tls.timeoutMs,
      bodyTimeout: tls.timeoutMs,
    });
  }

  private async attempt(target: string, authorization: string | undefined): Promise<{ statusCode: number; headers: Record<string, string | string[] | undefined>; socket: Socket }> {
    let connected = false;
    // undici only reports "headers timeout": whether the proxy took the TCP connection is learnt here.
    const onConnect = () => (connected = this.accepted = true);
    this.client.on('connect', onConnect);
    try {
      const r = await this.client.connect({
        path: target,
        headers: { host: target, ...(authorization ? { 'proxy-authorization': authorization } : {}) },
      });
      this.answered = true;
      return { statusCode: r.statusCode, headers: r.headers, socket: r.socket as Socket };
    } catch (e) {
      throw new ProxyUnreachableError(this.proxy, e as Error, { connected, timeoutMs: this.timeoutMs });
    } finally {
      this.client.off('connect', onConnect);
    }
  }

  /** A socket to `host:port` through the proxy; Basic is sent at once when configured, Negotiate when asked. */
  async open(target: string): Promise<Socket> {
    const creds = this.resolver?.credentialsFor(this.proxy);
    const basic = creds ? `Basic ${Buffer.from(`${creds.user}:${creds.password}`).toString('base64')}` : undefined;
    let r = await this.attempt(target, basic);
    if (r.statusCode === 407) {
      r.socket.destroy();
      const schemes = challengeSchemes(r.headers['proxy-authenticate']);
      const offers = (s: string) => schemes.some((x) => x.toLowerCase() === s);
      if (offers('negotiate')) {
        let token: string;
        try {
          token = await negotiateAuthorization({ url: this.proxy.href });
        } catch (e) {
          if (!basic || !offers('basic')) throw new ProxyAuthError(this.proxy, schemes, 'negotiate-failed', e instanceof KerberosError ? e.message : (e as Error).message);
          throw new ProxyAuthError(this.proxy, schemes, 'rejected', 'the configured user name and password were refused');
        }
        r = await this.attempt(target, token);
        if (r.statusCode === 407) {
          r.socket.destroy();
          throw new ProxyAuthError(this.proxy, schemes, 'rejected', 'the Kerberos (Negotiate) credentials were refused');
        }
      } else {
        throw new ProxyAuthError(this.proxy, schemes, basic ? 'rejected' : 'no-credentials');
      }
    }
    if (r.statusCode < 200 || r.statusCode > 299) {
      r.socket.destroy();
      const squid = r.headers['x-squid-error'];
      throw new ProxyRefusedError(this.proxy, target, r.statusCode, typeof squid === 'string' ? squid : undefined);
    }
    return r.socket;
  }

  close(): Promise<void> {
    return this.client.close().catch(() => undefined);
  }

  /** Abandons CONNECTs still waiting for an answer. */
  destroy(): Promise<void> {
    return this.client.destroy().catch(() => undefined);
  }
}

/** Connections for one route: close waits for requests under way, destroy aborts them. */
export interface RouteConnection {
  dispatcher: Dispatcher;
  close: () => Promise<void>;
  destroy: () => Promise<void>;
  label: string;
  /** For a deadline message: what the route was stuck on, when that is known ("the proxy … did not answer"). */
  stall?: () => string | undefined;
}

/** A dispatcher that sends every request on `route`; requests to https servers are tunnelled with CONNECT. */
export function routeDispatcher(route: Route, tls: TlsSettings, resolver: ProxyResolver | undefined): RouteConnection {
  const connectTls = tlsConnector(tls);
  const agentTimeouts = { headersTimeout: tls.timeoutMs, bodyTimeout: tls.timeoutMs };
  if (route.kind === 'direct') {
    const agent = new Agent({ connect: connectTls as buildConnector.connector, ...agentTimeouts });
    return { dispatcher: agent, close: () => agent.close().catch(() => undefined), destroy: () => agent.destroy().catch(() => undefined), label: 'DIRECT' };
  }
  const tunnel = new ProxyTunnel(route.proxy, resolver, tls);
  const connect = ((opts: buildConnector.Options, cb: buildConnector.Callback) => {
    const target = `${opts.hostname.includes(':') ? `[${opts.hostname}]` : opts.hostname}:${opts.port || (opts.protocol === 'https:' ? 443 : 80)}`;
    tunnel.open(target).then(
      (socket) => (opts.protocol === 'https:' ? connectTls({ ...opts, httpSocket: socket }, cb) : cb(null, socket)),
      (e: Error) => cb(e, null),
    );
  }) as buildConnector.connector;
  const tunnelled = new Agent({ connect, ...agentTimeouts });
  // Plain-http URLs (a CRL at http://…) go to the proxy as absolute-form requests, which every proxy allows
  // (a CONNECT to port 80 is commonly refused). Only Basic credentials apply there.
  const creds = resolver?.credentialsFor(route.proxy);
  const plain = new ProxyAgent({
    uri: route.proxy.href,
    proxyTunnel: false,
    ...(creds ? { token: `Basic ${Buffer.from(`${creds.user}:${creds.password}`).toString('base64')}` } : {}),
    proxyTls: { ca: tls.ca, rejectUnauthorized: true },
    ...agentTimeouts,
  });
  const dispatcher: Dispatcher = {
    dispatch: (opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler) =>
      String(opts.origin ?? '').startsWith('http:') ? plain.dispatch(opts, handler) : tunnelled.dispatch(opts, handler),
  } as unknown as Dispatcher;
  return {
    dispatcher,
    close: async () => {
      await Promise.all([tunnelled.close().catch(() => undefined), plain.close().catch(() => undefined), tunnel.close()]);
    },
    destroy: async () => {
      await Promise.all([tunnelled.destroy().catch(() => undefined), plain.destroy().catch(() => undefined), tunnel.destroy()]);
    },
    stall: () => (tunnel.accepted && !tunnel.answered ? `the proxy ${proxyKey(route.proxy)} accepted the connection but never answered` : undefined),
    label: describeRoute(route),
  };
}
