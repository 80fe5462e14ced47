import assert from 'node:assert/strict';
import { test } from 'node:test';
import { main } from '../../src-main/cli/main.js';
import { tempDir } from '../support/agent.js';

async function cli(argv: string[], env: NodeJS.ProcessEnv = { HOME: tempDir('cli'), DTA_MANAGED_CONFIG_DIR: '/nonexistent' }) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(argv, { out: (s) => out.push(s), err: (s) => err.push(s), env });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

test('help lists every command and the exit codes; help <command> shows its options', async () => {
  const h = await cli(['help']);
  assert.equal(h.code, 0);
  assert.match(h.out, /^\s+run\s/m);
  assert.match(h.out, /^\s+status\s/m);
  assert.match(h.out, /20 retry later/);
  const r = await cli(['help', 'run']);
  assert.match(r.out, /--forceRenewal/);
});

test('usage errors exit 64 and point at help', async () => {
  const a = await cli(['bogus']);
  assert.equal(a.code, 64);
  assert.match(a.err, /Unknown command "bogus"/);
  const b = await cli(['run', '--nope']);
  assert.equal(b.code, 64);
  assert.match(b.err, /help run/);
  const c = await cli(['run', 'stray']);
  assert.equal(c.code, 64);
  assert.match(c.err, /Unexpected argument "stray"/);
});

test('without an org URL, run is a configuration error (78) that says where to set it; --json keeps stdout parseable', async () => {
  const r = await cli(['run']);
  assert.equal(r.code, 78);
  assert.match(r.err, /No org URL is configured/);
  assert.match(r.err, /What to do: .*OktaURL=/);
  const j = await cli(['run', '--json']);
  const parsed = JSON.parse(j.out);
  assert.equal(parsed.ok, false);
  assert.equal(parsed.error.code, 'NOT_CONFIGURED');
});

test('install-style Name=Value settings reach the configuration', async () => {
  const r = await cli(['status', '--json', 'OktaURL=https://example.invalid']);
  const s = JSON.parse(r.out);
  assert.equal(s.orgUrl, 'https://example.invalid');
  assert.equal(s.state, 'NOT_ENROLLED');
});
