/**
 * A TLS 1.3 handshake with client authentication, the client key in three places: a software key file, the NSS
 * software token and a TPM 2.0 token (swtpm behind tpm2-abrmd), both reached by OpenSSL through libp11's
 * PKCS#11 engine. The loopback server times each handshake from TCP accept to "secure" (the client's
 * CertificateVerify signature is inside that interval), so process start-up and module loading are not counted.
 */
import { execFileSync, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { keyInStore, webCryptoKeyPair } from '../../src-main/core/keys/keys.js';
import { x509 } from '../../src-main/core/certificates/x509.js';
import { LinuxKeyStore, SOFTOKN_LIBRARIES, TPM2_PKCS11_LIBRARIES, softoknParameters, TPM_TOKEN_LABEL } from '../../src-main/platform/linux-keys.js';
import { tempDir } from '../support/agent.js';
import { startSoftTpm, tpmUnavailable } from '../support/tpm.js';
import { chromiumPageText, chromiumUnavailable } from '../support/chromium.js';
import { median, table } from './util.js';

const ENGINE = ['/usr/lib/x86_64-linux-gnu/engines-3/pkcs11.so', '/usr/lib/aarch64-linux-gnu/engines-3/pkcs11.so', '/usr/lib64/engines-3/pkcs11.so'].find((p) => fs.existsSync(p));
const ROUNDS = 8;

interface Ca { key: CryptoKeyPair; cert: x509.X509Certificate }
type CryptoKeyPair = crypto.webcrypto.CryptoKeyPair;

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };

async function makeCa(): Promise<Ca> {
  const key = (await crypto.webcrypto.subtle.generateKey(ALG, false, ['sign', 'verify'])) as CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({ name: 'CN=bench TLS CA', keys: key as never, signingAlgorithm: ALG, notBefore: new Date(Date.now() - 60_000), notAfter: new Date(Date.now() + 86_400_000),
    extensions: [new x509.BasicConstraintsExtension(true, undefined, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign, true)] });
  return { key, cert };
}

async function issue(ca: Ca, publicKey: crypto.webcrypto.CryptoKey, name: string, server: boolean): Promise<string> {
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: crypto.randomBytes(8).toString('hex').replace(/^[89a-f]/, '1'), subject: name, issuer: ca.cert.subject, publicKey: publicKey as never, signingKey: ca.key.privateKey as never,
    signingAlgorithm: ALG, notBefore: new Date(Date.now() - 60_000), notAfter: new Date(Date.now() + 86_400_000),
    extensions: [new x509.ExtendedKeyUsageExtension([server ? x509.ExtendedKeyUsage.serverAuth : x509.ExtendedKeyUsage.clientAuth]),
      ...(server ? [new x509.SubjectAlternativeNameExtension([{ type: 'ip', value: '127.0.0.1' }])] : [])],
  });
  return cert.toString('pem');
}

/** A loopback mTLS server that records, per connection, accept → handshake done, and whether a client certificate came. */
async function startServer(ca: Ca, dir: string): Promise<{ port: number; handshakes: { ms: number; cert: boolean }[]; close(): Promise<void> }> {
  const key = (await crypto.webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as CryptoKeyPair;
  const certPem = await issue(ca, key.publicKey, 'CN=127.0.0.1', true);
  const keyPem = crypto.KeyObject.from(key.privateKey).export({ format: 'pem', type: 'pkcs8' }).toString();
  fs.writeFileSync(path.join(dir, 'ca.pem'), ca.cert.toString('pem'));
  const accepted = new Map<number, number>();
  const handshakes: { ms: number; cert: boolean }[] = [];
  const server = tls.createServer({ key: keyPem, cert: certPem, ca: ca.cert.toString('pem'), requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.3' }, (s) => {
    const t0 = accepted.get(s.remotePort ?? -1);
    if (t0 !== undefined) handshakes.push({ ms: performance.now() - t0, cert: Boolean(s.getPeerCertificate()?.subject) });
    s.end('HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 3\r\nconnection: close\r\n\r\nok\n');
  });
  const sockets = new Set<net.Socket>();
  server.on('connection', (sock: net.Socket) => {
    accepted.set(sock.remotePort ?? -1, performance.now());
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
  });
  server.on('tlsClientError', () => undefined);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as net.AddressInfo).port, handshakes, close: () => new Promise((r) => {
    server.close(() => r());
    for (const sock of sockets) sock.destroy();
  }) };
}

/** OpenSSL's configuration loading libp11's engine on one PKCS#11 module (NSS softokn needs its init arguments). */
function engineConfig(dir: string, name: string, module: string, initArgs?: string): string {
  const file = path.join(dir, `${name}.cnf`);
  fs.writeFileSync(file, `openssl_conf = init\n[init]\nengines = engines\n[engines]\npkcs11 = p11\n[p11]\nengine_id = pkcs11\ndynamic_path = ${ENGINE}\nMODULE_PATH = ${module}\n${initArgs ? `INIT_ARGS = ${initArgs}\n` : ''}init = 0\n`);
  return file;
}

