/**
 * Bad things that happen on real machines: the certificate store fails mid-swap (a full disk), someone
 * deletes the certificate by hand, the org answers garbage. The previous certificate must survive and the
 * next run must recover. These use the lab-only sign-in so they exercise the agent's logic, not Kerberos.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { LabPki } from '../../lab/ca.js';
import { startLabOrg, type LabOrg } from '../../lab/org.js';
import { makeProfile, type Profile, runAgent, writeRootCa } from '../support/agent.js';
import { listenOnLoopback } from '../support/net.js';
import { failingPk12util, nssUserCerts } from '../support/nss.js';
import { readState } from '../support/state.js';

describe('failures leave the previous certificate intact and the next run recovers', () => {
  let lab: LabOrg;
  let rootCaFile: string;
  let profile: Profile;
  const run = (args: string[], extra: Record<string, string> = {}) => runAgent(args, { ...profile.env, ...extra });

  before(async () => {
    lab = await startLabOrg({ allowLabSignIn: true });
    rootCaFile = writeRootCa(lab.rootCaPem);
    profile = makeProfile({ orgUrl: lab.orgUrl, rootCaFile, extraEnv: { DTA_LAB_SIGN_IN: 'true' } });
    const r = await run(['run']);
    assert.equal(r.code, 0, r.stderr);
  });

  after(() => lab.close());

  test('the store failing while swapping in the new certificate puts the previous one back at once', async () => {
    const before = readState(profile).current;
    const r = await run(['run', '--forceRenewal'], failingPk12util('once'));
    assert.equal(r.code, 40, r.stderr);
    assert.match(r.stderr, /No space left/);
    assert.match(r.stderr, /disk space/);
    assert.deepEqual(nssUserCerts(profile.nssDb).map((c) => c.serial), [before.serialNumber]);
    assert.equal(readState(profile).current.serialNumber, before.serialNumber);
    assert.deepEqual(fs.readdirSync(path.join(profile.stateDir, 'credentials')), [before.thumbprint]);
  });

  test('when the store keeps failing, the previous certificate stays in use, and the next run completes the forced renewal', async () => {
    const before = readState(profile).current;
    const r = await run(['run', '--forceRenewal'], failingPk12util('always'));
    assert.equal(r.code, 40, r.stderr);
    assert.equal(readState(profile).current.serialNumber, before.serialNumber, 'the state still names the previous certificate');
    // The new pair goes in before the previous one leaves, so a failing store never takes the previous one away.
    assert.deepEqual(nssUserCerts(profile.nssDb).map((c) => c.serial), [before.serialNumber]);
    // The request was persisted: the next plain run (the store works again) completes it.
    const next = await run(['run']);
    assert.equal(next.code, 0, next.stderr + next.stdout);
    const after = readState(profile).current.serialNumber;
    assert.notEqual(after, before.serialNumber);
    assert.deepEqual(nssUserCerts(profile.nssDb).map((c) => c.serial), [after]);
  });

  test('a certificate deleted from the NSS database by hand is reinstalled by the next run', async () => {
    const before = readState(profile).current;
    const { execFileSync } = await import('node:child_process');
    // Only the certificate (-D): the key stays in the token and the next run files the certificate with it again.
    execFileSync('certutil', ['-D', '-d', `sql:${profile.nssDb}`, '-n', nssUserCerts(profile.nssDb)[0]!.nickname]);
    assert.equal(nssUserCerts(profile.nssDb).length, 0);
    const r = await run(['run']);
    assert.equal(r.code, 10, r.stderr + r.stdout);
    assert.deepEqual(nssUserCerts(profile.nssDb).map((c) => c.serial), [before.serialNumber]);
  });

  test('the org unreachable with a valid certificate: nothing to do, with a warning', async () => {
    lab.switches.orgDown = true;
    try {
      const r = await run(['run']);
      assert.equal(r.code, 10, r.stderr + r.stdout);
      assert.match(r.stdout, /not reachable/);
      const none = makeProfile({ orgUrl: lab.orgUrl, rootCaFile, extraEnv: { DTA_LAB_SIGN_IN: 'true' } });
      const r2 = await runAgent(['run'], none.env);
      assert.equal(r2.code, 20, 'no certificate and no org: retry later');
      assert.match(r2.stderr, /Cannot reach the org/);
    } finally {
      lab.switches.orgDown = false;
    }
  });

  test('IWA failover: the backup is used when the primary is down in REDIRECT_TO_BACKUP mode', async () => {
    lab.switches.iwaPrimaryDown = true;
    try {
      const r = await run(['run', '--forceRenewal', '--debug']);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, new RegExp(`from ${lab.iwaBackupUrl.replace(/[.]/g, '\\.')}`));
      lab.switches.iwaBackupDown = true;
      const down = await run(['run', '--forceRenewal']);
      assert.equal(down.code, 20, down.stderr);
      assert.match(down.stderr, /No IWA web app answered/);
    } finally {
      lab.switches.iwaPrimaryDown = false;
      lab.switches.iwaBackupDown = false;
    }
  });

  test('labSignIn is refused for an org that is not a lab org on this machine', async () => {
    const pki = await LabPki.create();
    const creds = await pki.serverTlsCredentials();
    const discovery = JSON.parse((await fetchText(`${lab.orgUrl}/api/v1/device-trust/config`, lab.rootCaPem)));
    const server = https.createServer(creds, (_req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ ...discovery, lab: false }));
    });
    const port = await listenOnLoopback(server);
    const caFile = writeRootCa(pki.rootCaPem);
    try {
      const p = makeProfile({ orgUrl: `https://localhost:${port}`, rootCaFile: caFile, extraEnv: { DTA_LAB_SIGN_IN: 'true' } });
      const r = await runAgent(['run'], p.env);
      assert.equal(r.code, 78, r.stderr);
      assert.match(r.stderr, /never used with a real org/);
    } finally {
      server.close();
    }
  });

  for (const [name, body, expected] of [
    ['not JSON', '<html>captive portal</html>', /not JSON/],
    ['the wrong shape', JSON.stringify({ orgId: 'x' }), /unexpected shape \(orgName/],
    ['an oversized answer', JSON.stringify({ pad: 'x'.repeat(2 * 1024 * 1024) }), /larger than/],
  ] as const) {
    test(`a discovery answer that is ${name} is refused with a clear error`, async () => {
      const pki = await LabPki.create();
      const server = https.createServer(await pki.serverTlsCredentials(), (_req, res) => {
        res.setHeader('content-type', 'application/json');
        res.end(body);
      });
      const port = await listenOnLoopback(server);
      const caFile = writeRootCa(pki.rootCaPem);
      try {
        const p = makeProfile({ orgUrl: `https://localhost:${port}`, rootCaFile: caFile });
        const r = await runAgent(['run'], p.env);
        assert.equal(r.code, 30, r.stderr);
        assert.match(r.stderr, expected);
        assert.deepEqual(nssUserCerts(p.nssDb), []);
      } finally {
        server.closeAllConnections();
        server.close();
      }
    });
  }

  test('a server whose TLS certificate is not trusted is refused, never used', async () => {
    const p = makeProfile({ orgUrl: lab.orgUrl, rootCaFile: '/dev/null' });
    const r = await runAgent(['run'], p.env);
    assert.equal(r.code, 30, r.stderr);
    assert.match(r.stderr, /could not be verified/);
    assert.match(r.stderr, /inspects TLS/);
  });
});

function fetchText(url: string, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    https.get(url, { ca }, (res) => {
      let data = '';
      res.on('data', (d) => (data += d));
      res.on('end', () => resolve(data));
    }).on('error', reject);
  });
}
