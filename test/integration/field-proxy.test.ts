/**
 * Field conditions on the way to the identity provider, with real squids on loopback: an explicit proxy, Basic
 * proxy authentication, TLS interception (ssl_bump) by a CA the machine does not trust and by one it DOES
 * trust (as enterprises install theirs), a PAC mixing DIRECT and PROXY, hostile PAC files (endless loop,
 * endless dnsResolve, throws, not JavaScript, garbage answer, 50 MB) and a blackholed proxy (takes the TCP
 * connection, never answers). Each case runs `run` on a fresh profile and `status --check`, `proxy-check` and
 * `diagnose` on an enrolled one, asserting the exit class, the words the user reads, a generous time bound,
 * that nothing was installed and that the previous certificate is intact.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { LabPki } from '../../lab/ca.js';
import { startLabOrg, type LabOrg } from '../../lab/org.js';
import { lookalikeCa, startFront, type Front } from '../support/hostile-front.js';
import { loadConfig } from '../../src-main/core/config.js';
import { DEFAULT_HEALTH_POLICY } from '../../src-main/core/diagnostics/health.js';
import { DashboardService } from '../../src-main/ipc/service.js';
import { makeProfile, runAgent, tempDir, writeRootCa, type AgentResult, type Profile } from '../support/agent.js';
import { listenOnLoopback } from '../support/net.js';
import { nssUserCerts } from '../support/nss.js';
import { squidUnavailable, startSquid, type Squid } from '../support/squid.js';
import { eventsText, readState } from '../support/state.js';
import { testContext } from '../support/context.js';

const skipReason = squidUnavailable();
if (skipReason) console.log(`# field-proxy ${skipReason}`);

/** Generous bounds: not performance targets (those are in npm run bench), only "it did not hang". */
const BOUND_MS = 90_000;

interface Timed extends AgentResult {
  ms: number;
}

async function timed(args: string[], env: Record<string, string>): Promise<Timed> {
  const t0 = Date.now();
  const r = await runAgent(args, env, { timeoutMs: 150_000 });
  return { ...r, ms: Date.now() - t0 };
}

interface Four {
  run: Timed;
  status: Timed;
  proxyCheck: Timed;
  diagnose: Timed;
  report: { findings: { code: string; title: string; evidence: string[]; remedy: string }[]; exitCode: number };
}

async function startBlackhole(): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('error', () => undefined);
    s.on('close', () => sockets.delete(s));
  });
  const port = await listenOnLoopback(server);
  return {
    port,
    close: () => new Promise<void>((r) => {
      for (const s of sockets) s.destroy();
      server.close(() => r());
    }),
  };
}

