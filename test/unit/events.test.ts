import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import { EVENTS, EventLog, parseIds, parseSince } from '../../src-main/core/events.js';
import { eventSinkCommands, platformLogCommands, type SinkEvent } from '../../src-main/platform/event-sinks.js';
import { REPO, tempDir } from '../support/agent.js';
import { listenOnLoopback } from '../support/net.js';

const quiet = { sinks: [] };

test('the catalogue keeps the IDs and meanings callers and admins rely on', () => {
  assert.equal(EVENTS.ENROLLED.id, 1000);
  assert.equal(EVENTS.RENEWED.id, 1001);
  assert.equal(EVENTS.REVOKED_FOUND.id, 1100);
  assert.equal(EVENTS.RETRY_LATER.id, 2000);
  assert.equal(EVENTS.ORG_READ_ONLY.id, 2001);
  assert.equal(EVENTS.INTERNAL_ERROR.id, 2099);
  const ids = Object.values(EVENTS).map((e) => e.id);
  assert.equal(new Set(ids).size, ids.length, 'IDs are unique');
  // The operators' table is the documentation: every ID must be in it.
  const table = fs.readFileSync(path.join(REPO, 'docs', 'OPERATORS.md'), 'utf8');
  for (const [kind, e] of Object.entries(EVENTS)) assert.match(table, new RegExp(`\\| ${e.id} \\|`), `docs/OPERATORS.md lists ${e.id} (${kind})`);
});

test('record() keeps its API, redacts tokens and keys, and read() gives them back', () => {
  const dir = tempDir('ev');
  const log = new EventLog(dir, 'user', quiet);
  const jwt = 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlc2lnbmF0dXJl';
  const e = log.record('ENROLLED', `enrolled with ${jwt}`, { auth: 'SSWS 00abcdefghijklmnopqrstuvwxyz0123456789' });
  assert.equal(e.id, 1000);
  const text = fs.readFileSync(log.file, 'utf8');
  assert.ok(!text.includes(jwt) && !text.includes('00abcdefghijklmnop'), text);
  assert.equal(fs.statSync(log.file).mode & 0o777, 0o600);
  const back = log.read();
  assert.equal(back.length, 1);
  assert.equal(back[0]!.task, 'user');
  assert.equal(back[0]!.title, 'Certificate enrolled');
});

test('the log rotates and never exceeds its bound; the oldest events go first', () => {
  const dir = tempDir('ev');
  const log = new EventLog(dir, undefined, { ...quiet, maxFileBytes: 4096, keepFiles: 2 });
  for (let i = 0; i < 400; i++) log.record('NOTHING_TO_DO', `run ${i} ${'y'.repeat(50)}`);
  const files = fs.readdirSync(dir).filter((f) => f.startsWith('events'));
  assert.deepEqual(files.sort(), ['events.1.jsonl', 'events.2.jsonl', 'events.jsonl']);
  const total = files.reduce((n, f) => n + fs.statSync(path.join(dir, f)).size, 0);
  assert.ok(total <= log.boundBytes, `${total} <= ${log.boundBytes}`);
  for (const f of files) assert.ok(fs.statSync(path.join(dir, f)).size <= 4096);
  const events = log.read();
  assert.equal(events.at(-1)!.message.startsWith('run 399 '), true);
  assert.ok(!events.some((e) => e.message.startsWith('run 0 ')), 'the oldest were dropped');
  const seq = events.map((e) => Number(/run (\d+)/.exec(e.message)![1]));
  assert.deepEqual(seq, [...seq].sort((a, b) => a - b), 'read back oldest first, across files');
});

test('a runaway message is cut so that one event cannot break the bound', () => {
  const log = new EventLog(tempDir('ev'), undefined, { ...quiet, maxFileBytes: 64 * 1024 });
  log.record('INTERNAL_ERROR', 'z'.repeat(100_000), { big: 'q'.repeat(100_000) });
  const [e] = log.read();
  assert.equal(e!.truncated, true);
  assert.ok(fs.statSync(log.file).size < 9000);
});

