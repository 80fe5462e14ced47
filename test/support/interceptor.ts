/**
 * A TLS-inspecting middlebox for tests: terminates TLS with its own CA's certificate (as Zscaler, Netskope & co.
 * do), forwards each request to the real server — without the client certificate, which it cannot pass on —
 * and can rewrite answers so that clients are sent through it (standing in for the transparent redirection such
 * boxes do at the network layer).
 */
import https from 'node:https';
import { webcrypto } from 'node:crypto';
import { createRootCa, issueCertificate, privateKeyPem, x509 } from '../../lab/ca.js';
import { listenOnLoopback } from './net.js';

export interface Interceptor {
  origin: string;
  rootCaPem: string;
  close(): Promise<void>;
}

export async function interceptorCa(name: string) {
  const root = await createRootCa(name, 30);
  const keys = (await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const cert = await issueCertificate(root, { publicKey: keys.publicKey, subject: 'CN=localhost', crlUrl: 'http://crl.invalid/x.crl', validitySeconds: 86_400, extendedKeyUsages: [x509.ExtendedKeyUsage.serverAuth] });
  return { rootCaPem: root.cert.toString('pem'), cert: cert.toString('pem'), key: await privateKeyPem(keys.privateKey) };
}

export async function startInterceptor(opts: { upstream: string; upstreamCa: string; ca: Awaited<ReturnType<typeof interceptorCa>>; rewrite?: (body: string) => string }): Promise<Interceptor> {
  const up = new URL(opts.upstream);
  const server = https.createServer({ cert: opts.ca.cert, key: opts.ca.key }, (req, res) => {
    const forward = https.request({ host: up.hostname, port: up.port, path: req.url, method: req.method, headers: { ...req.headers, host: up.host }, ca: opts.upstreamCa }, (answer) => {
      const chunks: Buffer[] = [];
      answer.on('data', (c: Buffer) => chunks.push(c));
      answer.on('end', () => {
        let body = Buffer.concat(chunks);
        if (opts.rewrite && /json/.test(String(answer.headers['content-type']))) body = Buffer.from(opts.rewrite(body.toString('utf8')));
        const { 'transfer-encoding': _te, connection: _c, ...headers } = answer.headers;
        headers['content-length'] = String(body.length);
        res.writeHead(answer.statusCode ?? 502, headers);
        res.end(body);
      });
    });
    forward.on('error', () => res.destroy());
    req.pipe(forward);
  });
  server.on('tlsClientError', () => undefined);
  const port = await listenOnLoopback(server);
  return {
    origin: `https://localhost:${port}`,
    rootCaPem: opts.ca.rootCaPem,
    close: () => new Promise<void>((r) => {
      server.close(() => r());
      server.closeAllConnections();
    }),
  };
}
