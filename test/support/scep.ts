/**
 * Debian's `scep` package (micromdm): a real SCEP CA (`scepserver`) and the reference client (`scepclient`),
 * started on loopback by the tests; plus a tiny recording reverse proxy in front of it, to count requests and
 * to play a CA that advertises less (GetCACaps is plain text, so rewriting it needs no signature).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import path from 'node:path';
import { tempDir } from './agent.js';
import { freePort, listenOnLoopback } from './net.js';
import { waitFor } from './wait.js';

const find = (name: string) => ['/usr/bin', '/usr/local/bin', '/usr/sbin'].map((d) => path.join(d, name)).find((p) => fs.existsSync(p));
export const SCEPSERVER = find('scepserver');
export const SCEPCLIENT = find('scepclient');

/** Why the SCEP tests cannot run here, or undefined when they can. */
export function scepUnavailable(): string | undefined {
  if (!SCEPSERVER || !SCEPCLIENT) return 'skipped: the scep package (scepserver, scepclient) is not installed (apt install scep)';
  return undefined;
}


/** A CA depot made by `scepserver ca -init` (2048-bit so that it is quick); reusable by several servers. */
export function initDepot(dir = path.join(tempDir('scep-depot'), 'depot'), keySize = 2048): { depot: string; caPem: string; caFingerprint: string } {
  execFileSync(SCEPSERVER!, ['ca', '-init', '-depot', dir, '-keySize', String(keySize)], { stdio: 'ignore' });
  const caPem = fs.readFileSync(path.join(dir, 'ca.pem'), 'utf8');
  return { depot: dir, caPem, caFingerprint: new X509Certificate(caPem).fingerprint256.replace(/:/g, '').toLowerCase() };
}

export interface ScepServerOptions {
  depot?: string;
  challenge?: string;
  /** -allowrenew: days before expiry from which a second certificate for the same CN is allowed. */
  allowRenewDays?: number;
  /** -crtvalid: validity of issued certificates in days. */
  validityDays?: number;
  csrVerifierExec?: string;
}

export interface ScepServer {
  url: string;
  port: number;
  depot: string;
  caPem: string;
  caFingerprint: string;
  /** Everything scepserver logged so far. */
  log(): string;
  /** Requests scepserver served, by operation (from its own log). */
  count(operation: 'GetCACert' | 'GetCACaps' | 'PKIOperation'): number;
  close(): Promise<void>;
}

export async function startScepServer(opts: ScepServerOptions = {}): Promise<ScepServer> {
  const ca = opts.depot
    ? { depot: opts.depot, caPem: fs.readFileSync(path.join(opts.depot, 'ca.pem'), 'utf8') }
    : initDepot();
  const caFingerprint = new X509Certificate(ca.caPem).fingerprint256.replace(/:/g, '').toLowerCase();
  const port = await freePort();
  const args = ['-depot', ca.depot, '-port', String(port), '-debug'];
  if (opts.challenge) args.push('-challenge', opts.challenge);
  if (opts.allowRenewDays !== undefined) args.push('-allowrenew', String(opts.allowRenewDays));
  if (opts.validityDays !== undefined) args.push('-crtvalid', String(opts.validityDays));
  if (opts.csrVerifierExec) args.push('-csrverifierexec', opts.csrVerifierExec);
  const child: ChildProcess = spawn(SCEPSERVER!, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stdout!.on('data', (d) => (log += d));
  child.stderr!.on('data', (d) => (log += d));
  const url = `http://127.0.0.1:${port}/scep`;
  const answers = () => new Promise<boolean>((resolve) => {
    http.get(`${url}?operation=GetCACaps`, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    }).on('error', () => resolve(false));
  });
  await waitFor('scepserver to answer GetCACaps', answers, 10_000, 50, () => (child.exitCode !== null ? 'scepserver exited' : undefined)).catch((e: Error) => {
    child.kill();
    throw new Error(`scepserver did not start (${e.message}): ${log}`);
  });
  const readyLog = log.length;
  return {
    url, port, depot: ca.depot, caPem: ca.caPem, caFingerprint,
    log: () => log.slice(readyLog),
    count: (op) => (log.slice(readyLog).match(new RegExp(`\\bop=${op}\\b`, 'g')) ?? []).length,
    close: () => new Promise<void>((resolve) => {
      if (child.exitCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill('SIGINT');
    }),
  };
}

export interface RecordingProxy {
  url: string;
  /** "METHOD operation" for every request, in order. */
  requests: string[];
  close(): Promise<void>;
}

/** A reverse proxy that records each request and can rewrite the GetCACaps answer. */
export async function startRecordingProxy(target: string, opts: { rewriteCaps?: (caps: string) => string } = {}): Promise<RecordingProxy> {
  const requests: string[] = [];
  const upstream = new URL(target);
  const server = http.createServer((req, res) => {
    const u = new URL(req.url ?? '/', 'http://proxy');
    const op = u.searchParams.get('operation') ?? '(none)';
    requests.push(`${req.method} ${op}`);
    const fwd = http.request({ host: upstream.hostname, port: upstream.port, path: `${upstream.pathname}${u.search}`, method: req.method, headers: req.headers }, (up) => {
      const chunks: Buffer[] = [];
      up.on('data', (c) => chunks.push(c));
      up.on('end', () => {
        let body = Buffer.concat(chunks);
        if (op === 'GetCACaps' && opts.rewriteCaps) body = Buffer.from(opts.rewriteCaps(body.toString('utf8')));
        const headers = { ...up.headers, 'content-length': String(body.length) };
        delete headers['transfer-encoding'];
        res.writeHead(up.statusCode ?? 502, headers);
        res.end(body);
      });
    });
    fwd.on('error', () => {
      res.writeHead(502);
      res.end();
    });
    req.pipe(fwd);
  });
  const port = await listenOnLoopback(server);
  return {
    url: `http://127.0.0.1:${port}${upstream.pathname}`,
    requests,
    close: () => new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    }),
  };
}

export interface MtlsServer {
  url: string;
  close(): Promise<void>;
}

/**
 * The relying party: an HTTPS server that asks for a client certificate, trusts only the SCEP CA, and answers
 * JSON {trusted, subject, serialNumber} — what a browser shows, so Chromium's page text is the verdict.
 */
export async function startMtlsServer(opts: { tls: { cert: string; key: string }; clientCaPem: string }): Promise<MtlsServer> {
  const server = https.createServer({
    ...opts.tls,
    ca: [opts.clientCaPem],
    requestCert: true,
    // This fixture judges the client certificate itself (below), so that "no certificate" is an answer, not a TLS error.
    rejectUnauthorized: false,
  }, (req, res) => {
    const socket = req.socket as import('node:tls').TLSSocket;
    const peer = socket.getPeerCertificate();
    res.setHeader('content-type', 'application/json');
    if (socket.authorized && peer?.subject) {
      res.end(JSON.stringify({ trusted: true, subject: peer.subject.CN, serialNumber: peer.serialNumber.toLowerCase().replace(/^0+/, '') }));
    } else {
      res.end(JSON.stringify({ trusted: false, reason: peer?.subject ? String(socket.authorizationError) : 'no-certificate' }));
    }
  });
  const port = await listenOnLoopback(server);
  return {
    url: `https://localhost:${port}/`,
    close: () => new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    }),
  };
}
