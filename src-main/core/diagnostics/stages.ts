import dns from 'node:dns';
import net from 'node:net';
import tls from 'node:tls';
import { isAgentError } from '../../base/errors.js';
import type { ProbeKind, ProbeResult, ProbeStatus, Stage, StageName } from './types.js';

/** Thrown by a stage to end its probe as failed, with a stable code for the findings. */
export class StageFailure extends Error {
  constructor(readonly code: string, message: string) {
    super(message);
  }
}

class Timeout extends Error {}

/** Races `p` against `ms`; the loser is left to its own timeout (every socket here has one). */
export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Timeout(`${what}: no answer within ${ms} ms`)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

/**
 * Collects one probe's stages with their timings. A probe is a function of this recorder; `runProbe` gives it
 * a hard deadline, so a slow target ends as `timeout` with the stages it got through, and never holds up others.
 */
export class ProbeRecorder {
  readonly stages: Stage[] = [];
  readonly facts: Record<string, unknown> = {};
  /** Stages under way; several can run at once (a DC's three ports). */
  private readonly inFlight = new Set<{ name: StageName; label: string; t0: number }>();
  private closed = false;

  async stage<T>(name: StageName, label: string, fn: () => Promise<T>, describe?: (r: T) => string): Promise<T> {
    const entry = { name, label, t0: performance.now() };
    this.inFlight.add(entry);
    try {
      const r = await fn();
      this.finish(entry, 'ok', describe?.(r) ?? '');
      return r;
    } catch (e) {
      this.finish(entry, timedOut(e) ? 'timeout' : 'fail', messageOf(e));
      throw e;
    }
  }

  private finish(entry: { name: StageName; label: string; t0: number }, status: Stage['status'], detail: string): void {
    if (!this.inFlight.delete(entry) || this.closed) return;
    this.stages.push({ name: entry.name, label: entry.label, status, ms: round(performance.now() - entry.t0), detail });
  }

  skip(name: StageName, label: string, reason: string): void {
    if (!this.closed) this.stages.push({ name, label, status: 'skipped', ms: 0, detail: reason });
  }

  /** Called at the deadline: stages in flight are recorded as timed out, later results are ignored. */
  timedOut(ms: number): void {
    for (const e of this.inFlight) this.finish(e, 'timeout', `no answer within ${ms} ms`);
    this.closed = true;
  }
}

export interface ProbeSpec {
  id: string;
  kind: ProbeKind;
  target: string;
  deadlineMs: number;
}

/** A probe that decides it cannot run (nothing configured, no certificate) throws this. */
export class ProbeSkipped extends Error {}

export async function runProbe(spec: ProbeSpec, fn: (r: ProbeRecorder) => Promise<void>): Promise<ProbeResult> {
  const rec = new ProbeRecorder();
  const t0 = performance.now();
  let status: ProbeStatus = 'ok';
  let error: ProbeResult['error'];
  try {
    await withTimeout(fn(rec), spec.deadlineMs, spec.id);
  } catch (e) {
    if (e instanceof ProbeSkipped) {
      status = 'skipped';
      rec.facts.skipped = e.message;
    } else if (timedOut(e)) {
      rec.timedOut(spec.deadlineMs);
      status = 'timeout';
      error = { code: 'TIMEOUT', message: `${spec.target} did not answer within ${spec.deadlineMs} ms` };
    } else {
      status = 'fail';
      error = { code: codeOf(e), message: messageOf(e) };
    }
  }
  return { id: spec.id, kind: spec.kind, target: spec.target, status, ms: round(performance.now() - t0), stages: [...rec.stages], ...(error ? { error } : {}), facts: { ...rec.facts } };
}

export function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}

export function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** The probe's own deadline, or the request's whole-exchange deadline (the same length): both are a timeout. */
function timedOut(e: unknown): boolean {
  return e instanceof Timeout || codeOf(e) === 'REQUEST_TIMEOUT';
}

function codeOf(e: unknown): string {
  if (e instanceof StageFailure) return e.code;
  if (isAgentError(e)) return e.code;
  const c = (e as { code?: unknown }).code;
  return typeof c === 'string' ? c : 'FAILED';
}

export function hostPort(url: string): { host: string; port: number; servername: string | undefined } {
  const u = new URL(url);
  const host = u.hostname.replace(/^\[|\]$/g, '');
  const port = u.port ? Number(u.port) : u.protocol === 'https:' ? 443 : 80;
  return { host, port, servername: net.isIP(host) ? undefined : host };
}

// --- the stages themselves ---

export async function dnsStage(rec: ProbeRecorder, host: string, timeoutMs: number): Promise<string> {
  if (net.isIP(host)) {
    rec.skip('dns', `resolve ${host}`, 'an IP address needs no lookup');
    return host;
  }
  return rec.stage('dns', `resolve ${host}`, async () => {
    try {
      const addrs = await withTimeout(dns.promises.lookup(host, { all: true }), timeoutMs, `DNS ${host}`);
      const first = addrs[0];
      if (!first) throw new StageFailure('DNS_NO_ADDRESS', `${host} has no address`);
      return first.address;
    } catch (e) {
      if (e instanceof StageFailure || e instanceof Timeout) throw e;
      const code = (e as { code?: string }).code ?? '';
      throw new StageFailure(code === 'ENOTFOUND' ? 'DNS_NOT_FOUND' : 'DNS_FAILED', `${host} does not resolve (${code || messageOf(e)})`);
    }
  }, (a) => a);
}

