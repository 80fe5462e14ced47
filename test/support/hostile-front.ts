/**
 * A hostile HTTPS front before the lab org: real TLS (a server certificate from the lab's root, so the agent
 * trusts it exactly as it trusts the org), every request forwarded to the lab unless the case answers itself.
 * One front per case; the case decides the discovery answer, the enroll/renew answer and the IWA answers.
 * Forged certificates are signed with the lab's real issuing CA key (the lab PKI is loaded from its data dir).
 */
import https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { webcrypto } from 'node:crypto';
import { createRootCa, ISSUING_CA_CN, randomSerial, x509, type KeyedCertificate, type LabPki } from '../../lab/ca.js';
import { listenOnLoopback } from './net.js';

export interface Reply {
  status?: number;
  headers?: Record<string, string>;
  body?: string | Buffer;
  json?: unknown;
  /** A body sent in `count` chunks of `chunk` without a Content-Length (a streamed huge answer). */
  stream?: { chunk: Buffer; count: number };
}

export interface IssueContext {
  path: 'enroll' | 'renew';
  csrPem: string;
  /** The lab's own answer to the same request. */
  forward: () => Promise<Reply>;
  front: string;
}

export interface FrontBehaviour {
  /** Rewrites the lab's discovery answer (an object), or answers instead of it (a Reply). */
  discovery?: (d: Record<string, any>, front: string) => Record<string, any> | Reply;
  /** Answers enroll/renew (default: forwarded to the lab). */
  issue?: (ctx: IssueContext) => Promise<Reply> | Reply;
  /** When set, discovery names this front as the only IWA web app and these answers come from it. */
  iwa?: (path: string) => Reply;
}

export interface Front {
  url: string;
  close(): Promise<void>;
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function forward(target: string, req: IncomingMessage, body: Buffer, ca: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = {};
    for (const h of ['content-type', 'authorization', 'accept']) if (req.headers[h]) headers[h] = String(req.headers[h]);
    const out = https.request(`${target}${req.url ?? '/'}`, { method: req.method, headers: { ...headers, 'content-length': String(body.length) }, ca }, (res) => {
      void readBody(res).then((b) => resolve({ status: res.statusCode ?? 502, headers: { 'content-type': String(res.headers['content-type'] ?? 'application/octet-stream') }, body: b }), reject);
    });
    out.on('error', reject);
    out.end(body);
  });
}

function send(res: ServerResponse, r: Reply): void {
  const headers = { ...(r.headers ?? {}) };
  if (r.json !== undefined) headers['content-type'] ??= 'application/json';
  res.writeHead(r.status ?? 200, headers);
  if (r.stream) {
    let left = r.stream.count;
    const pump = () => {
      while (left > 0) {
        left--;
        if (!res.write(r.stream!.chunk)) {
          res.once('drain', pump);
          return;
        }
      }
      res.end();
    };
    res.on('error', () => undefined);
    res.on('close', () => (left = 0));
    pump();
    return;
  }
  res.end(r.json !== undefined ? JSON.stringify(r.json) : (r.body ?? ''));
}

export async function startFront(opts: { labOrgUrl: string; rootCaPem: string; tls: { cert: string; key: string }; behaviour: FrontBehaviour }): Promise<Front> {
  const b = opts.behaviour;
  let url = '';
  const server = https.createServer(opts.tls, (req, res) => {
    res.on('error', () => undefined);
    void (async () => {
      try {
        const body = await readBody(req);
        const pathname = new URL(req.url ?? '/', 'https://x').pathname;
        if (pathname.startsWith('/IWA/') && b.iwa) return send(res, b.iwa(pathname.slice('/IWA/'.length)));
        if (pathname === '/api/v1/device-trust/config') {
          const lab = await forward(opts.labOrgUrl, req, body, opts.rootCaPem);
          let d = JSON.parse(String(lab.body)) as Record<string, any>;
          if (b.iwa) d = { ...d, iwa: { ...d.iwa, primary: `${url}/IWA`, backups: [] } };
          const out = b.discovery ? b.discovery(d, url) : d;
          return send(res, 'status' in out || 'body' in out || 'stream' in out || 'json' in out ? (out as Reply) : { json: out });
        }
        const m = /^\/api\/v1\/device-trust\/(enroll|renew)$/.exec(pathname);
        if (m && b.issue) {
          const csrPem = String((JSON.parse(body.toString() || '{}') as { csr?: string }).csr ?? '');
          return send(res, await b.issue({ path: m[1] as 'enroll' | 'renew', csrPem, forward: () => forward(opts.labOrgUrl, req, body, opts.rootCaPem), front: url }));
        }
        send(res, await forward(opts.labOrgUrl, req, body, opts.rootCaPem));
      } catch (e) {
        if (!res.headersSent) send(res, { status: 502, json: { errorCode: 'FRONT', errorSummary: (e as Error).message } });
        else res.destroy();
      }
    })();
  });
  server.on('tlsClientError', () => undefined);
  server.on('clientError', (_e, s) => s.destroy());
  const port = await listenOnLoopback(server);
  url = `https://localhost:${port}`;
  return {
    url,
    close: () => new Promise<void>((r) => {
      server.close(() => r());
      server.closeAllConnections();
    }),
  };
}

