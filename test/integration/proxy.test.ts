/**
 * Every request goes the way the network requires, proven with a real squid on loopback: an explicit
 * HttpProxy=, a PAC file served over HTTP that splits the org (proxy) from the IWA (DIRECT), fall-through
 * past a dead proxy, PAC files that throw, loop or are not JavaScript, Basic proxy authentication, a
 * TLS-intercepting squid (ssl_bump) and the mTLS check through the tunnel. The lab-only sign-in stands in for
 * Kerberos here; Negotiate to the proxy is tested with a real KDC at the end.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { kerberosToolsAvailable, startKdc, type Kdc } from '../../lab/kdc.js';
import { HttpClient } from '../../src-main/core/net/http.js';
import { startLabOrg, type LabOrg } from '../../lab/org.js';
import { makeProfile, type Profile, runAgent, tempDir, writeRootCa } from '../support/agent.js';
import { nssUserCerts } from '../support/nss.js';
import { freePort, listenOnLoopback } from '../support/net.js';
import { squidUnavailable, startSquid, type Squid } from '../support/squid.js';
import { eventsText, readEvents, stateText } from '../support/state.js';

const skipReason = squidUnavailable();
if (skipReason) console.log(`# proxy ${skipReason}`);

const portOf = (u: string) => new URL(u).port;
const events = (p: Profile) => {
  try {
    return readEvents(p);
  } catch {
    return [];
  }
};
/** squid writes a CONNECT's log line when the tunnel closes, just after the agent exits. */
async function settledLog(squid: Squid): Promise<string[]> {
  await new Promise((r) => setTimeout(r, 300));
  return squid.accessLog();
}
const connectsTo = (log: string[], port: string) => log.filter((l) => new RegExp(`CONNECT localhost:${port}\\b`).test(l));

interface PacServer {
  url(name: string): string;
  hits: Map<string, number>;
  close(): Promise<void>;
}

async function servePac(files: Record<string, string>): Promise<PacServer> {
  const hits = new Map<string, number>();
  const server = http.createServer((req, res) => {
    const name = (req.url ?? '/').slice(1);
    hits.set(name, (hits.get(name) ?? 0) + 1);
    const body = files[name];
    if (body === undefined) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/x-ns-proxy-autoconfig' }).end(body);
  });
  const port = await listenOnLoopback(server);
  const base = `http://127.0.0.1:${port}`;
  return {
    url: (name) => `${base}/${name}`,
    hits,
    close: () => new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    }),
  };
}