/** One handshake with `openssl s_client` (a child process: the server runs in this one's event loop). */
async function handshake(port: number, dir: string, certPem: string, key: { file: string } | { uri: string; conf: string }, env: NodeJS.ProcessEnv): Promise<{ ok: boolean; error?: string }> {
  const certFile = path.join(dir, `client-${crypto.randomBytes(4).toString('hex')}.pem`);
  fs.writeFileSync(certFile, certPem);
  const args = ['s_client', '-connect', `127.0.0.1:${port}`, '-tls1_3', '-CAfile', path.join(dir, 'ca.pem'), '-cert', certFile, '-brief'];
  if ('file' in key) args.push('-key', key.file);
  else args.push('-engine', 'pkcs11', '-keyform', 'engine', '-key', key.uri);
  const child = spawn('openssl', args, { stdio: ['pipe', 'pipe', 'pipe'], env: { ...env, ...('conf' in key ? { OPENSSL_CONF: key.conf } : {}) } });
  child.stdin.end();
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  await new Promise((r) => child.on('close', r));
  clearTimeout(timer);
  fs.rmSync(certFile, { force: true });
  return /CONNECTION ESTABLISHED/.test(out) ? { ok: true } : { ok: false, error: out.split('\n').filter(Boolean).slice(-2).join(' ').slice(0, 200) };
}

async function measure(handshakes: { ms: number; cert: boolean }[], run: () => Promise<{ ok: boolean; error?: string }>): Promise<{ ms: number; note?: string }> {
  const before = handshakes.length;
  for (let i = 0; i < ROUNDS; i++) {
    const r = await run();
    if (!r.ok) return { ms: NaN, note: r.error ?? 'handshake failed' };
    await new Promise((res) => setTimeout(res, 20));
  }
  const mine = handshakes.slice(before).filter((h) => h.cert).map((h) => h.ms);
  return mine.length ? { ms: median(mine) } : { ms: NaN, note: 'no handshake presented a certificate' };
}

/**
 * Headless Chromium presenting a token key (the way the device key is used): a profile whose NSS database trusts
 * the CA, with `module` registered when the key is in another token, and a policy that auto-selects the certificate.
 */
async function chromiumRounds(port: number, handshakes: { ms: number; cert: boolean }[], home: string, caFile: string, env: Record<string, string>, module?: string): Promise<{ ms: number; note?: string }> {
  const db = `sql:${path.join(home, '.pki', 'nssdb')}`;
  const run = (cmd: string, args: string[]) => execFileSync(cmd, args, { env: { ...process.env, ...env, HOME: home }, stdio: 'pipe' });
  fs.mkdirSync(path.join(home, '.pki', 'nssdb'), { recursive: true });
  if (!fs.existsSync(path.join(home, '.pki', 'nssdb', 'cert9.db'))) run('certutil', ['-N', '-d', db, '--empty-password']);
  run('certutil', ['-A', '-d', db, '-n', 'bench-ca', '-t', 'CT,C,C', '-i', caFile]);
  if (module) run('modutil', ['-dbdir', db, '-add', 'bench-tpm', '-libfile', module, '-force']);
  const etc = path.join(home, 'etc-chromium');
  fs.mkdirSync(path.join(etc, 'policies', 'managed'), { recursive: true });
  fs.writeFileSync(path.join(etc, 'policies', 'managed', 'bench.json'), JSON.stringify({ AutoSelectCertificateForUrls: [JSON.stringify({ pattern: `https://127.0.0.1:${port}`, filter: { ISSUER: { CN: 'bench TLS CA' } } })] }));
  const before = handshakes.length;
  for (let i = 0; i < 3; i++) {
    const text = await chromiumPageText(`https://127.0.0.1:${port}/`, { home, chromiumEtc: etc, env, timeoutMs: 90_000 });
    if (!/ok/.test(text)) return { ms: NaN, note: `Chromium did not get the page: ${text.slice(0, 120)}` };
  }
  const mine = handshakes.slice(before).filter((h) => h.cert).map((h) => h.ms);
  return mine.length ? { ms: median(mine) } : { ms: NaN, note: 'Chromium presented no certificate' };
}

const pctId = (hex: string) => hex.replace(/../g, (b) => `%${b}`);