const DAY = 86_400_000;

export interface ForgeOptions {
  /** Default: the lab's issuing CA (the right signer). */
  signer?: KeyedCertificate;
  /** Another key instead of the CSR's. */
  otherKey?: boolean;
  ca?: boolean;
  keyUsage?: number;
  eku?: string[];
  notBefore?: Date;
  notAfter?: Date;
  /** Another subject than the CSR's (e.g. another device's ID). */
  subject?: string;
  /** Subject alternative names to add. */
  san?: x509.JsonGeneralNames;
  /** The signature's hash (a weak one: SHA-1). */
  hash?: 'SHA-1' | 'SHA-256';
}

/** A certificate for the CSR's key (or another), signed by `signer`, with exactly the extensions asked for. */
export async function forge(pki: LabPki, csrPem: string, o: ForgeOptions = {}): Promise<string> {
  const signer = o.signer ?? pki.issuing;
  const csr = new x509.Pkcs10CertificateRequest(csrPem);
  const publicKey = o.otherKey
    ? ((await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair).publicKey
    : csr.publicKey;
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: o.subject ?? csr.subject,
    issuer: signer.cert.subject,
    notBefore: o.notBefore ?? new Date(now - 60_000),
    notAfter: o.notAfter ?? new Date(now + 365 * DAY),
    publicKey,
    signingKey: signer.privateKey,
    signingAlgorithm: signer.privateKey.algorithm.name === 'ECDSA' ? { name: 'ECDSA', hash: o.hash ?? 'SHA-256' } : { name: 'RSASSA-PKCS1-v1_5', hash: o.hash ?? 'SHA-256' },
    extensions: [
      new x509.BasicConstraintsExtension(o.ca ?? false, undefined, true),
      new x509.KeyUsagesExtension(o.keyUsage ?? x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension(o.eku ?? [x509.ExtendedKeyUsage.clientAuth]),
      ...(o.san ? [new x509.SubjectAlternativeNameExtension(o.san)] : []),
    ],
  });
  return cert.toString('pem');
}

/** A root and an issuing CA named exactly like the lab's ("MTLS Certificate Authority") but with other keys. */
export async function lookalikeCa(): Promise<{ root: KeyedCertificate; issuing: KeyedCertificate; chainPem: string[] }> {
  const root = await createRootCa('Device Trust Lab Root CA', 30);
  const keys = (await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: `CN=${ISSUING_CA_CN}`,
    issuer: root.cert.subject,
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 365 * DAY),
    publicKey: keys.publicKey,
    signingKey: root.privateKey,
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
    extensions: [new x509.BasicConstraintsExtension(true, 0, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true)],
  });
  const issuing = { cert, privateKey: keys.privateKey };
  return { root, issuing, chainPem: [cert.toString('pem'), root.cert.toString('pem')] };
}

/**
 * An RSA-1024 issuing CA named like the lab's, signed by the lab's own root: weak, but a rollover the old trust
 * verifies (so at renewal only the strength floor refuses it). Its own signature uses `hash`.
 */
export async function weakRsaCa(pki: LabPki, hash: 'SHA-256' | 'SHA-1' = 'SHA-256', bits = 1024): Promise<{ issuing: KeyedCertificate; chainPem: string[] }> {
  const alg = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256', publicExponent: new Uint8Array([1, 0, 1]), modulusLength: bits };
  return issuingCaUnderRoot(pki, (await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair, hash);
}

/** A new issuing CA (another key, same name) signed by the lab's own root: a rollover the old trust verifies. */
export async function rolloverCa(pki: LabPki): Promise<{ issuing: KeyedCertificate; chainPem: string[] }> {
  return issuingCaUnderRoot(pki, (await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair, 'SHA-256');
}

/** An issuing CA named like the lab's, for `keys`, signed by the lab's root with ECDSA over `hash`; its chain up to that root. */
async function issuingCaUnderRoot(pki: LabPki, keys: webcrypto.CryptoKeyPair, hash: 'SHA-256' | 'SHA-1'): Promise<{ issuing: KeyedCertificate; chainPem: string[] }> {
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: `CN=${ISSUING_CA_CN}`,
    issuer: pki.root.cert.subject,
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 365 * DAY),
    publicKey: keys.publicKey,
    signingKey: pki.root.privateKey,
    signingAlgorithm: { name: 'ECDSA', hash },
    extensions: [new x509.BasicConstraintsExtension(true, 0, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true)],
  });
  return { issuing: { cert, privateKey: keys.privateKey }, chainPem: [cert.toString('pem'), pki.rootCaPem] };
}
