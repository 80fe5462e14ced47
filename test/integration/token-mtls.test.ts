/**
 * The agent's own mTLS check with a device key that lives in a token: the NSS software token and a real TPM 2.0
 * (swtpm + tpm2-abrmd + tpm2-pkcs11). `status --check`, `diagnose` and `proxy-check` present the key through
 * openssl + libp11 in a child process (the TPM module served by `p11-kit server`), directly and through a real squid
 * (CONNECT), and after a renewal the check presents the new key. A trusted ssl_bump squid that strips the client
 * certificate is named as the interceptor for an org that publishes no TLS issuer pins.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startLabOrg, type LabOrg } from '../../lab/org.js';
import { tokenTlsUnavailable } from '../../src-main/platform/token-tls.js';
import { makeProfile, runAgent, tempDir, writeRootCa, type Profile } from '../support/agent.js';
import { squidUnavailable, startSquid, type Squid } from '../support/squid.js';
import { readState } from '../support/state.js';
import { startSoftTpm, tpmUnavailable, type SoftTpm } from '../support/tpm.js';

const skipReason = tokenTlsUnavailable({ outOfProcess: true }) ?? squidUnavailable();
if (skipReason) console.log(`# token-mtls skipped: ${skipReason}`);
const tpmSkip = skipReason ?? tpmUnavailable();
if (!skipReason && tpmSkip) console.log(`# token-mtls TPM part ${tpmSkip}`);

function makeCa(name: string): { certPem: string; keyPem: string } {
  const dir = tempDir('token-mtls-ca');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${dir}/ca.key`, '-out', `${dir}/ca.pem`, '-days', '2',
    '-subj', `/O=Example Security Appliance/CN=${name}`, '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], { stdio: 'pipe' });
  return { certPem: fs.readFileSync(`${dir}/ca.pem`, 'utf8'), keyPem: fs.readFileSync(`${dir}/ca.key`, 'utf8') };
}

const doctorLine = (out: string) => /^.*mTLS endpoint accepts the certificate.*$/m.exec(out)?.[0] ?? '(no mtls_accepted line)';

describe('the agent presents a token key for its own mTLS check', { skip: skipReason }, () => {
  let lab: LabOrg;
  let rootCaFile: string;
  let squid: Squid;
  let bump: Squid;
  let trustedCaFile: string;

  before(async () => {
    lab = await startLabOrg({ allowLabSignIn: true });
    // An org like every real one (and every SCEP CA): it publishes no TLS issuer pins.
    lab.switches.publishServerTls = false;
    rootCaFile = writeRootCa(lab.rootCaPem);
    const trusted = makeCa('Corp Trusted Inspection CA');
    trustedCaFile = writeRootCa(`${lab.rootCaPem}\n${trusted.certPem}`);
    [squid, bump] = await Promise.all([startSquid(), startSquid({ bump: { caCertPem: trusted.certPem, caKeyPem: trusted.keyPem, upstreamCaFile: rootCaFile } })]);
  });

  after(async () => {
    await Promise.all([squid?.stop(), bump?.stop()]);
    await lab?.close();
  });

  describe('NSS software token', () => {
    let p: Profile;
    before(async () => {
      p = makeProfile({ orgUrl: lab.orgUrl, rootCaFile, extraEnv: { DTA_LAB_SIGN_IN: 'true', DTA_SKIP_TPM: 'true' } });
      const r = await runAgent(['run'], p.env);
      assert.equal(r.code, 0, r.stderr + r.stdout);
      assert.ok(!fs.existsSync(path.join(p.stateDir, 'credentials', readState(p).current.thumbprint, 'key.pem')), 'the key is in the token, not a file');
    });

    test('status --check: mtls_accepted PASS (direct and through squid), trusted as this device', async () => {
      const deviceId = readState(p).deviceId as string;
      for (const extra of [{}, { DTA_HTTP_PROXY: squid.url }] as Record<string, string>[]) {
        const s = await runAgent(['status', '--check'], { ...p.env, ...extra });
        assert.equal(s.code, 0, s.stdout + s.stderr);
        assert.match(doctorLine(s.stdout), /PASS/);
        assert.match(s.stdout, new RegExp(`check mtls: ok — trusted as device ${deviceId} \\(key presented from its token`));
      }
      const j = JSON.parse((await runAgent(['status', '--check', '--json'], p.env)).stdout);
      assert.equal(j.checks.mtls.trusted, true);
    });

    test('diagnose and proxy-check present the token key too', async () => {
      const d = await runAgent(['diagnose', '--json', '--timeout', '20'], { ...p.env, DTA_HTTP_PROXY: squid.url });
      const report = JSON.parse(d.stdout);
      const mtls = (report.probes ?? report.results ?? []).find((x: { kind: string }) => x.kind === 'mtls') ?? JSON.stringify(report).match(/"kind":"mtls"[^}]*/)?.[0];
      assert.ok(mtls, `an mtls probe in ${d.stdout.slice(0, 400)}`);
      assert.match(JSON.stringify(report), /"trusted":true/);
      const pc = await runAgent(['proxy-check'], { ...p.env, DTA_HTTP_PROXY: squid.url });
      assert.equal(pc.code, 0, pc.stdout + pc.stderr);
      assert.match(pc.stdout, /certificate \S+ accepted \(key presented from its token\)/);
    });

    test('pins learnt on first use: the org publishes none, the CAs its hosts presented at enrollment are in state', () => {
      const pins = readState(p).serverTls;
      assert.equal(pins?.source, 'first-use', JSON.stringify(pins));
      assert.ok(pins.hosts.includes(new URL(lab.orgUrl).host), JSON.stringify(pins.hosts));
    });

    test('a trusted ssl_bump squid strips the certificate, the org publishes no pins: FAIL naming the interceptor', async () => {
      {
        const env = { ...p.env, DTA_HTTP_PROXY: bump.url, DTA_TLS_CA_FILE: trustedCaFile };
        const s = await runAgent(['status', '--check'], env);
        assert.equal(s.code, 30, s.stdout);
        assert.match(doctorLine(s.stdout), /FAIL/);
        assert.match(s.stdout, /check mtls: FAILED — .*TLS-intercepting proxy.*"Corp Trusted Inspection CA"/);
        // A pass through it: the org host's chain is judged against the CA remembered on first use.
        const again = await runAgent(['run'], env);
        assert.equal(again.code, 30, again.stderr); // interception: 30 from every command (README fault table)
        assert.match(again.stdout + again.stderr, /warning: A TLS-intercepting proxy .*\(the org\).*"Corp Trusted Inspection CA".*not by the CA this device saw for that host on first use/s);
        const d = await runAgent(['diagnose', '--json', '--timeout', '20'], env);
        assert.equal(d.code, 30, d.stdout.slice(0, 2000));
        assert.match(d.stdout, /Corp Trusted Inspection CA/);
        const pc = await runAgent(['proxy-check'], env);
        assert.notEqual(pc.code, 0, pc.stdout);
        assert.match(pc.stdout, /Corp Trusted Inspection CA/);
        // A fresh enrollment through it installs, and its own check after install names the interceptor: exit 30,
        // as every command exits for interception (README fault table).
        const q = makeProfile({ orgUrl: lab.orgUrl, rootCaFile: trustedCaFile, extraEnv: { DTA_LAB_SIGN_IN: 'true', DTA_SKIP_TPM: 'true', DTA_HTTP_PROXY: bump.url } });
        const r = await runAgent(['run'], q.env);
        assert.equal(r.code, 30, r.stderr);
        assert.match(r.stdout + r.stderr, /warning: .*TLS-intercepting proxy.*Corp Trusted Inspection CA/s);
        assert.equal(readState(q).serverTls, undefined, 'nothing learnt through an interceptor that was caught');
      }
    });

    test('pins the org published and then withdrew: run warns, status --check fails with SERVER_PINS_WITHDRAWN', async () => {
      const q = makeProfile({ orgUrl: lab.orgUrl, rootCaFile, extraEnv: { DTA_LAB_SIGN_IN: 'true', DTA_SKIP_TPM: 'true' } });
      lab.switches.publishServerTls = true;
      try {
        assert.equal((await runAgent(['run'], q.env)).code, 0);
        assert.equal(readState(q).serverTls?.source, 'published');
      } finally {
        lab.switches.publishServerTls = false;
      }
      const r = await runAgent(['run'], q.env);
      assert.equal(r.code, 30, r.stderr); // withdrawn pins: 30 from every command (README fault table)
      assert.match(r.stdout + r.stderr, /warning: The org at localhost:\d+ published the CAs of its TLS servers .* no longer does/);
      const s = await runAgent(['status', '--check'], q.env);
      assert.equal(s.code, 30, s.stdout);
      assert.match(s.stdout, /check pins: FAILED — The org at .* no longer does/);
      assert.equal(readState(q).serverTls?.source, 'published', 'the withdrawn pins are kept and still checked');
      const d = JSON.parse((await runAgent(['diagnose', '--json', '--timeout', '20'], q.env)).stdout);
      assert.ok(d.findings.some((f: { code: string }) => f.code === 'SERVER_PINS_WITHDRAWN'), JSON.stringify(d.findings.map((f: { code: string }) => f.code)));
    });
  });

  describe('TPM 2.0 token', { skip: tpmSkip }, () => {
    let tpm: SoftTpm;
    let p: Profile;
    const env = (extra: Record<string, string> = {}) => ({ ...tpm.env, ...p.env, ...extra });
    before(async () => {
      tpm = await startSoftTpm();
      p = makeProfile({ orgUrl: lab.orgUrl, rootCaFile, extraEnv: { DTA_LAB_SIGN_IN: 'true' } });
      const r = await runAgent(['run'], env());
      assert.equal(r.code, 0, r.stderr + r.stdout);
      assert.equal(JSON.parse((await runAgent(['status', '--json'], env())).stdout).keyProtection.protection, 'tpm');
    });
    after(async () => {
      await tpm?.stop();
    });

    test('status --check: mtls_accepted PASS with the TPM key, direct and through squid', async () => {
      for (const extra of [{}, { DTA_HTTP_PROXY: squid.url }] as Record<string, string>[]) {
        const s = await runAgent(['status', '--check'], env(extra));
        assert.equal(s.code, 0, s.stdout + s.stderr);
        assert.match(doctorLine(s.stdout), /PASS/);
        assert.match(s.stdout, /check mtls: ok — trusted as device .*p11-kit server/);
      }
    });

    test('after a renewal the check presents the new TPM key', async () => {
      const before = readState(p).current.serialNumber;
      const r = await runAgent(['run', '--forceRenewal'], env());
      assert.equal(r.code, 0, r.stderr + r.stdout);
      assert.notEqual(readState(p).current.serialNumber, before);
      const s = await runAgent(['status', '--check', '--json'], env());
      const j = JSON.parse(s.stdout);
      assert.equal(j.checks.mtls.trusted, true, s.stdout);
      assert.equal(j.certificate.serialNumber, readState(p).current.serialNumber);
    });

    test('a trusted ssl_bump squid strips the TPM-held certificate: FAIL naming the interceptor', async () => {
      {
        const s = await runAgent(['status', '--check'], env({ DTA_HTTP_PROXY: bump.url, DTA_TLS_CA_FILE: trustedCaFile }));
        assert.notEqual(s.code, 0, s.stdout);
        assert.match(doctorLine(s.stdout), /FAIL/);
        assert.match(s.stdout, /check mtls: FAILED — .*TLS-intercepting proxy.*"Corp Trusted Inspection CA"/);
      }
    });
  });
});