export default async function bench(): Promise<void> {
  if (!ENGINE) {
    console.log('TLS handshake by key location: skipped: the OpenSSL PKCS#11 engine is not installed (apt install libengine-pkcs11-openssl)');
    return;
  }
  const dir = tempDir('bench-tls');
  const ca = await makeCa();
  const server = await startServer(ca, dir);
  const rows: (string | number)[][] = [];
  const notes: string[] = [];
  try {
    // A software key in a file (what the agent's own mTLS checks use where there is a key file).
    const soft = (await crypto.webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as CryptoKeyPair;
    const keyFile = path.join(dir, 'soft-key.pem');
    fs.writeFileSync(keyFile, crypto.KeyObject.from(soft.privateKey).export({ format: 'pem', type: 'pkcs8' }).toString(), { mode: 0o600 });
    const softCert = await issue(ca, soft.publicKey, 'CN=bench software key', false);
    const s = await measure(server.handshakes, () => handshake(server.port, dir, softCert, { file: keyFile }, process.env));
    rows.push(['software key file', s.ms]);
    if (s.note) notes.push(`software: ${s.note}`);

    // The NSS software token, the agent's own key store without a TPM.
    const home = path.join(dir, 'home');
    const nssDb = path.join(home, '.pki', 'nssdb');
    const nss = new LinuxKeyStore({ nssDbDir: nssDb, home, skipTpm: true, env: {} });
    const nk = await keyInStore(nss, await nss.generate('P-256', 'device-trust-key bench'));
    const nssCert = await issue(ca, (await webCryptoKeyPair(nk)).keys.publicKey, 'CN=bench NSS token key', false);
    await nss.attach(nk.storeId!, { certPem: nssCert, chainPem: [], label: 'device-trust-bench' });
    await nss.close();
    const softokn = SOFTOKN_LIBRARIES.find((l) => fs.existsSync(l))!;
    const nssConf = engineConfig(dir, 'nss', softokn, softoknParameters(nssDb));
    const n = await measure(server.handshakes, () => handshake(server.port, dir, nssCert, { uri: `pkcs11:token=NSS%20Certificate%20DB;id=${pctId(nk.storeId!)};type=private;pin-value=`, conf: nssConf }, process.env));
    rows.push(['NSS software token (PKCS#11 engine)', n.ms]);
    if (n.note) notes.push(`NSS token: ${n.note}`);
    const noChromium = chromiumUnavailable();
    if (!noChromium) {
      const c = await chromiumRounds(server.port, server.handshakes, home, path.join(dir, 'ca.pem'), {});
      rows.push(['NSS software token (headless Chromium)', c.ms]);
      if (c.note) notes.push(`NSS token, Chromium: ${c.note}`);
    } else notes.push(`Chromium: ${noChromium}`);

    // The TPM token.
    const why = tpmUnavailable();
    if (why) {
      rows.push(['TPM 2.0 token (PKCS#11 engine)', NaN]);
      notes.push(`TPM: ${why}`);
    } else {
      const tpm = await startSoftTpm();
      const saved = { ...process.env };
      try {
        Object.assign(process.env, tpm.env);
        const tpmHome = path.join(dir, 'tpm-home');
        const store = path.join(tpmHome, '.tpm2_pkcs11');
        const ks = new LinuxKeyStore({ nssDbDir: path.join(tpmHome, '.pki', 'nssdb'), home: tpmHome, skipTpm: false, env: { ...process.env, TPM2_PKCS11_STORE: store } });
        const info = await ks.info();
        if (info.protection !== 'tpm') throw new Error(info.reason);
        const tk = await keyInStore(ks, await ks.generate('P-256', 'device-trust-key bench'));
        const tpmCert = await issue(ca, (await webCryptoKeyPair(tk)).keys.publicKey, 'CN=bench TPM key', false);
        await ks.attach(tk.storeId!, { certPem: tpmCert, chainPem: [], label: 'device-trust-bench' });
        await ks.close();
        const tpmConf = engineConfig(dir, 'tpm', TPM2_PKCS11_LIBRARIES.find((l) => fs.existsSync(l))!);
        const t = await measure(server.handshakes, () => handshake(server.port, dir, tpmCert, { uri: `pkcs11:token=${TPM_TOKEN_LABEL};id=${pctId(tk.storeId!)};type=private;pin-value=`, conf: tpmConf }, { ...process.env, TPM2_PKCS11_STORE: store }));
        rows.push(['TPM 2.0 token, swtpm (PKCS#11 engine)', t.ms]);
        // `openssl -engine` makes libp11 the default for every algorithm, and tss2-esys inside tpm2-pkcs11 then cannot
        // make its own RSA key for the session salt ("Could not create rsa key"): a provider-based client would not.
        if (t.note) notes.push(`TPM, openssl s_client + libp11 engine: ${t.note.includes('General Error') ? 'C_Sign fails inside tpm2-pkcs11 (tss2-esys cannot use OpenSSL once the engine is the default for every algorithm)' : t.note}`);
        if (!chromiumUnavailable()) {
          const tpmLib = TPM2_PKCS11_LIBRARIES.find((l) => fs.existsSync(l))!;
          const c = await chromiumRounds(server.port, server.handshakes, tpmHome, path.join(dir, 'ca.pem'), { ...tpm.env, TPM2_PKCS11_STORE: store }, tpmLib);
          rows.push(['TPM 2.0 token, swtpm (headless Chromium)', c.ms]);
          if (c.note) notes.push(`TPM, Chromium: ${c.note}`);
        }
      } catch (e) {
        rows.push(['TPM 2.0 token, swtpm (PKCS#11 engine)', NaN]);
        notes.push(`TPM: ${(e as Error).message}`);
      } finally {
        process.env = saved;
        await tpm.stop();
      }
    }
  } finally {
    await server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
  table(`TLS 1.3 handshake with a client certificate, by where the client key lives (server-side, accept → secure, median ms; openssl s_client ×${ROUNDS}, Chromium ×3)`, ['client key', 'handshake ms'], rows);
  for (const n of notes) console.log(`  ${n}`);
}
