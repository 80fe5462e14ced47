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

test('help lists the scheduling commands', async () => {
  const h = await cli(['help']);
  for (const c of ['daemon', 'schedule', 'install', 'uninstall']) assert.match(h.out, new RegExp(`^\\s+${c}\\s`, 'm'));
  assert.match((await cli(['help', 'daemon'])).out, /--once/);
  assert.match((await cli(['help', 'install'])).out, /--mode systemd\|autostart/);
});

test('schedule --json without an org URL: NOT_CONFIGURED, stuck, with what to do; exit 30', async () => {
  const r = await cli(['schedule', '--json']);
  assert.equal(r.code, 30);
  const s = JSON.parse(r.out);
  assert.equal(s.state, 'NOT_CONFIGURED');
  assert.equal(s.stuck, true);
  assert.match(s.action, /OktaURL=/);
  assert.equal(s.nextAttempt?.reason, 'first-run', 'a first pass is still due (it will say what is missing)');
});

test('a run without an org URL is recorded: status shows the named state and that it is stuck', async () => {
  const env = { HOME: tempDir('cli'), DTA_MANAGED_CONFIG_DIR: '/nonexistent' };
  assert.equal((await cli(['run'], env)).code, 78);
  const st = JSON.parse((await cli(['status', '--json'], env)).out);
  assert.equal(st.state, 'NOT_CONFIGURED');
  assert.equal(st.schedule.state, 'NOT_CONFIGURED');
  assert.equal(st.schedule.stuck, true);
  assert.equal(st.schedule.lastPass.code, 'NOT_CONFIGURED');
  assert.equal(st.schedule.nextAttempt?.reason, 'recheck', 'every state has a next deadline: a daily recheck (a configuration change starts one sooner)');
  const text = (await cli(['status'], env)).out;
  assert.match(text, /agent state: NOT_CONFIGURED \(stuck\)/);
  assert.match(text, /next pass:   \S+ \(recheck: stuck: checking again daily/);
});

test('bad options of the new commands are usage errors', async () => {
  assert.equal((await cli(['daemon', '--trigger', 'bogus'])).code, 78);
  assert.equal((await cli(['install', '--mode', 'bogus'])).code, 78);
  assert.equal((await cli(['install', '--user', '--device'])).code, 78);
});
