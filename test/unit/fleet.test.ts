import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import { requestIdsFor, serverErrorCode } from '../../src-main/core/fleet/correlation.js';
import { phaseOf } from '../../src-main/core/fleet/failure.js';
import { agentFamilies, escapeHelp, escapeLabelValue, labelToken, MAX_POSTURE_CHECKS, POSTURE_METRICS, postureFamilies, renderAgentMetrics, renderExposition, type MetricsInput } from '../../src-main/core/fleet/metrics.js';
import { keyProtectionFrom, postureFrom, writeMetricsFile } from '../../src-main/core/fleet/metrics-writer.js';
import { signingTest } from '../../src-main/core/fleet/signing.js';
import { escapeParamValue, formatRfc5424, octetFrame } from '../../src-main/core/fleet/syslog.js';
import { SyslogForwarder } from '../../src-main/core/fleet/syslog-forwarder.js';
import { EventLog } from '../../src-main/core/events.js';
import { loadConfig } from '../../src-main/core/config.js';
import { generateLocalKey } from '../../src-main/core/keys/keys.js';
import { eventSinkCommands } from '../../src-main/platform/event-sinks.js';
import { tempDir } from '../support/agent.js';
import { LabPki } from '../../lab/ca.js';
import { listenOnLoopback } from '../support/net.js';
import { EventSinks } from '../../src-main/core/context.js';

const haveCommand = (c: string) => spawnSync(c, ['--version'], { stdio: 'ignore' }).error === undefined;

test('exposition escaping: label values escape backslash, quote and newline; HELP escapes backslash and newline', () => {
  assert.equal(escapeLabelValue('a\\b"c\nd'), 'a\\\\b\\"c\\nd');
  assert.equal(escapeHelp('x\\y\nz "q"'), 'x\\\\y\\nz "q"');
  const text = renderExposition([{ name: 'x_total', help: 'h\nelp', type: 'counter', samples: [{ labels: { l: 'v"\\\n' }, value: 1 }, { value: NaN }] }]);
  assert.equal(text, '# HELP x_total h\\nelp\n# TYPE x_total counter\nx_total{l="v\\"\\\\\\n"} 1\nx_total NaN\n');
  assert.throws(() => renderExposition([{ name: 'bad-name', help: '', type: 'gauge', samples: [{ value: 1 }] }]), /invalid metric name/);
  assert.throws(() => renderExposition([{ name: 'ok', help: '', type: 'gauge', samples: [{ labels: { __x: 'y' }, value: 1 }] }]), /invalid label name/);
  if (haveCommand('promtool')) {
    const r = spawnSync('promtool', ['check', 'metrics'], { input: text.replace('x_total NaN\n', ''), encoding: 'utf8' });
    assert.equal(r.status, 0, r.stdout + r.stderr);
  } else console.log('# skipped promtool part: promtool is not installed');
});

const base: MetricsInput = { version: '0.1.0', backend: 'idp', task: 'user', state: 'ENROLLED', stuck: false, trusted: true, consecutiveFailures: 0, targets: [] };

