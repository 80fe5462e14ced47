/**
 * SIEM delivery through Debian's real rsyslog: events arrive as RFC 5424 with the agent's structured data
 * (event ID, state, device ID, outcome, correlation ID) over TCP and over TLS (gtls driver, RFC 5425
 * framing), and through the local syslog socket (logger --rfc5424). A collector that is down does not fail
 * the pass; the spooled events arrive once it is back.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { LabPki } from '../../lab/ca.js';
import { startLabOrg, type LabOrg } from '../../lab/org.js';
import { makeProfile, runAgent, tempDir, writeRootCa, type Profile } from '../support/agent.js';
import { haveCommand, readIf, startDaemon, type Daemon } from '../support/fleet.js';
import { accepts } from '../support/net.js';
import { readState } from '../support/state.js';
import { waitFor } from '../support/wait.js';

const RSYSLOGD = '/usr/sbin/rsyslogd';
const haveRsyslog = fs.existsSync(RSYSLOGD) && haveCommand(RSYSLOGD, ['-v']);
const haveGtls = fs.existsSync('/usr/lib/x86_64-linux-gnu/rsyslog/lmnsd_gtls.so') || fs.existsSync('/usr/lib/rsyslog/lmnsd_gtls.so');
const FIELDS = '%protocol-version%|%msgid%|%app-name%|%structured-data%|%msg%\\n';

interface Collector {
  dir: string;
  port: number;
  received(): string[];
  stop(): Promise<void>;
  daemon: Daemon;
}

/** rsyslogd in the foreground with imtcp on a loopback port (and optionally imuxsock on a private socket). */
async function startRsyslog(opts: { dir?: string; port?: number; tls?: { ca: string; cert: string; key: string }; unixSocket?: string } = {}): Promise<Collector> {
  const dir = opts.dir ?? tempDir('rsyslog');
  const portFile = path.join(dir, `port-${Date.now()}`);
  const tlsGlobal = opts.tls ? `global(DefaultNetstreamDriver="gtls" DefaultNetstreamDriverCAFile="${opts.tls.ca}" DefaultNetstreamDriverCertFile="${opts.tls.cert}" DefaultNetstreamDriverKeyFile="${opts.tls.key}")\n` : '';
  const conf = `global(workDirectory="${dir}")
${tlsGlobal}module(load="imtcp"${opts.tls ? ' StreamDriver.Name="gtls" StreamDriver.Mode="1" StreamDriver.AuthMode="anon"' : ''})
input(type="imtcp" port="${opts.port ?? 0}" address="127.0.0.1" listenPortFileName="${portFile}")
${opts.unixSocket ? `module(load="imuxsock" SysSock.Use="off")\ninput(type="imuxsock" Socket="${opts.unixSocket}" UseSpecialParser="off")\n` : ''}template(name="fields" type="string" string="${FIELDS}")
*.* action(type="omfile" file="${path.join(dir, 'received.log')}" template="fields")
`;
  fs.writeFileSync(path.join(dir, 'rsyslog.conf'), conf);
  const daemon = startDaemon(RSYSLOGD, ['-n', '-f', path.join(dir, 'rsyslog.conf'), '-i', path.join(dir, `rsyslogd-${Date.now()}.pid`)]);
  let port: number;
  try {
    // A fixed port is not written to the port file: wait until rsyslog accepts connections on it instead.
    port = opts.port ?? (await waitFor('rsyslog to listen', () => (readIf(portFile).trim() ? Number(readIf(portFile).trim()) : undefined), 20_000, 100));
    if (opts.port) await waitFor('rsyslog to accept', () => accepts(opts.port!), 20_000, 200);
    if (opts.unixSocket) await waitFor('rsyslog socket', () => fs.existsSync(opts.unixSocket!) || undefined, 10_000, 100);
  } catch (e) {
    await daemon.stop();
    throw new Error(`${(e as Error).message}\n${daemon.output()}`);
  }
  return { dir, port, daemon, received: () => readIf(path.join(dir, 'received.log')).split('\n').filter(Boolean), stop: () => daemon.stop() };
}

