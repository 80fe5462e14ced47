import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { main } from '../../src-main/cli/main.js';
import { EventLog } from '../../src-main/core/events.js';
import { tempDir } from '../support/agent.js';

function profile() {
  const home = tempDir('dcli');
  return { home, env: { HOME: home, DTA_MANAGED_CONFIG_DIR: '/nonexistent', DTA_PLATFORM_LOG: 'off', DBUS_SESSION_BUS_ADDRESS: 'unix:path=/nonexistent/bus', KRB5_CONFIG: '/nonexistent' } as NodeJS.ProcessEnv };
}

async function cli(argv: string[], env: NodeJS.ProcessEnv) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(argv, { out: (s) => out.push(s), err: (s) => err.push(s), env });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

test('help lists the diagnostics commands with their options', async () => {
  const { env } = profile();
  const h = await cli(['help'], env);
  for (const c of ['diagnose', 'events', 'support-bundle', 'admin-token']) assert.match(h.out, new RegExp(`^\\s+${c}\\s`, 'm'));
  assert.match((await cli(['help', 'diagnose'], env)).out, /--watch[\s\S]*Exit code: 0 no problem/);
});

test('events: filters, JSON, and clear usage errors', async () => {
  const p = profile();
  const log = new EventLog(path.join(p.home, '.local', 'state', 'device-trust-agent'), 'user', { sinks: [] });
  log.record('ENROLLED', 'first certificate');
  log.record('ORG_READ_ONLY', 'maintenance window');
  const all = await cli(['events'], p.env);
  assert.equal(all.code, 0);
  assert.match(all.out, /1000  info    \[user\] Certificate enrolled: first certificate/);
  const warn = JSON.parse((await cli(['events', '--level', 'warning', '--json'], p.env)).out);
  assert.deepEqual(warn.map((e: { id: number }) => e.id), [2001]);
  assert.equal((await cli(['events', '--grep', 'nothing like it'], p.env)).out, 'No matching events.');
  const bad = await cli(['events', '--id', 'ten'], p.env);
  assert.equal(bad.code, 78);
  assert.match(bad.err, /--id must be IDs or ranges/);
  assert.match((await cli(['events', '--level', 'fatal'], p.env)).err, /--level must be one of info, warning, error/);
});

test('support-bundle: needs one file name, refuses to overwrite, writes an owner-only zip with a README', async () => {
  const p = profile();
  assert.equal((await cli(['support-bundle'], p.env)).code, 78);
  const file = path.join(p.home, 'bundle.zip');
  const r = await cli(['support-bundle', file, '--no-diagnose', 'OktaURL=https://example.invalid'], p.env);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /Support bundle written to .*bundle\.zip/);
  assert.equal(fs.statSync(file).mode & 0o777, 0o600);
  const list = execFileSync('unzip', ['-Z1', file]).toString().trim().split('\n').sort();
  assert.deepEqual(list, ['README.txt', 'certificates.json', 'config.json', 'environment.json', 'events.jsonl', 'state.json']);
  const again = await cli(['support-bundle', file, '--no-diagnose'], p.env);
  assert.equal(again.code, 78);
  assert.match(again.err, /exists; choose another name or add --force/);
  const events = new EventLog(path.join(p.home, '.local', 'state', 'device-trust-agent'), undefined, { sinks: [] }).query({ ids: [1230] });
  assert.equal(events.length, 1);
});

test('admin-token: says what to do with a wrong action, and needs an org', async () => {
  const p = profile();
  const r = await cli(['admin-token', 'show'], p.env);
  assert.equal(r.code, 78);
  assert.match(r.err, /admin-token set \| status \| remove/);
  assert.match((await cli(['admin-token', 'status'], p.env)).err, /No org URL is configured/);
});