test('agent metrics: one-hot state, no certificate series without a certificate, bounded posture and target labels', () => {
  const none = renderAgentMetrics({ ...base, state: 'NOT_ENROLLED', trusted: false });
  assert.match(none, /^device_trust_agent_state\{state="NOT_ENROLLED"\} 1$/m);
  assert.equal(none.match(/^device_trust_agent_state\{.*\} 1$/gm)?.length, 1, 'exactly one state is 1');
  assert.doesNotMatch(none, /certificate_not_after_seconds|key_protection\{/);
  const many = Array.from({ length: 100 }, (_, i) => ({ check: `Check ${i} / "odd"`, result: i % 2 ? 'pass' : 'FAILED' }));
  const fams = postureFamilies(many);
  const result = fams.find((f) => f.name === POSTURE_METRICS.result)!;
  assert.equal(result.samples.length, MAX_POSTURE_CHECKS * 3, 'at most 32 checks × 3 results');
  assert.equal(fams.find((f) => f.name === POSTURE_METRICS.failing)!.samples[0]!.value, MAX_POSTURE_CHECKS / 2);
  assert.equal(labelToken('Disk Encryption (FileVault)'), 'disk_encryption_filevault');
  assert.deepEqual(postureFamilies([]), [], 'no posture series when there are no results');
  const withTargets = agentFamilies({ ...base, targets: Array.from({ length: 40 }, (_, i) => ({ target: `t${i}`, state: 'ONLINE' })) });
  assert.equal(withTargets.find((f) => f.name.endsWith('target_health'))!.samples.length, 16 * 4);
});

test('key protection and posture are read defensively from whatever the state carries', () => {
  assert.equal(keyProtectionFrom({ keyProtection: 'tpm' }, true), 'tpm');
  assert.equal(keyProtectionFrom({ current: { keyProtection: 'pkcs11' } }, false), 'tpm');
  assert.equal(keyProtectionFrom({ current: { key: { protection: 'keychain' } } }, false), 'os_store');
  assert.equal(keyProtectionFrom({ current: {} }, true), 'software');
  assert.equal(keyProtectionFrom({ current: 5 }, false), 'unknown');
  assert.deepEqual(postureFrom({ posture: { checks: [{ name: 'firewall', ok: false }, { check: 'disk', result: 'pass' }, 'junk'] } }), [{ check: 'firewall', result: 'fail' }, { check: 'disk', result: 'pass' }]);
  assert.equal(postureFrom({ posture: 'nope' }), undefined);
});

test('request IDs: W3C traceparent and X-Request-ID share the pass\'s trace ID; a server error code is read only from the protocol\'s shape', () => {
  const a = requestIdsFor('0af7651916cd43dd8448eb211c80319c');
  const b = requestIdsFor('0af7651916cd43dd8448eb211c80319c');
  assert.match(a.traceparent, /^00-0af7651916cd43dd8448eb211c80319c-[0-9a-f]{16}-01$/);
  assert.equal(a.requestId, `0af7651916cd43dd8448eb211c80319c-${a.spanId}`);
  assert.notEqual(a.spanId, b.spanId);
  assert.equal(serverErrorCode(Buffer.from('{"errorCode":"E0000_READ_ONLY","errorSummary":"x"}')), 'E0000_READ_ONLY');
  assert.equal(serverErrorCode(Buffer.from('{"errorCode":"a b\\n"}')), undefined);
  assert.equal(serverErrorCode(Buffer.from('<html>')), undefined);
});

test('the failure phase comes from the step that failed', () => {
  const ok = (name: string) => ({ name, ok: true });
  const bad = (name: string) => ({ name, ok: false });
  assert.equal(phaseOf([bad('Discover the org (IWA web apps, CA, mTLS host)')]), 'discover');
  assert.equal(phaseOf([ok('Discover the org'), bad('Get a device token from the IWA web app (machine identity)')]), 'device token');
  assert.equal(phaseOf([ok('x'), bad('Get a user token from the IWA web app (logged-on user)')]), 'user token');
  assert.equal(phaseOf([bad('Ask the org to issue the certificate')]), 'issue');
  assert.equal(phaseOf([bad('Install into the NSS database /x')]), 'install');
  assert.equal(phaseOf([bad('Get the CA certificate (GetCACert) and check it against the pinned fingerprint')]), 'discover');
  assert.equal(phaseOf([bad('Send the enrollment request (PKCSReq, POST)')]), 'issue');
});

test('RFC 5424: header, structured data with escaped values, redacted one-line message, octet-counted frame', () => {
  const line = formatRfc5424({ time: '2026-01-02T03:04:05.678Z', id: 2002, level: 'error', title: 'Enrollment rejected', task: 'user',
    message: 'refused "x"]\nBearer abcdefghijklmnop and eyJhbGciOi.eyJzdWIiOi.c2lnbmF0dXJl', data: { code: 'USER_NOT_ACTIVE', correlationId: 'abc', serverCode: 'E0000_X' } },
  { deviceId: 'dev-1', state: 'REJECTED', hostname: 'host name', pid: 42 });
  assert.match(line, /^<11>1 2026-01-02T03:04:05\.678Z hostname device-trust-agent 42 2002 \[dta@32473 /);
  for (const f of ['eventId="2002"', 'level="error"', 'task="user"', 'state="REJECTED"', 'deviceId="dev-1"', 'outcome="rejected"', 'code="USER_NOT_ACTIVE"', 'correlationId="abc"', 'serverCode="E0000_X"']) assert.ok(line.includes(f), f);
  assert.ok(!line.includes('\n') && !line.includes('abcdefghijklmnop') && !line.includes('eyJzdWIiOi'), line);
  assert.equal(escapeParamValue('a"b\\c]d'), 'a\\"b\\\\c\\]d');
  assert.equal(octetFrame('é'), '2 é');
  const sink = eventSinkCommands.loggerRfc5424({ id: 1000, level: 'info', title: 't', message: 'm', sd: { eventId: '1000', x: 'a"]' } }, '/run/x.sock');
  assert.deepEqual(sink.args, ['-t', 'device-trust-agent', '-p', 'user.info', '--rfc5424', '--msgid', '1000', '-u', '/run/x.sock', '--sd-id', 'dta@32473', '--sd-param', 'eventId="1000"', '--sd-param', 'x="a\\"\\]"']);
  assert.equal(sink.input, '[1000] t: m\n');
});

test('the spool is bounded: the oldest messages are dropped and the drop is itself reported', () => {
  const stateDir = tempDir('spool');
  const f = new SyslogForwarder({ url: 'tcp://127.0.0.1:9', stateDir, maxSpoolFiles: 5 });
  for (let i = 0; i < 12; i++) f.spool(`message ${i}`);
  const files = f.pending();
  assert.equal(files.length, 5);
  const texts = files.map((x) => fs.readFileSync(path.join(f.spoolDir, x), 'utf8'));
  assert.ok(texts.some((t) => t.includes('Syslog spool full')));
  assert.ok(texts.some((t) => t === 'message 11'), 'the newest is kept');
  assert.ok(!texts.some((t) => t === 'message 0'), 'the oldest went first');
});

test('a collector that reads gets every spooled message in order (octet counting); one that is down leaves them spooled', async () => {
  const stateDir = tempDir('spool');
  const got: Buffer[] = [];
  const server = net.createServer((s) => {
    s.on('data', (d) => got.push(d));
    s.on('end', () => s.end());
  });
  const port = await listenOnLoopback(server);
  const f = new SyslogForwarder({ url: `tcp://127.0.0.1:${port}`, stateDir });
  f.spool('first');
  f.spool('second é');
  const r = await f.flush();
  assert.deepEqual(r, { sent: 2 });
  assert.equal(Buffer.concat(got).toString('utf8'), '5 first9 second é');
  assert.equal(f.pending().length, 0);
  await new Promise<void>((res) => server.close(() => res()));
  const down = await f.flush();
  assert.equal(down.sent, 0);
  f.spool('third');
  const refused = await f.flush();
  assert.ok(refused.error && /ECONNREFUSED/.test(refused.error), refused.error);
  assert.equal(f.pending().length, 1, 'kept for later');
});

test('metrics to a missing directory: the pass is not affected and the warning is recorded once', () => {
  const stateDir = tempDir('state');
  const env = { HOME: tempDir('home'), DTA_STATE_DIR: stateDir, DTA_METRICS_DIR: path.join(stateDir, 'no-such-dir'), DTA_MANAGED_CONFIG_DIR: tempDir('managed'), DTA_PLATFORM_LOG: 'off' };
  const loaded = loadConfig({ env });
  const a = writeMetricsFile(loaded, EventSinks.none());
  const b = writeMetricsFile(loaded, EventSinks.none());
  assert.ok('failed' in a && a.warnedNow && /does not exist/.test(a.failed));
  assert.ok('failed' in b && !b.warnedNow);
  const warnings = new EventLog(stateDir, undefined, { sinks: [] }).read().filter((e) => e.id === 1250);
  assert.equal(warnings.length, 1);
  assert.match(warnings[0]!.message, /DTA_METRICS_DIR/);
  fs.mkdirSync(env.DTA_METRICS_DIR);
  const c = writeMetricsFile(loaded, EventSinks.none());
  assert.ok('written' in c);
  assert.equal((fs.statSync(c.written).mode & 0o777).toString(8), '644', 'node_exporter (another user) can read it');
  assert.ok('skipped' in writeMetricsFile(loadConfig({ env: { ...env, DTA_METRICS_DIR: 'off' } }), EventSinks.none()));
});

test('the live signing test passes with the certificate\'s own key and fails with another key', async () => {
  const pki = await LabPki.create();
  const key = await generateLocalKey('P-256');
  const other = await generateLocalKey('P-256');
  const publicKey = await crypto.webcrypto.subtle.importKey('spki', key.publicKey.export({ format: 'der', type: 'spki' }), { name: 'ECDSA', namedCurve: 'P-256' }, true, ['verify']);
  const cert = await pki.issueClientCertificate({ publicKey, subject: 'CN=device', crlUrl: 'https://localhost/crl', validitySeconds: 3600 });
  const pem = cert.toString('pem');
  const good = await signingTest({ key, certificatePem: pem });
  assert.ok(good.ok, good.evidence);
  const bad = await signingTest({ key: other, certificatePem: pem });
  assert.ok(!bad.ok && /does not verify/.test(bad.evidence), bad.evidence);
  const broken = await signingTest({ key: { describe: 'token', sign: async () => { throw new Error('CKR_DEVICE_REMOVED'); } }, certificatePem: pem });
  assert.ok(!broken.ok && /CKR_DEVICE_REMOVED/.test(broken.evidence));
});