export function tcpConnect(host: string, port: number, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host, port });
    const done = (e?: Error) => {
      s.destroy();
      clearTimeout(timer);
      if (e) reject(e);
      else resolve();
    };
    const timer = setTimeout(() => done(new Timeout(`TCP ${host}:${port}: no answer within ${timeoutMs} ms`)), timeoutMs);
    s.once('connect', () => done());
    s.once('error', (e) => done(e));
  });
}

export async function tcpStage(rec: ProbeRecorder, host: string, port: number, timeoutMs: number): Promise<void> {
  await rec.stage('tcp', `TCP ${host}:${port}`, async () => {
    try {
      await tcpConnect(host, port, timeoutMs);
    } catch (e) {
      if (e instanceof Timeout) throw e;
      const code = (e as { code?: string }).code ?? 'FAILED';
      throw new StageFailure(code === 'ECONNREFUSED' ? 'TCP_REFUSED' : code === 'ECONNRESET' ? 'TCP_RESET' : 'TCP_FAILED', `TCP ${host}:${port}: ${code}`);
    }
  }, () => 'connected');
}

export interface TlsFacts {
  protocol: string | null;
  /** Subject and issuer CNs from the leaf up, as the server presented them. */
  chain: { subject: string; issuer: string; validTo: string }[];
  /** The issuer of the top certificate: who is really vouching for this connection. */
  rootIssuer: string;
}

const cnOf = (name: tls.PeerCertificate['subject'] | undefined): string => {
  const v = name?.CN ?? name?.O ?? '';
  return Array.isArray(v) ? v.join(', ') : String(v);
};

/**
 * A verified TLS handshake (the agent's trust anchors, verification on), recording what the server presented:
 * a root no one expects (a security product's) is how TLS interception shows.
 */
export async function tlsStage(rec: ProbeRecorder, host: string, port: number, servername: string | undefined, ca: string[], timeoutMs: number): Promise<TlsFacts> {
  return rec.stage('tls', `TLS handshake with ${servername ?? host}:${port}`, () =>
    new Promise<TlsFacts>((resolve, reject) => {
      const s = tls.connect({ host, port, ...(servername ? { servername } : {}), ca, rejectUnauthorized: true });
      const timer = setTimeout(() => {
        s.destroy();
        reject(new Timeout(`TLS ${host}:${port}: no handshake within ${timeoutMs} ms`));
      }, timeoutMs);
      s.once('secureConnect', () => {
        clearTimeout(timer);
        const chain: TlsFacts['chain'] = [];
        let c: tls.DetailedPeerCertificate | undefined = s.getPeerCertificate(true);
        const seen = new Set<string>();
        while (c && c.fingerprint256 && !seen.has(c.fingerprint256)) {
          seen.add(c.fingerprint256);
          chain.push({ subject: cnOf(c.subject), issuer: cnOf(c.issuer), validTo: c.valid_to });
          c = c.issuerCertificate;
        }
        const facts = { protocol: s.getProtocol(), chain, rootIssuer: chain.at(-1)?.issuer ?? '' };
        s.destroy();
        resolve(facts);
      });
      s.once('error', (e: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        s.destroy();
        const code = e.code ?? '';
        if (/CERT|SELF_SIGNED|UNABLE_TO|DEPTH_ZERO|HOSTNAME|ERR_TLS_CERT/.test(code)) reject(new StageFailure('TLS_UNTRUSTED', `the certificate presented for ${servername ?? host} is not trusted (${code})`));
        else if (/wrong version number|packet length too long|http request/i.test(e.message)) reject(new StageFailure('TLS_NOT_TLS', `${host}:${port} does not speak TLS (${e.message}); is it bound to HTTP instead of HTTPS?`));
        else reject(new StageFailure('TLS_FAILED', `TLS with ${host}:${port} failed (${code || e.message})`));
      });
    }),
  (f) => `${f.protocol ?? 'TLS'}; ${f.chain.map((c) => c.subject).join(' ← ')} (root: ${f.rootIssuer})`);
}

/**
 * Security products that re-sign TLS ("inspection"); seen as the issuer of a presented chain they betray a
 * TLS-intercepting proxy, which breaks mutual TLS to the identity provider.
 */
export const INTERCEPTOR_ISSUERS = /zscaler|netskope|palo ?alto|fortinet|fortigate|blue ?coat|symantec web|mcafee web|skyhigh|forcepoint|websense|sophos|umbrella|check ?point|barracuda|kaspersky|avast|\bavg\b|eset|bitdefender|trend ?micro|cloudflare gateway|iboss|lightspeed|securly|menlo|squid|mitmproxy|charles proxy|fiddler|burp/i;