function makeCa(name: string): { certPem: string; keyPem: string } {
  const dir = tempDir('field-ca');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${dir}/ca.key`, '-out', `${dir}/ca.pem`, '-days', '2',
    '-subj', `/O=Example Security Appliance/CN=${name}`, '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], { stdio: 'pipe' });
  return { certPem: fs.readFileSync(`${dir}/ca.pem`, 'utf8'), keyPem: fs.readFileSync(`${dir}/ca.key`, 'utf8') };
}

describe('field conditions with real squids: run, status --check, proxy-check and diagnose', { skip: skipReason }, () => {
  let lab: LabOrg;
  let rootCaFile: string;
  let squid: Squid;
  let authSquid: Squid;
  let bumpUntrusted: Squid;
  let bumpTrusted: Squid;
  let trustedCaFile: string;
  let blackhole: Awaited<ReturnType<typeof startBlackhole>>;
  let pacServer: http.Server;
  let pacBase: string;
  let enrolled: Profile;
  let enrolledSerial: string;
  let labPki: LabPki;
  let swapped: { chainPem: string[] };
  let swapFront: Front;
  let swapNow = false;

  const fresh = (extra: Record<string, string> = {}, caFile = rootCaFile) => makeProfile({ orgUrl: lab.orgUrl, rootCaFile: caFile, extraEnv: { DTA_LAB_SIGN_IN: 'true', ...extra } });
  const serialInState = (p: Profile) => {
    try {
      return readState(p).current?.serialNumber as string | undefined;
    } catch {
      return undefined;
    }
  };

  /** `run` on a fresh profile; the three read-only commands on the enrolled one (in parallel: they only look). */
  async function four(env: Record<string, string>, caFile = rootCaFile): Promise<Four & { freshProfile: Profile }> {
    const p = fresh(env, caFile);
    const onEnrolled = { ...enrolled.env, ...env, DTA_TLS_CA_FILE: caFile };
    const [run, status, proxyCheck, diagnose] = await Promise.all([
      timed(['run'], p.env),
      timed(['status', '--check'], onEnrolled),
      timed(['proxy-check'], onEnrolled),
      // A generous probe timeout: four agents and four squids share this machine's CPUs during the test, and the mTLS
      // probe presents the token key from a child process (openssl + libp11 + the NSS database), seconds under that load.
      timed(['diagnose', '--json', '--timeout', '20'], onEnrolled),
    ]);
    let report: Four['report'];
    try {
      report = JSON.parse(diagnose.stdout);
    } catch {
      assert.fail(`diagnose --json printed no report (exit ${diagnose.code}):\n${diagnose.stdout}\n${diagnose.stderr}`);
    }
    for (const [name, r] of Object.entries({ run, status, proxyCheck, diagnose })) {
      assert.ok(r.ms < BOUND_MS, `${name} took ${r.ms} ms`);
      assert.ok(r.code !== 70 && r.code !== 1, `${name} crashed (exit ${r.code}):\n${r.stdout}\n${r.stderr}`);
      assert.doesNotMatch(r.stderr, /QuickJS|qjs_get_null|dispatcher\.destroy|at .*\.js:\d+/, `${name} leaked an internal error:\n${r.stderr}`);
    }
    // The enrolled profile's certificate is untouched by any of it.
    const certs = nssUserCerts(enrolled.nssDb);
    assert.equal(certs.length, 1, 'still exactly one certificate in the enrolled profile');
    assert.equal(serialInState(enrolled), enrolledSerial, 'the enrolled certificate is still the current one');
    return { run, status, proxyCheck, diagnose, report, freshProfile: p };
  }

  const nothingInstalled = (p: Profile) => {
    assert.deepEqual(nssUserCerts(p.nssDb), [], 'nothing was installed');
    assert.equal(serialInState(p), undefined, 'no certificate recorded');
  };
  const finding = (f: Four, code: string) => f.report.findings.find((x) => x.code === code);

  before(async () => {
    const labDir = tempDir('field-lab');
    labPki = await LabPki.loadOrCreate(labDir);
    lab = await startLabOrg({ allowLabSignIn: true, dataDir: labDir });
    rootCaFile = writeRootCa(lab.rootCaPem);
    swapped = await lookalikeCa();
    swapFront = await startFront({ labOrgUrl: lab.orgUrl, rootCaPem: lab.rootCaPem, tls: await labPki.serverTlsCredentials(),
      behaviour: { discovery: (d) => (swapNow ? { ...d, ca: { ...d.ca, chainPem: swapped.chainPem } } : d) } });
    const untrusted = makeCa('Example Inspection CA');
    const trusted = makeCa('Corp Trusted Inspection CA');
    trustedCaFile = writeRootCa(`${lab.rootCaPem}\n${trusted.certPem}`);
    [squid, authSquid, bumpUntrusted, bumpTrusted, blackhole] = await Promise.all([
      startSquid(),
      startSquid({ basicAuth: { user: 'proxyuser', password: 'Pr0xy-S3cret' } }),
      startSquid({ bump: { caCertPem: untrusted.certPem, caKeyPem: untrusted.keyPem, upstreamCaFile: rootCaFile } }),
      startSquid({ bump: { caCertPem: trusted.certPem, caKeyPem: trusted.keyPem, upstreamCaFile: rootCaFile } }),
      startBlackhole(),
    ]);
    const orgPort = new URL(lab.orgUrl).port;
    const body = (fn: string) => `function FindProxyForURL(url, host) { ${fn} }\n`;
    const pacs: Record<string, string> = {
      'mixed.pac': body(`if (shExpMatch(url, "https://localhost:${orgPort}/*")) return "PROXY 127.0.0.1:${squid.port}"; return "DIRECT";`),
      'loop.pac': body('var i = 0; while (true) { i++; }'),
      'dns.pac': body('var i = 0; while (true) { dnsResolve("host-" + (i++) + ".invalid"); }'),
      'throws.pac': body('throw new Error("PAC exploded");'),
      'not-js.pac': '<html><body>Sign in to the captive portal</body></html>\n',
      'garbage.pac': body('return { proxy: 42 };'),
    };
    pacServer = http.createServer((req, res) => {
      const name = (req.url ?? '/').slice(1);
      if (name === 'huge.pac') {
        // 50 MB, streamed: the agent must stop reading long before the end.
        res.writeHead(200, { 'content-type': 'application/x-ns-proxy-autoconfig', 'content-length': String(50 * 1024 * 1024) });
        const chunk = Buffer.alloc(1024 * 1024, 0x20);
        let sent = 0;
        const more = () => {
          while (sent < 50 && res.write(chunk)) sent++;
          if (sent >= 50) res.end();
        };
        res.on('drain', () => {
          sent++;
          more();
        });
        more();
        return;
      }
      const text = pacs[name];
      if (text === undefined) res.writeHead(404).end();
      else res.writeHead(200, { 'content-type': 'application/x-ns-proxy-autoconfig' }).end(text);
    });
    const pacPort = await listenOnLoopback(pacServer);
    pacBase = `http://127.0.0.1:${pacPort}`;

    enrolled = fresh();
    const r = await runAgent(['run'], enrolled.env);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    enrolledSerial = serialInState(enrolled)!;
    assert.ok(enrolledSerial);
  });

  after(async () => {
    pacServer?.closeAllConnections();
    await new Promise((r) => pacServer?.close(r));
    await Promise.all([squid?.stop(), authSquid?.stop(), bumpUntrusted?.stop(), bumpTrusted?.stop(), blackhole?.close(), swapFront?.close()]);
    await lab?.close();
  });

  test('explicit proxy: every command works through squid', async () => {
    const f = await four({ DTA_HTTP_PROXY: squid.url });
    assert.equal(f.run.code, 0, f.run.stderr);
    assert.equal(nssUserCerts(f.freshProfile.nssDb).length, 1);
    assert.equal(f.status.code, 0, f.status.stdout + f.status.stderr);
    // The device key lives in a PKCS#11 token: the agent presents it through openssl + libp11 (a child process) on
    // the same route, so status --check proves the org accepts it.
    assert.match(f.status.stdout, /check org: ok/);
    assert.match(f.status.stdout, /PASS +mTLS endpoint accepts the certificate: trusted as device .*key presented from its token/);
    assert.equal(f.proxyCheck.code, 0, f.proxyCheck.stdout);
    assert.match(f.proxyCheck.stdout, /Every route works/);
    assert.ok(!f.report.findings.some((x) => /PROXY|PAC|TLS/.test(x.code)), JSON.stringify(f.report.findings));
  });

  test('proxy with Basic authentication: works, and the password appears nowhere', async () => {
    const proxy = `http://proxyuser:Pr0xy-S3cret@127.0.0.1:${authSquid.port}`;
    const f = await four({ DTA_HTTP_PROXY: proxy });
    assert.equal(f.run.code, 0, f.run.stderr);
    assert.equal(f.status.code, 0, f.status.stdout + f.status.stderr);
    assert.equal(f.proxyCheck.code, 0, f.proxyCheck.stdout);
    for (const r of [f.run, f.status, f.proxyCheck, f.diagnose]) assert.doesNotMatch(r.stdout + r.stderr, /Pr0xy-S3cret/);
  });

  test('ssl_bump with a CA the machine does not trust: interception named everywhere, nothing installed', async () => {
    const f = await four({ DTA_HTTP_PROXY: bumpUntrusted.url });
    assert.equal(f.run.code, 30, f.run.stderr);
    assert.match(f.run.stderr, /TLS-intercepting proxy or security product/);
    assert.match(f.run.stderr, /issued by "Example Inspection CA"/);
    assert.match(f.run.stderr, /Exempt localhost from TLS inspection/);
    nothingInstalled(f.freshProfile);
    assert.equal(f.status.code, 30, f.status.stdout);
    assert.match(f.status.stdout, /check org: FAILED — A TLS-intercepting proxy .*Example Inspection CA/);
    assert.equal(f.proxyCheck.code, 30, f.proxyCheck.stdout);
    assert.match(f.proxyCheck.stdout, /Example Inspection CA/);
    const tlsFinding = finding(f, 'TLS_INTERCEPTION');
    assert.ok(tlsFinding, `TLS_INTERCEPTION in ${JSON.stringify(f.report.findings.map((x) => x.code))}`);
    assert.match(tlsFinding.evidence.join('\n'), /Example Inspection CA/);
    assert.match(tlsFinding.remedy, /Exempt .*localhost/);
    assert.equal(finding(f, 'ORG_UNREACHABLE'), undefined, 'not filed as "org unreachable"');
    assert.equal(f.diagnose.code, 30);
  });

  // A trusted interceptor verifies fine; what betrays it is the chain: the org publishes the CAs that issue its own
  // TLS certificates (discovery serverTls, PROTOCOL §1) and the chain seen for the org and mTLS hosts has none of them.
  test('ssl_bump with a CA the machine TRUSTS: the chain is not the one the org publishes, and that is named as interception', async () => {
    const f = await four({ DTA_HTTP_PROXY: bumpTrusted.url }, trustedCaFile);
    // Enrollment itself works through a trusted interceptor; the warning says mutual TLS will not, and the exit
    // code is the interception's (30), as for status --check, proxy-check and diagnose.
    assert.equal(f.run.code, 30, f.run.stderr);
    assert.equal(nssUserCerts(f.freshProfile.nssDb).length, 1);
    // The token key is presented after installing: the endpoint saw no certificate, named by the presenting CA.
    assert.match(f.run.stdout + f.run.stderr, /warning: A TLS-intercepting proxy or security product sits between this device and localhost:\d+ \(the mTLS endpoint\).*but the endpoint saw no client certificate.*issued by "Corp Trusted Inspection CA".*Exempt localhost from TLS inspection/s);
    assert.equal(f.status.code, 30, f.status.stdout);
    assert.match(f.status.stdout, /check mtls: FAILED — A TLS-intercepting proxy .*Corp Trusted Inspection CA.*Exempt localhost/);
    assert.match(f.status.stdout, /check org: FAILED — A TLS-intercepting proxy .*\(the org\).*Corp Trusted Inspection CA/);
    assert.equal(f.proxyCheck.code, 30, f.proxyCheck.stdout);
    assert.match(f.proxyCheck.stdout, /FAILED the mTLS endpoint/);
    assert.match(f.proxyCheck.stdout, /issued by "Corp Trusted Inspection CA".*not by a CA the org publishes.*Exempt localhost/);
    assert.doesNotMatch(f.proxyCheck.stdout, /Every route works/);
    const tlsFinding = finding(f, 'TLS_INTERCEPTION');
    assert.ok(tlsFinding, JSON.stringify(f.report.findings.map((x) => x.code)));
    assert.match(tlsFinding.evidence.join('\n'), /mtls: certificate \S+ was presented, but the mTLS endpoint saw no client certificate; the certificate presented for localhost:\d+ is issued by "Corp Trusted Inspection CA"/);
    assert.match(tlsFinding.evidence.join('\n'), /org: the certificate presented for localhost:\d+ is issued by "Corp Trusted Inspection CA", not by a CA the org publishes/);
    assert.match(tlsFinding.remedy, /Exempt .*localhost/);
    assert.equal(finding(f, 'MTLS_UNREACHABLE'), undefined, 'not filed as "mTLS endpoint unreachable"');
    assert.equal(f.diagnose.code, 30);
    // The dashboard: the mTLS card and the finding name the interceptor.
    const env = { ...enrolled.env, DTA_HTTP_PROXY: bumpTrusted.url, DTA_TLS_CA_FILE: trustedCaFile, KRB5_CONFIG: '/dev/null', DTA_PLATFORM_LOG: 'off' };
    const svc = new DashboardService({ loadConfig: () => loadConfig({ env }), context: testContext(), emit: () => undefined, saveExport: async () => null, env: { ...process.env, ...env },
      healthPolicy: { ...DEFAULT_HEALTH_POLICY, maxRetries: 0 } });
    const view = await svc.runDiagnostics();
    const mtlsCard = view.targets.find((t) => t.kind === 'mtls');
    assert.match(mtlsCard?.summary ?? '', /Corp Trusted Inspection CA/);
    assert.match(view.targets.find((t) => t.id === 'org')?.summary ?? '', /through TLS interception.*"Corp Trusted Inspection CA"/);
    const dashFinding = view.findings.find((x) => /TLS-intercepting/.test(x.title));
    assert.ok(dashFinding, JSON.stringify(view.findings.map((x) => x.title)));
    assert.match(JSON.stringify(dashFinding), /Corp Trusted Inspection CA/);
    assert.match(JSON.stringify(dashFinding), /Exempt .*localhost/);
  });

  // CA continuity does not depend on the route: a discovery answer that swaps the CA (what a rewriting middlebox
  // or a compromised front could do) is refused at renewal and at enrollment through a proxy as well.
  test('a CA swap announced in discovery, through squid: refused at renewal (CA_CHANGED, named by diagnose) and at enrollment', async () => {
    const env = (p: Profile) => ({ ...p.env, DTA_ORG_URL: swapFront.url, DTA_HTTP_PROXY: squid.url });
    const p = fresh();
    swapNow = false;
    const first = await runAgent(['run'], env(p));
    assert.equal(first.code, 0, first.stderr);
    const serial = serialInState(p)!;
    swapNow = true;
    try {
      const renew = await timed(['run', '--forceRenewal'], env(p));
      assert.equal(renew.code, 30, renew.stdout + renew.stderr);
      assert.match(renew.stderr, /publishes a different certificate authority than the one this device's certificate was issued under.*not signed or cross-signed/s);
      assert.match(renew.stderr, /Nothing was requested or installed; the current certificate is kept/);
      assert.match(renew.stderr, /caRolloverFingerprints/);
      assert.equal(serialInState(p), serial, 'the current certificate is still the current one');
      assert.equal(nssUserCerts(p.nssDb).length, 1, 'still exactly one certificate');
      assert.equal(lab.judgeClientCertificate(fs.readFileSync(path.join(p.stateDir, 'credentials', readState(p).current.thumbprint, 'cert.pem'), 'utf8')).trusted, true,
        'the kept certificate is still accepted by the org\'s mTLS endpoint');
      assert.ok(eventsText(p).includes('"id":1151'), 'event 1151 (CA_CHANGED)');
      const d = await timed(['diagnose', '--json', '--timeout', '10'], env(p));
      const report = JSON.parse(d.stdout) as Four['report'];
      const ca = report.findings.find((x) => x.code === 'CA_CHANGED');
      assert.ok(ca, JSON.stringify(report.findings.map((x) => x.code)));
      assert.match(ca.remedy, /caRolloverFingerprints/);
      // At enrollment there is no earlier CA to compare with; the issued certificate does not chain to the announced one.
      const q = fresh();
      const enroll = await timed(['run'], env(q));
      assert.equal(enroll.code, 30, enroll.stdout + enroll.stderr);
      assert.match(enroll.stderr, /does not chain to the org's certificate authority/);
      nothingInstalled(q);
    } finally {
      swapNow = false;
    }
  });

  test('a PAC mixing DIRECT and PROXY: every command works', async () => {
    const f = await four({ DTA_PAC_URL: `${pacBase}/mixed.pac` });
    assert.equal(f.run.code, 0, f.run.stderr);
    assert.equal(f.status.code, 0, f.status.stdout + f.status.stderr);
    assert.equal(f.proxyCheck.code, 0, f.proxyCheck.stdout);
    assert.match(f.proxyCheck.stdout, /used: DIRECT/);
    assert.match(f.proxyCheck.stdout, /used: PROXY 127\.0\.0\.1:/);
    assert.ok(!f.report.findings.some((x) => /PROXY|PAC|TLS/.test(x.code)), JSON.stringify(f.report.findings));
  });

  const hostile: [string, RegExp][] = [
    ['loop.pac', /did not finish within \d+ ms/],
    ['dns.pac', /did not finish within \d+ ms/],
    ['throws.pac', /failed while running: PAC exploded/],
    ['not-js.pac', /is not valid JavaScript/],
    ['garbage.pac', /returned object instead of a proxy list/],
    ['huge.pac', /larger than \d+ bytes/],
  ];
  for (const [name, words] of hostile) {
    test(`hostile PAC ${name}: a clear configuration error from every command, no crash, nothing installed`, async () => {
      const f = await four({ DTA_PAC_URL: `${pacBase}/${name}` });
      assert.equal(f.run.code, 78, f.run.stderr);
      assert.match(f.run.stderr, words);
      assert.match(f.run.stderr, /PAC file/);
      nothingInstalled(f.freshProfile);
      assert.notEqual(f.status.code, 0, f.status.stdout);
      assert.match(f.status.stdout, words);
      assert.equal(f.proxyCheck.code, 78, f.proxyCheck.stdout);
      assert.match(f.proxyCheck.stdout, words);
      const pac = finding(f, 'PAC_FAILED');
      assert.ok(pac, JSON.stringify(f.report.findings.map((x) => x.code)));
      // On a busy machine the probe's own deadline may end the PAC evaluation first; either way it is named.
      assert.match(pac.evidence.join('\n'), new RegExp(`${words.source}|while evaluating the PAC file`));
    });
  }

  test('a blackholed proxy (takes TCP, never answers): bounded, and described as such', async () => {
    const f = await four({ DTA_HTTP_PROXY: `http://127.0.0.1:${blackhole.port}` });
    assert.equal(f.run.code, 20, f.run.stderr);
    assert.match(f.run.stderr, new RegExp(`proxy 127\\.0\\.0\\.1:${blackhole.port} accepted the connection but (never answered|did not answer)`));
    assert.doesNotMatch(f.run.stderr, /cannot be reached/);
    nothingInstalled(f.freshProfile);
    assert.equal(f.status.code, 20, f.status.stdout);
    assert.match(f.status.stdout, /accepted the connection but (never answered|did not answer)/);
    assert.equal(f.proxyCheck.code, 20, f.proxyCheck.stdout);
    assert.match(f.proxyCheck.stdout, /accepted the connection but (never answered|did not answer)|did not complete within/);
    assert.ok(finding(f, 'PROXY_NO_ANSWER'), JSON.stringify(f.report.findings.map((x) => x.code)));
    // Generous (process start-up on a busy machine included); npm run bench measures the real ratio.
    assert.ok(f.diagnose.ms < 60_000, `diagnose took ${f.diagnose.ms} ms`);
  });
});