test('a torn last line is skipped and the next event starts on a line of its own', () => {
  const log = new EventLog(tempDir('ev'), undefined, quiet);
  log.record('ENROLLED', 'first');
  fs.appendFileSync(log.file, '{"time":"2026-01-01T00:00:00.000Z","id":10');
  log.record('RENEWED', 'second');
  assert.deepEqual(log.read().map((e) => e.message), ['first', 'second']);
});

test('query by time, ID, level and text', () => {
  let t = Date.parse('2026-03-01T00:00:00Z');
  const log = new EventLog(tempDir('ev'), undefined, { ...quiet, now: () => new Date((t += 3600_000)) });
  log.record('ENROLLED', 'alpha');
  log.record('RETRY_LATER', 'network down at the café');
  log.record('REJECTED', 'user not active', { code: 'USER_NOT_ACTIVE' });
  log.record('RENEWED', 'beta');
  assert.deepEqual(log.query({ ids: [1000, 1001] }).map((e) => e.message), ['alpha', 'beta']);
  assert.deepEqual(log.query({ minLevel: 'warning' }).map((e) => e.id), [2000, 2002]);
  assert.deepEqual(log.query({ minLevel: 'error' }).map((e) => e.id), [2002]);
  assert.deepEqual(log.query({ text: 'CAFÉ' }).map((e) => e.id), [2000]);
  assert.deepEqual(log.query({ text: 'user_not_active' }).map((e) => e.id), [2002], 'data is searched too');
  assert.deepEqual(log.query({ since: new Date('2026-03-01T02:30:00Z') }).map((e) => e.id), [2002, 1001]);
  assert.deepEqual(log.query({ limit: 1 }).map((e) => e.id), [1001]);
  assert.equal(log.latest(['ENROLLED', 'REJECTED'])!.id, 2002);
});

test('--since and --id syntax', () => {
  const now = new Date('2026-03-10T12:00:00Z');
  assert.equal(parseSince('2h', now)!.toISOString(), '2026-03-10T10:00:00.000Z');
  assert.equal(parseSince('7d', now)!.toISOString(), '2026-03-03T12:00:00.000Z');
  assert.equal(parseSince('2026-03-01', now)!.toISOString(), '2026-03-01T00:00:00.000Z');
  assert.equal(parseSince('yesterday', now), undefined);
  assert.deepEqual(parseIds('1000,2000-2002'), [1000, 2000, 2001, 2002]);
  assert.equal(parseIds('10x'), undefined);
  assert.equal(parseIds('5-1'), undefined);
});