describe('proxy, PAC and TLS interception with a real squid', { skip: skipReason }, () => {
  let lab: LabOrg;
  let rootCaFile: string;
  let squid: Squid;
  let pacs: PacServer;
  let deadPort: number;
  const profile = (extra: Record<string, string>) => makeProfile({ orgUrl: lab.orgUrl, rootCaFile, extraEnv: { DTA_LAB_SIGN_IN: 'true', ...extra } });

  before(async () => {
    lab = await startLabOrg({ allowLabSignIn: true });
    rootCaFile = writeRootCa(lab.rootCaPem);
    squid = await startSquid();
    deadPort = await freePort();
    const orgPort = portOf(lab.orgUrl);
    const viaSquid = `PROXY 127.0.0.1:${squid.port}`;
    pacs = await servePac({
      // The org (and its CRL) through the proxy, everything else — the IWA web apps, the mTLS host — DIRECT.
      'split.pac': `function FindProxyForURL(url, host) {\n  if (shExpMatch(url, "https://localhost:${orgPort}/*")) return "${viaSquid}";\n  return "DIRECT";\n}\n`,
      'dead-first.pac': `function FindProxyForURL(url, host) { return "PROXY 127.0.0.1:${deadPort}; ${viaSquid}; DIRECT"; }\n`,
      'loops.pac': 'function FindProxyForURL(url, host) { var i = 0; while (true) { i++; } }\n',
      'not-js.pac': '<html><body>Sign in to the captive portal</body></html>\n',
    });
  });

  after(async () => {
    await pacs?.close();
    await squid?.stop();
    await lab?.close();
  });

  test('HttpProxy=: enrollment goes through squid (CONNECT to the org and the IWA), and status --check checks the org through the tunnel', async () => {
    const p = profile({});
    const before = squid.accessLog().length;
    const r = await runAgent(['run', `HttpProxy=${squid.url}`, '--debug'], p.env);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.match(r.stderr, new RegExp(`Route to localhost:${portOf(lab.orgUrl)}: PROXY 127\\.0\\.0\\.1:${squid.port} \\(explicit proxy`));
    assert.equal(nssUserCerts(p.nssDb).length, 1);
    let log = (await settledLog(squid)).slice(before);
    assert.ok(connectsTo(log, portOf(lab.orgUrl)).length >= 1, `CONNECT to the org in squid's log:\n${log.join('\n')}`);
    assert.ok(connectsTo(log, portOf(lab.iwaPrimaryUrl)).length >= 1, 'CONNECT to the IWA in squid\'s log');

    const mark = squid.accessLog().length;
    const s = await runAgent(['status', '--check', '--json', `HttpProxy=${squid.url}`], p.env);
    assert.equal(s.code, 0, s.stderr + s.stdout);
    const report = JSON.parse(s.stdout);
    // The device key lives in the NSS token, which only browsers present from; the agent checks the org and CRL through the tunnel.
    assert.equal(report.checks.org.ok, true, JSON.stringify(report.checks));
    assert.equal(report.checks.revocation.ok, true, JSON.stringify(report.checks));
    assert.equal(report.keyProtection.protection, 'software');
    log = (await settledLog(squid)).slice(mark);
    assert.ok(connectsTo(log, portOf(lab.orgUrl)).length >= 1, `status --check went through a CONNECT tunnel:\n${log.join('\n')}`);
  });

  test('a PAC file over HTTP sends the org through squid and the IWA DIRECT: squid sees the org, never the IWA', async () => {
    const p = profile({ DTA_PAC_URL: pacs.url('split.pac') });
    const before = squid.accessLog().length;
    const hitsBefore = pacs.hits.get('split.pac') ?? 0;
    const r = await runAgent(['run', '--debug'], p.env);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.equal(nssUserCerts(p.nssDb).length, 1);
    assert.match(r.stderr, new RegExp(`Route to localhost:${portOf(lab.iwaPrimaryUrl)}: DIRECT \\(PAC file`));
    const log = (await settledLog(squid)).slice(before);
    assert.ok(connectsTo(log, portOf(lab.orgUrl)).length >= 1, `CONNECT to the org:\n${log.join('\n')}`);
    for (const iwa of [lab.iwaPrimaryUrl, lab.iwaBackupUrl]) {
      assert.equal(log.filter((l) => l.includes(`:${portOf(iwa)}`)).length, 0, `no request to the IWA at ${iwa} in squid's log:\n${log.join('\n')}`);
    }
    assert.ok(lab.received.some((q) => q.url.startsWith(lab.iwaPrimaryUrl)), 'the IWA was reached (directly)');
    assert.equal((pacs.hits.get('split.pac') ?? 0) - hitsBefore, 1, 'the PAC file is fetched once per run and cached');
  });

  test('a PAC whose first proxy is dead falls through to the next one', async () => {
    const p = profile({ DTA_PAC_URL: pacs.url('dead-first.pac') });
    const before = squid.accessLog().length;
    const r = await runAgent(['run', '--debug'], p.env);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.match(r.stderr, new RegExp(`proxy 127\\.0\\.0\\.1:${deadPort} cannot be reached .*; trying PROXY 127\\.0\\.0\\.1:${squid.port}`));
    const log = (await settledLog(squid)).slice(before);
    assert.ok(connectsTo(log, portOf(lab.orgUrl)).length >= 1, 'the org was reached through the second proxy');
  });

  test('proxy-check --json: for each URL the agent uses, the rule, the routes, the route used, and each step with its time', async () => {
    const p = profile({ DTA_PAC_URL: pacs.url('dead-first.pac') });
    const r = await runAgent(['proxy-check', '--json'], p.env);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const report = JSON.parse(r.stdout);
    assert.equal(report.ok, true);
    assert.deepEqual(report.checks.map((c: { what: string }) => c.what), ['the org', 'the IWA web app (primary)', 'the IWA web app (backup 1)', 'the revocation list (CRL)', 'the mTLS endpoint']);
    const org = report.checks[0];
    assert.match(org.rule, /^PAC file .*dead-first\.pac returned "PROXY/);
    assert.equal(org.route, `PROXY 127.0.0.1:${squid.port}`);
    const names = org.steps.map((s: { name: string; ok: boolean }) => `${s.ok ? 'ok' : 'failed'} ${s.name}`);
    assert.deepEqual(names, [
      'ok Decide the route (proxy rules, PAC)',
      `failed CONNECT localhost:${portOf(lab.orgUrl)} through PROXY 127.0.0.1:${deadPort}`,
      `ok CONNECT localhost:${portOf(lab.orgUrl)} through PROXY 127.0.0.1:${squid.port}`,
      `ok TLS handshake with localhost:${portOf(lab.orgUrl)}`,
      `ok HTTP answer from localhost:${portOf(lab.orgUrl)}`,
    ]);
    for (const s of org.steps) assert.equal(typeof s.ms, 'number');
    assert.equal(org.status, 200);
    const iwa = report.checks[1];
    assert.equal(iwa.status, 401, 'the IWA answers with its Negotiate challenge: the route works');
  });

  for (const [name, location, expected] of [
    ['loops forever', () => pacs.url('loops.pac'), /did not finish within 3000 ms/],
    ['is not JavaScript', () => pacs.url('not-js.pac'), /is not valid JavaScript/],
    ['throws', () => {
      const f = path.join(tempDir('pac'), 'throws.pac');
      fs.writeFileSync(f, 'function FindProxyForURL(url, host) { throw new Error("no route for " + host); }\n');
      return pathToFileURL(f).href;
    }, /failed while running: no route for localhost/],
  ] as const) {
    test(`a PAC file that ${name} gives a clear error within the time limit; nothing is installed`, async () => {
      const p = profile({ DTA_PAC_URL: location() });
      const t0 = Date.now();
      const r = await runAgent(['run'], p.env, { timeoutMs: 30_000 });
      assert.equal(r.code, 78, r.stderr + r.stdout);
      assert.match(r.stderr, expected);
      assert.match(r.stderr, /What to do: Fix the PAC file/);
      assert.ok(Date.now() - t0 < 30_000, 'the agent did not hang');
      assert.deepEqual(nssUserCerts(p.nssDb), []);
    });
  }

  test('a proxy that is not there at all: "retry later", naming the proxy and the rule that chose it', async () => {
    const p = profile({});
    const r = await runAgent(['run', `HttpProxy=http://127.0.0.1:${deadPort}`], p.env);
    assert.equal(r.code, 20, r.stderr);
    assert.match(r.stderr, new RegExp(`the proxy 127\\.0\\.0\\.1:${deadPort} cannot be reached \\(ECONNREFUSED\\) \\(route chosen by explicit proxy`));
  });

  test('a plain-http URL (a CRL at http://…) goes to the proxy as a proxy request, with fall-through past a dead proxy', async () => {
    const server = http.createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/pkix-crl' }).end('crl'));
    const port = await listenOnLoopback(server);
    const url = `http://localhost:${port}/ca.crl`;
    const pac = path.join(tempDir('pac-http'), 'http.pac');
    fs.writeFileSync(pac, `function FindProxyForURL(url, host) { return "PROXY 127.0.0.1:${deadPort}; PROXY 127.0.0.1:${squid.port}"; }`);
    const client = new HttpClient({ timeoutMs: 5000, proxy: { httpProxyPacLocation: pathToFileURL(pac).href, env: {}, os: false } });
    const before = squid.accessLog().length;
    try {
      const res = await client.send({ url, what: 'the revocation list (CRL)' });
      assert.equal(res.status, 200);
      assert.equal(res.body.toString(), 'crl');
    } finally {
      await client.close();
      server.closeAllConnections();
      server.close();
    }
    const log = (await settledLog(squid)).slice(before);
    assert.ok(log.some((l) => l.includes(`GET ${url}`)), `squid forwarded GET ${url}:\n${log.join('\n')}`);
  });

  test('HTTPS_PROXY from the environment is used; NO_PROXY naming the org sends it DIRECT (loopback is not bypassed by itself)', async () => {
    const p = profile({ HTTPS_PROXY: squid.url });
    const before = squid.accessLog().length;
    const r = await runAgent(['run'], p.env);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    let log = (await settledLog(squid)).slice(before);
    assert.ok(connectsTo(log, portOf(lab.orgUrl)).length >= 1, 'localhost went through the proxy: no implicit loopback exception');

    const p2 = profile({ HTTPS_PROXY: squid.url, NO_PROXY: 'localhost' });
    const mark = squid.accessLog().length;
    const r2 = await runAgent(['run'], p2.env);
    assert.equal(r2.code, 0, r2.stderr + r2.stdout);
    log = (await settledLog(squid)).slice(mark);
    assert.deepEqual(log, [], 'NO_PROXY=localhost: nothing through the proxy');
  });

  describe('Basic proxy authentication', () => {
    let authSquid: Squid;
    const password = 'Pr0xy-s3cret-value';
    before(async () => {
      authSquid = await startSquid({ basicAuth: { user: 'bob', password } });
    });
    after(() => authSquid?.stop());

    test('with the user name and password in HttpProxy= it works; the password appears in no output and no log', async () => {
      const p = profile({});
      const proxy = `http://bob:${password}@127.0.0.1:${authSquid.port}`;
      const r = await runAgent(['run', `HttpProxy=${proxy}`, '--debug'], p.env);
      assert.equal(r.code, 0, r.stderr + r.stdout);
      const log = await settledLog(authSquid);
      assert.ok(log.some((l) => / bob HIER_DIRECT/.test(l) && l.includes(`CONNECT localhost:${portOf(lab.orgUrl)}`)), `squid authenticated bob:\n${log.join('\n')}`);
      assert.match(r.stderr, /httpProxy = "http:\/\/bob:\[redacted\]@/);
      const everything = r.stdout + r.stderr + eventsText(p) + stateText(p);
      assert.ok(!everything.includes(password), 'the password is never written');
      assert.ok(!everything.includes(Buffer.from(`bob:${password}`).toString('base64')), 'nor its Basic encoding');
    });

    test('without credentials: a clear configuration error that says how to give them', async () => {
      const p = profile({});
      const r = await runAgent(['run', `HttpProxy=http://127.0.0.1:${authSquid.port}`], p.env);
      assert.equal(r.code, 78, r.stderr);
      assert.match(r.stderr, new RegExp(`The proxy 127\\.0\\.0\\.1:${authSquid.port} requires authentication \\(Basic\\)`));
      assert.match(r.stderr, /HttpProxy=http:\/\/user:password@/);
      assert.deepEqual(nssUserCerts(p.nssDb), []);
    });

    test('with a wrong password: the proxy refused the credentials', async () => {
      const p = profile({});
      const r = await runAgent(['run', `HttpProxy=http://bob:wrong@127.0.0.1:${authSquid.port}`], p.env);
      // This machine's proxy configuration, not a rejection by the org (base/errors.ts FAULT_CLASSES).
      assert.equal(r.code, 78, r.stderr);
      assert.match(r.stderr, /refused this device's credentials/);
    });
  });

  describe('TLS interception (squid ssl_bump re-signing with its own CA)', () => {
    let bumpSquid: Squid;
    before(async () => {
      const dir = tempDir('bump-ca');
      execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${dir}/ca.key`, '-out', `${dir}/ca.pem`, '-days', '2',
        '-subj', '/O=Example Security Appliance/CN=Example Inspection CA', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], { stdio: 'pipe' });
      bumpSquid = await startSquid({ bump: { caCertPem: fs.readFileSync(`${dir}/ca.pem`, 'utf8'), caKeyPem: fs.readFileSync(`${dir}/ca.key`, 'utf8'), upstreamCaFile: rootCaFile } });
    });
    after(() => bumpSquid?.stop());

    test('the agent reports interception with the interceptor\'s issuer, records event 2020, and installs nothing', async () => {
      const p = profile({});
      const receivedBefore = lab.received.length;
      const r = await runAgent(['run', `HttpProxy=${bumpSquid.url}`], p.env);
      assert.equal(r.code, 30, r.stderr + r.stdout);
      assert.equal(lab.received.length, receivedBefore, 'no request reached the org through the interceptor');
      const host = `localhost:${portOf(lab.orgUrl)}`;
      assert.match(r.stderr, new RegExp(`A TLS-intercepting proxy or security product sits between this device and ${host}`));
      assert.match(r.stderr, /issued by "Example Inspection CA"/);
      assert.match(r.stderr, /Exempt localhost from TLS inspection/);
      assert.deepEqual(nssUserCerts(p.nssDb), []);
      assert.ok(!fs.existsSync(path.join(p.stateDir, 'credentials')) || fs.readdirSync(path.join(p.stateDir, 'credentials')).length === 0, 'no key was kept');
      const ev = events(p).find((e) => e.id === 2020);
      assert.ok(ev, 'event 2020 recorded');
      assert.equal(ev.data.issuer, 'Example Inspection CA');
      assert.deepEqual(ev.data.exempt, ['localhost']);
      const log = await settledLog(bumpSquid);
      assert.ok(connectsTo(log, portOf(lab.orgUrl)).length >= 1, 'squid was in the path');
    });

    test('proxy-check names the interceptor for the org', async () => {
      const p = profile({});
      const r = await runAgent(['proxy-check', `HttpProxy=${bumpSquid.url}`], p.env);
      assert.equal(r.code, 30, r.stderr + r.stdout);
      assert.match(r.stdout, /FAILED the org/);
      assert.match(r.stdout, /✗ TLS handshake with localhost:\d+ .*Example Inspection CA|issued by "Example Inspection CA"/);
    });
  });
});

const krbSkip = skipReason ?? (kerberosToolsAvailable() ? undefined : 'skipped: MIT Kerberos is not installed (apt install krb5-kdc krb5-admin-server krb5-user)');
if (krbSkip && !skipReason) console.log(`# proxy negotiate ${krbSkip}`);

describe('Negotiate (Kerberos) proxy authentication with a real KDC', { skip: krbSkip }, () => {
  let kdc: Kdc;
  let lab: LabOrg;
  let squid: Squid;
  let rootCaFile: string;

  before(async () => {
    const dir = tempDir('kdc-proxy');
    kdc = await startKdc({ dir, users: ['alice'] });
    lab = await startLabOrg({ allowLabSignIn: true });
    rootCaFile = path.join(dir, 'lab-root.pem');
    fs.writeFileSync(rootCaFile, lab.rootCaPem);
    // squid's helper accepts HTTP/localhost with the realm's service keytab.
    squid = await startSquid({ negotiate: { keytab: kdc.serviceKeytab, krb5Config: kdc.krb5Config, servicePrincipal: kdc.servicePrincipal } });
  });
  after(async () => {
    await squid?.stop();
    await lab?.close();
    await kdc?.stop();
  });

  test('a proxy that asks for Negotiate gets a Kerberos token for HTTP/<proxy host>, and enrollment goes through', async () => {
    const userEnv = await kdc.kinit(kdc.users[0]!.principal);
    const p = makeProfile({ orgUrl: lab.orgUrl, rootCaFile, extraEnv: { DTA_LAB_SIGN_IN: 'true', ...userEnv } });
    const r = await runAgent(['run', `HttpProxy=http://localhost:${squid.port}`], p.env);
    assert.equal(r.code, 0, r.stderr + r.stdout + fs.readFileSync(path.join(squid.dir, 'cache.log'), 'utf8').slice(-2000));
    const log = await settledLog(squid);
    assert.ok(log.some((l) => l.includes(`CONNECT localhost:${portOf(lab.orgUrl)}`) && l.includes(kdc.users[0]!.principal)), `squid logged the Kerberos user:\n${log.join('\n')}`);
  });

  test('without a Kerberos ticket the proxy\'s Negotiate challenge gives a clear error', async () => {
    const p = makeProfile({ orgUrl: lab.orgUrl, rootCaFile, extraEnv: { DTA_LAB_SIGN_IN: 'true', KRB5_CONFIG: kdc.krb5Config, KRB5CCNAME: `FILE:${path.join(tempDir('noccache'), 'none')}` } });
    const r = await runAgent(['run', `HttpProxy=http://localhost:${squid.port}`], p.env);
    assert.equal(r.code, 78, r.stderr);
    assert.match(r.stderr, /refused this device's credentials|requires authentication \(Negotiate\)/);
    assert.match(r.stderr, /Kerberos/);
  });
});
