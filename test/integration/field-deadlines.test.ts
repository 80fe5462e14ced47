/**
 * Deadlines for the whole exchange: an org whose answer trickles in (one byte every 2 s under a large
 * Content-Length) and one that takes the connection and never answers. Every command ends at its documented
 * deadline with a timeout message, holds no pass lock afterwards, installs nothing and leaves the enrolled
 * certificate as it was.
 */
import assert from 'node:assert/strict';
import https from 'node:https';
import { after, before, describe, test } from 'node:test';
import { startLabOrg, type LabOrg } from '../../lab/org.js';
import { makeProfile, runAgent, writeRootCa, type Profile } from '../support/agent.js';
import { interceptorCa } from '../support/interceptor.js';
import { listenOnLoopback } from '../support/net.js';
import { nssUserCerts } from '../support/nss.js';
import { readState } from '../support/state.js';

const DEADLINE_MS = 4000;
const BOUND_MS = 60_000;

describe('whole-exchange deadlines against a trickling and a silent org', () => {
  let lab: LabOrg;
  let server: https.Server;
  let trickleUrl: string;
  let silentUrl: string;
  let caFile: string;
  let enrolled: Profile;
  let serial: string;
  const sockets = new Set<import('node:stream').Duplex>();

  const stateSerial = (p: Profile) => {
    try {
      return readState(p).current?.serialNumber as string | undefined;
    } catch {
      return undefined;
    }
  };

  before(async () => {
    lab = await startLabOrg({ allowLabSignIn: true });
    const ca = await interceptorCa('Trickle Test CA');
    caFile = writeRootCa(`${lab.rootCaPem}\n${ca.rootCaPem}`);
    server = https.createServer({ cert: ca.cert, key: ca.key }, (req, res) => {
      if (req.url?.startsWith('/silent')) return; // headers never come
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '100000' });
      res.write('{');
      const t = setInterval(() => res.write(' '), 2000);
      res.on('close', () => clearInterval(t));
    });
    server.on('connection', (s) => {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
    });
    const port = await listenOnLoopback(server);
    trickleUrl = `https://localhost:${port}/trickle`;
    silentUrl = `https://localhost:${port}/silent`;
    enrolled = makeProfile({ orgUrl: lab.orgUrl, rootCaFile: caFile, extraEnv: { DTA_LAB_SIGN_IN: 'true' } });
    const r = await runAgent(['run'], enrolled.env);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    serial = stateSerial(enrolled)!;
  });

  after(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((r) => server?.close(r));
    await lab?.close();
  });

  for (const kind of ['trickle', 'silent'] as const) {
    test(`an org that ${kind === 'trickle' ? 'trickles its answer' : 'never answers'}: run, status --check, proxy-check and diagnose end at their deadlines`, async () => {
      const orgUrl = kind === 'trickle' ? trickleUrl : silentUrl;
      const fresh = makeProfile({ orgUrl, rootCaFile: caFile, extraEnv: { DTA_LAB_SIGN_IN: 'true' } });
      const onEnrolled = { ...enrolled.env, DTA_ORG_URL: orgUrl };
      const arg = `requestTimeoutMs=${DEADLINE_MS}`;
      const go = async (args: string[], env: Record<string, string>) => {
        const t0 = Date.now();
        const r = await runAgent(args, env, { timeoutMs: 120_000 });
        return { ...r, ms: Date.now() - t0 };
      };
      const [run, status, check, diag] = await Promise.all([
        go(['run', arg], fresh.env),
        go(['status', '--check', arg], onEnrolled),
        go(['proxy-check', arg], onEnrolled),
        go(['diagnose', '--json', '--timeout', String(DEADLINE_MS / 1000)], onEnrolled),
      ]);
      for (const [name, r] of Object.entries({ run, status, check, diag })) {
        assert.ok(r.ms < BOUND_MS, `${name} took ${r.ms} ms`);
        assert.ok(r.code !== 70 && r.code !== 1, `${name} crashed:\n${r.stderr}`);
      }
      assert.equal(run.code, 20, run.stderr);
      assert.match(run.stderr, new RegExp(`did not complete its answer within the ${DEADLINE_MS} ms deadline \\(connect, TLS, headers and body together\\)`));
      assert.match(run.stderr, /nothing was changed/);
      assert.deepEqual(nssUserCerts(fresh.nssDb), []);
      // The pass ended: the next one is not told that another pass is running.
      const again = await go(['run', arg], fresh.env);
      assert.doesNotMatch(again.stderr, /Another pass is running/);
      assert.equal(status.code, 20, status.stdout);
      assert.match(status.stdout, /check org: FAILED — .*did not complete its answer within/);
      assert.equal(check.code, 20, check.stdout);
      assert.match(check.stdout, /FAILED the org/);
      assert.match(check.stdout, /did not complete within|no answer within|Cannot reach the org/);
      const report = JSON.parse(diag.stdout);
      const org = report.probes.find((p: { id: string }) => p.id === 'org');
      assert.notEqual(org.status, 'ok');
      assert.ok(report.findings.some((f: { code: string }) => f.code === 'ORG_UNREACHABLE'), JSON.stringify(report.findings.map((f: { code: string }) => f.code)));
      assert.equal(nssUserCerts(enrolled.nssDb).length, 1);
      assert.equal(stateSerial(enrolled), serial, 'the enrolled certificate is intact');
    });
  }
});