describe('structured syslog reaches a real rsyslog', { skip: haveRsyslog ? false : 'skipped: rsyslogd is not installed (apt-get install rsyslog)' }, () => {
  let lab: LabOrg;
  let rootCaFile: string;

  before(async () => {
    lab = await startLabOrg({ allowLabSignIn: true });
    rootCaFile = writeRootCa(lab.rootCaPem);
  });
  after(() => lab?.close());

  test('the enrollment arrives over TCP and through the local syslog socket as RFC 5424 with event ID 1000 and its fields', async () => {
    const dir = tempDir('rsyslog');
    const socket = path.join(dir, 'log');
    const rs = await startRsyslog({ dir, unixSocket: socket });
    try {
      const p = makeProfile({ orgUrl: lab.orgUrl, rootCaFile, extraEnv: { DTA_LAB_SIGN_IN: 'true', DTA_METRICS_DIR: 'off', DTA_SYSLOG_REMOTE: `tcp://127.0.0.1:${rs.port}`, DTA_SYSLOG_SOCKET: socket } });
      const r = await runAgent(['run'], p.env);
      assert.equal(r.code, 0, r.stderr);
      const st = readState(p);
      const correlationId = st.lastRun.correlationId as string;
      assert.match(correlationId, /^[0-9a-f]{32}$/);
      const remote = await waitFor('the remote 1000 event', () => rs.received().find((l) => l.startsWith('1|1000|device-trust-agent|') && l.includes('[origin software="device-trust-agent"')), 20_000);
      for (const field of ['eventId="1000"', `deviceId="${st.deviceId}"`, 'outcome="enrolled"', `correlationId="${correlationId}"`, 'task="user"']) assert.ok(remote.includes(field), `${field} in ${remote}`);
      assert.match(remote, /\|Certificate enrolled: Certificate [0-9a-f]+ enrolled for device/);
      // The server side of the same pass: the lab org logged requests under the same correlation ID.
      const serverSide = lab.requestLog.filter((l) => l.includes(`trace_id=${correlationId}`));
      assert.ok(serverSide.some((l) => / org POST \S+ 200 request_id=/.test(l)), lab.requestLog.join('\n'));
      assert.ok(serverSide.some((l) => / iwaPrimary POST \/IWA\/user-token 200 /.test(l)), 'the IWA requests carry it too');
      const local = await waitFor('the local 1000 event', () => rs.received().find((l) => l.startsWith('1|1000|device-trust-agent|') && l.includes('[dta@32473') && !l.includes('[origin software')), 20_000);
      assert.ok(local.includes(`deviceId="${st.deviceId}"`) && local.includes('outcome="enrolled"'), local);
      // A state change carries the named state it changed to.
      assert.ok(rs.received().some((l) => l.startsWith('1|1300|') && l.includes('state="ENROLLED"')), rs.received().join('\n'));
      // Secrets never leave: no token in anything rsyslog received.
      assert.ok(!rs.received().some((l) => /eyJ[\w-]{5,}\.[\w-]{5,}\./.test(l)));
    } finally {
      await rs.stop();
    }
  });

  test('a collector that is down does not fail the pass; spooled events arrive when it is back', async () => {
    const dir = tempDir('rsyslog');
    let rs = await startRsyslog({ dir });
    const port = rs.port;
    await rs.stop();
    const p = makeProfile({ orgUrl: lab.orgUrl, rootCaFile, extraEnv: { DTA_LAB_SIGN_IN: 'true', DTA_METRICS_DIR: 'off', DTA_PLATFORM_LOG: 'off', DTA_SYSLOG_REMOTE: `tcp://127.0.0.1:${port}` } });
    const r = await runAgent(['run'], p.env);
    assert.equal(r.code, 0, `the pass succeeds with the collector down: ${r.stderr}`);
    const spool = path.join(p.stateDir, 'syslog-spool');
    const spooled = fs.readdirSync(spool).filter((f) => f.endsWith('.msg'));
    assert.ok(spooled.length >= 2, `events are kept in the spool: ${spooled.join(', ')}`);
    assert.ok(spooled.some((f) => fs.readFileSync(path.join(spool, f), 'utf8').includes(' 1000 [dta@32473 eventId="1000"')));

    rs = await startRsyslog({ dir, port });
    try {
      // Any later start of the agent (here `status`) sends what was spooled.
      const s = await runAgent(['status'], p.env);
      assert.equal(s.code, 0, s.stderr);
      const line = await waitFor('the spooled 1000 event', () => rs.received().find((l) => l.startsWith('1|1000|')), 20_000);
      assert.ok(line.includes(`correlationId="${readState(p).lastRun.correlationId}"`), line);
      await waitFor('an empty spool', () => fs.readdirSync(spool).filter((f) => f.endsWith('.msg')).length === 0 || undefined, 10_000);
    } finally {
      await rs.stop();
    }
  });

  test('over TLS (RFC 5425, gtls driver) with the collector\'s certificate verified', { skip: haveGtls ? false : 'skipped: rsyslog-gnutls is not installed (apt-get install rsyslog-gnutls)' }, async () => {
    const pki = await LabPki.create();
    const dir = tempDir('rsyslog-tls');
    const creds = await pki.serverTlsCredentials();
    const files = { ca: path.join(dir, 'ca.pem'), cert: path.join(dir, 'cert.pem'), key: path.join(dir, 'key.pem') };
    fs.writeFileSync(files.ca, pki.rootCaPem);
    fs.writeFileSync(files.cert, `${creds.cert.trim()}\n${pki.issuingCaPem.trim()}\n`);
    fs.writeFileSync(files.key, creds.key, { mode: 0o600 });
    const rs = await startRsyslog({ dir, tls: files });
    try {
      const wrongCa = writeRootCa(lab.rootCaPem);
      const bad = makeProfile({ orgUrl: lab.orgUrl, rootCaFile, extraEnv: { DTA_LAB_SIGN_IN: 'true', DTA_METRICS_DIR: 'off', DTA_PLATFORM_LOG: 'off', DTA_SYSLOG_REMOTE: `tls://localhost:${rs.port}`, DTA_SYSLOG_CA_FILE: wrongCa } });
      // The collector's certificate is not trusted by this profile: nothing is sent, the spool keeps it, the pass succeeds.
      const rb = await runAgent(['run'], bad.env);
      assert.equal(rb.code, 0, rb.stderr);
      assert.ok(fs.readdirSync(path.join(bad.stateDir, 'syslog-spool')).some((f) => f.endsWith('.msg')), 'kept for a trusted collector');

      const p = makeProfile({ orgUrl: lab.orgUrl, rootCaFile, extraEnv: { DTA_LAB_SIGN_IN: 'true', DTA_METRICS_DIR: 'off', DTA_PLATFORM_LOG: 'off', DTA_SYSLOG_REMOTE: `tls://localhost:${rs.port}`, DTA_SYSLOG_CA_FILE: files.ca } });
      const r = await runAgent(['run'], p.env);
      assert.equal(r.code, 0, r.stderr);
      const line = await waitFor('the 1000 event over TLS', () => rs.received().find((l) => l.startsWith('1|1000|') && l.includes(`deviceId="${readState(p).deviceId}"`)), 20_000);
      assert.ok(line.includes('outcome="enrolled"'), line);
      assert.ok(!rs.received().some((l) => l.includes(readState(bad).deviceId)), 'nothing reached the collector from the profile that does not trust it');
    } finally {
      await rs.stop();
    }
  });
});