test('the event log survives a kill mid-write and keeps its bound', async () => {
  const dir = tempDir('ev-crash');
  const maxFileBytes = 8192;
  const keepFiles = 2;
  for (let round = 0; round < 3; round++) {
    const child = spawn(process.execPath, [path.join(REPO, 'dist', 'test', 'support', 'event-writer.js'), dir, String(maxFileBytes), String(keepFiles)], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
    await new Promise((r) => setTimeout(r, 150 + round * 70));
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
  }
  // A power cut can leave half a line as well (a kill cannot split one write): add one by hand.
  fs.appendFileSync(path.join(dir, 'events.jsonl'), '{"time":"2026-');
  const log = new EventLog(dir, 'after', { maxFileBytes, keepFiles, sinks: [] });
  const before = log.read();
  assert.ok(before.length > 10, `events survived (${before.length})`);
  assert.ok(before.every((e) => typeof e.id === 'number' && e.title), 'every event read back is whole');
  const files = fs.readdirSync(dir).filter((f) => /^events/.test(f));
  const total = files.reduce((n, f) => n + fs.statSync(path.join(dir, f)).size, 0);
  assert.ok(files.length <= keepFiles + 1, files.join(','));
  assert.ok(total <= log.boundBytes, `${total} bytes <= bound ${log.boundBytes}`);
  log.record('ENROLLED', 'after the crash');
  assert.equal(log.read().at(-1)!.message, 'after the crash', 'the next event is readable, not glued to the torn line');
});

const sample: SinkEvent = { id: 2001, level: 'warning', title: 'Org is read-only; will retry', message: 'line one\nline "two"; $(rm -rf /)' };

test('platform log commands, as data: syslog/journald on Linux, logger on macOS, Event Log on Windows', () => {
  // The text goes on standard input: argv is what every local user reads in `ps`.
  assert.deepEqual(eventSinkCommands.logger(sample), {
    file: 'logger', args: ['-t', 'device-trust-agent', '-p', 'user.warning'], input: '[2001] Org is read-only; will retry: line one line "two"; $(rm -rf /)\n',
  });
  assert.ok(!eventSinkCommands.systemdCat(sample).args.join(' ').includes('read-only'));
  assert.ok(!eventSinkCommands.loggerRfc5424(sample).args.join(' ').includes('read-only'));
  assert.deepEqual(platformLogCommands(sample, 'linux').map((c) => c.file), ['logger', 'systemd-cat']);
  assert.deepEqual(eventSinkCommands.systemdCat(sample).args.slice(0, 4), ['-t', 'device-trust-agent', '-p', 'warning']);
  assert.deepEqual(platformLogCommands(sample, 'darwin').map((c) => c.file), ['logger']);
  const win = platformLogCommands(sample, 'win32');
  assert.deepEqual(win.map((c) => c.file), ['powershell.exe'], 'Write-EventLog only: eventcreate cannot write under a source it did not register (issue 25.4)');
  assert.match(Buffer.from(win[0]!.args.at(-1)!, 'base64').toString('utf16le'), /Write-EventLog -LogName Application -Source \$env:DTA_EVENT_SOURCE -EventId \$env:DTA_EVENT_ID/);
  assert.deepEqual(win[0]!.env, { DTA_EVENT_SOURCE: 'Okta Device Trust', DTA_EVENT_ID: '2001', DTA_EVENT_TYPE: 'Warning', DTA_EVENT_MESSAGE: '[2001] Org is read-only; will retry: line one line "two"; $(rm -rf /)' });
  assert.ok(!win[0]!.args.join(' ').includes('rm -rf'), 'the message never reaches a command line PowerShell parses');
  const enrolled = platformLogCommands({ id: 1000, level: 'info', title: 'Certificate enrolled', message: 'ok' }, 'win32');
  assert.deepEqual(enrolled.map((c) => c.file), ['powershell.exe'], 'no eventcreate fallback, whatever the ID');
  assert.deepEqual(platformLogCommands(sample, 'aix'), []);
});

test('the logger command line really delivers to syslog (the real logger, to a syslog listener)', async (t) => {
  try {
    execFileSync('logger', ['--version']);
  } catch {
    t.skip('skipped: util-linux logger is not installed');
    console.log('# skipped: util-linux logger is not installed');
    return;
  }
  const got: string[] = [];
  const server = net.createServer((s) => s.on('data', (d) => got.push(d.toString())));
  const port = await listenOnLoopback(server);
  const cmd = eventSinkCommands.logger(sample);
  // The production arguments, pointed at this listener instead of /dev/log.
  execFileSync(cmd.file, [...cmd.args, '-n', '127.0.0.1', '-P', String(port), '-T'], { input: cmd.input });
  for (let i = 0; i < 50 && !got.join('').includes('2001'); i++) await new Promise((r) => setTimeout(r, 20));
  server.close();
  const line = got.join('');
  assert.match(line, /^<12>/, 'facility user, severity warning');
  assert.match(line, /device-trust-agent/);
  assert.match(line, /\[2001\] Org is read-only; will retry: line one line "two"/);
});

test('a missing platform log never fails the task', () => {
  const log = new EventLog(tempDir('ev'), undefined, { sinks: [() => { throw new Error('no syslog'); }] });
  assert.equal(log.record('ENROLLED', 'still recorded').id, 1000);
  assert.equal(log.read().length, 1);
});
