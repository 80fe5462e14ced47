/**
 * Posture reaches the org: the agent signs its posture with the device key (x5c = its certificate) and the lab
 * org verifies and stores it, judges it against a device-assurance policy rolled out in stages (report-only,
 * grace with a deadline, enforce) set through the admin API, and its mTLS check answers trusted /
 * "trusted, non-compliant: <checks>" / not trusted. Forged reports are refused. Real TLS, real CLI.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startLabOrg, type LabOrg } from '../../lab/org.js';
import { loadConfig } from '../../src-main/core/config.js';
import { keyFromPem } from '../../src-main/core/keys/keys.js';
import { runPosturePass } from '../../src-main/core/posture/pass.js';
import { signPostureReport } from '../../src-main/core/posture/report.js';
import { currentDeviceSigner } from '../../src-main/core/posture/pass.js';
import { createLinuxPlatform } from '../../src-main/platform/linux.js';
import { makeProfile, runAgent, tempDir, writeRootCa, type Profile } from '../support/agent.js';
import { readEvents, readState } from '../support/state.js';
import { testContext } from '../support/context.js';

describe('signed posture reports and the org\'s device-assurance policy', () => {
  let lab: LabOrg;
  let profile: Profile;
  let marker: string;
  let creds: { cert: string; deviceId: string };
  const run = (args: string[]) => runAgent(args, profile.env);
  const events = () => readEvents(profile) as { id: number; message: string; data?: Record<string, unknown> }[];

  /** The lab mTLS endpoint's verdict (its own rules, asked directly: the device key lives in a PKCS#11 token). */
  async function mtlsCheck(cert = creds.cert): Promise<Record<string, unknown>> {
    return lab.judgeClientCertificate(cert) as Record<string, unknown>;
  }

  async function postReport(report: string): Promise<{ status: number; body: Record<string, unknown> }> {
    return new Promise((resolve, reject) => {
      const req = https.request(`${lab.orgUrl}/api/v1/device-trust/posture`, { method: 'POST', ca: lab.rootCaPem, headers: { 'content-type': 'application/json' } }, (res) => {
        let body = '';
        res.on('data', (d) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(body) as Record<string, unknown> }));
      });
      req.on('error', reject);
      req.end(JSON.stringify({ report }));
    });
  }

  async function setPolicy(patch: Record<string, unknown>): Promise<void> {
    const r = await new Promise<number>((resolve, reject) => {
      const req = https.request(`${lab.orgUrl}/lab/admin/posture-policy`, { method: 'POST', ca: lab.rootCaPem, headers: { authorization: `Bearer ${lab.adminToken}`, 'content-type': 'application/json' } }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('error', reject);
      req.end(JSON.stringify(patch));
    });
    assert.equal(r, 200);
  }

  before(async () => {
    lab = await startLabOrg({ allowLabSignIn: true });
    const dir = tempDir('posture-org');
    marker = path.join(dir, 'edr-installed');
    fs.writeFileSync(marker, 'yes');
    const configFile = path.join(dir, 'config.json');
    fs.writeFileSync(configFile, JSON.stringify({ posture: { adminChecks: [{ name: 'edr', kind: 'file', target: marker, title: 'EDR agent installed', remedy: 'Install the EDR agent from the Software Center.' }], deviceFile: path.join(dir, 'shared', 'posture.json') } }));
    profile = makeProfile({ orgUrl: lab.orgUrl, rootCaFile: writeRootCa(lab.rootCaPem), extraEnv: { DTA_LAB_SIGN_IN: 'true', DTA_CONFIG_FILE: configFile, DTA_PLATFORM_LOG: 'off' } });
    const r = await run(['run']);
    assert.equal(r.code, 0, r.stderr);
    const state = readState(profile);
    const dirOf = path.join(profile.stateDir, 'credentials', state.current.thumbprint);
    const cert = fs.readFileSync(path.join(dirOf, 'cert.pem'), 'utf8');
    creds = { cert, deviceId: /CN=([^\n]*)/.exec(new crypto.X509Certificate(cert).subject)![1]! };
  });

  after(() => lab.close());

  test('report-only: a compliant device is trusted; the org stores the verified report', async () => {
    await setPolicy({ mode: 'report-only', require: ['admin:edr', 'os-version'] });
    const r = await run(['posture', '--report', '--json']);
    const out = JSON.parse(r.stdout);
    assert.deepEqual(out.reported, { ok: true });
    const stored = lab.posture.latest(creds.deviceId)!;
    assert.ok(stored, 'the org stored the report under the certificate\'s device');
    assert.equal(stored.claims.posture.results.find((x) => x.check === 'admin:edr')?.status, 'PASS');
    assert.equal(stored.claims.posture.results.length, 7);
    const os = out.results.find((x: { check: string }) => x.check === 'os-version');
    assert.equal(out.report.compliance.status, os.status === 'PASS' ? 'compliant' : 'non-compliant');
    await setPolicy({ require: ['admin:edr'] });
    await run(['posture', '--report']);
    const m = await mtlsCheck();
    assert.equal(m.trusted, true);
    assert.equal(m.verdict, 'trusted');
    assert.ok(events().some((e) => e.id === 1263), 'event 1263: report accepted');
  });

  test('a failing check is announced after the confirmations, and the org flags it (report-only keeps access)', async () => {
    fs.rmSync(marker);
    const first = await run(['posture', '--report', '--json']);
    assert.equal(first.code, 30, 'a failing check: exit code 30');
    const edrFailing = () => events().filter((e) => e.id === 1261 && e.data?.check === 'admin:edr');
    assert.equal(edrFailing().length, 0, 'one observation is not yet a change (hysteresis)');
    const second = await run(['posture', '--report']);
    const failing = edrFailing();
    assert.equal(failing.length, 1, 'the second observation confirms it: event 1261');
    assert.match(failing[0]!.message, /EDR agent installed.*What to do: Install the EDR agent from the Software Center\./);
    assert.match(second.stdout, /FAIL +EDR agent installed: The file .* must exist\.\n[\s\S]*what to do: Install the EDR agent/);
    assert.match(second.stdout, /org \(.*\): non-compliant, policy report-only/);
    const m = await mtlsCheck();
    assert.equal(m.trusted, true);
    assert.equal(m.verdict, 'trusted, non-compliant: admin:edr');
    assert.ok(events().some((e) => e.id === 1264 && (e.data?.checks as string[]).includes('admin:edr')));
  });

  test('grace: access kept until the deadline the user is shown; after it, and under enforce, access is refused', async () => {
    const deadline = new Date(Date.now() + 7 * 86_400_000).toISOString();
    await setPolicy({ mode: 'grace', graceDeadline: deadline });
    const r = await run(['posture', '--report', '--json']);
    const out = JSON.parse(r.stdout);
    assert.equal(out.report.compliance.deadline, deadline);
    assert.match(out.report.compliance.message, /Fix by/);
    let m = await mtlsCheck();
    assert.equal(m.trusted, true);
    assert.equal((m.compliance as { deadline: string }).deadline, deadline);
    const status = await run(['status']);
    assert.match(status.stdout, /org: non-compliant \(grace\), deadline /);

    await setPolicy({ graceDeadline: new Date(Date.now() - 1000).toISOString() });
    m = await mtlsCheck();
    assert.equal(m.trusted, false);
    assert.equal(m.reason, 'non-compliant');

    await setPolicy({ mode: 'enforce', graceDeadline: null });
    m = await mtlsCheck();
    assert.equal(m.trusted, false);
    assert.equal(m.verdict, 'not trusted, non-compliant: admin:edr');

    fs.writeFileSync(marker, 'yes');
    await run(['posture', '--report']);
    m = await mtlsCheck();
    assert.equal(m.trusted, true, 'fixed and reported: trusted again');
    await setPolicy({ mode: 'off' });
  });

  test('the org refuses forged reports: altered claims, another key, another device', async () => {
    // The device's own signer: its key in the NSS token, reached through the platform's key store.
    const keys = createLinuxPlatform(loadConfig({ env: profile.env }).config, { env: profile.env }).keys!;
    const signer = (await currentDeviceSigner(profile.stateDir, keys))!;
    const claims = { device: creds.deviceId, iat: Math.floor(Date.now() / 1000), exp: Math.floor(Date.now() / 1000) + 600, posture: { checkedAt: new Date().toISOString(), platform: 'linux', results: [{ check: 'firewall', status: 'PASS', summary: 'ok', evidence: [] }] } };
    const good = await signPostureReport(signer, claims);
    assert.equal((await postReport(good)).status, 200);
    const [h, , s] = good.split('.');
    const altered = `${h}.${Buffer.from(JSON.stringify({ ...claims, posture: { ...claims.posture, platform: 'win32' } })).toString('base64url')}.${s}`;
    const r1 = await postReport(altered);
    assert.equal(r1.status, 401);
    assert.match(String(r1.body.errorSummary), /not valid/);
    const other = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const foreign = await signPostureReport({ algorithm: 'ES256', certificatePem: creds.cert, sign: async (d) => crypto.sign('sha256', d, { key: other.privateKey, dsaEncoding: 'ieee-p1363' }) }, claims);
    assert.equal((await postReport(foreign)).status, 401, 'signed by a key that is not the certificate\'s');
    const wrongDevice = await signPostureReport(signer, { ...claims, device: 'someone-else' });
    const r3 = await postReport(wrongDevice);
    assert.equal(r3.status, 401);
    assert.match(String(r3.body.errorSummary), /names device someone-else/);
    await keys.close();
  });

  test('the daemon\'s pass reports a new certificate (renewal) even when no result changed, and nothing when nothing is new', async () => {
    const loaded = loadConfig({ env: { ...process.env, ...profile.env } });
    await runPosturePass({ loaded, side: 'user', context: testContext() }); // settle: the last report is for the current certificate
    const oldSerial = lab.posture.latest(creds.deviceId)!.serialNumber;
    const renewed = await run(['run', '--forceRenewal']);
    assert.equal(renewed.code, 0, renewed.stderr);
    const r = await runPosturePass({ loaded, side: 'user', context: testContext() });
    assert.deepEqual(r.reported, { ok: true });
    assert.notEqual(lab.posture.latest(creds.deviceId)!.serialNumber, oldSerial, 'the org holds a report signed for the new certificate');
    const again = await runPosturePass({ loaded, side: 'user', context: testContext() });
    if (!again.changes.length) assert.equal(again.reported, undefined, 'nothing new: nothing sent');
  });

  test('the org stores which facts the device side observed and which the user side reported', async () => {
    const mark = () => Object.fromEntries(lab.posture.latest(creds.deviceId)!.claims.posture.results.map((x) => [x.check, x.source]));
    // No device task has answered yet: every fact is user-reported.
    const shared = JSON.parse(fs.readFileSync(profile.env.DTA_CONFIG_FILE!, 'utf8')).posture.deviceFile as string;
    fs.rmSync(shared, { force: true });
    await run(['posture', '--report']);
    assert.ok(Object.values(mark()).every((s) => s === 'user'), JSON.stringify(mark()));
    // The device task (root here) writes the shared answers; the next report carries them as the device side's.
    const dev = await runAgent(['posture', '--device', '--state-dir', tempDir('posture-org-dev')], profile.env);
    assert.ok(fs.existsSync(shared), dev.stderr);
    const r = await run(['posture', '--report', '--json']);
    assert.deepEqual(JSON.parse(r.stdout).reported, { ok: true });
    const m = mark();
    for (const id of ['disk-encryption', 'firewall', 'secure-boot', 'os-version', 'admin:edr']) assert.equal(m[id], 'device', `${id}: ${JSON.stringify(m)}`);
    assert.equal(m['screen-lock'], 'user');
  });
});
