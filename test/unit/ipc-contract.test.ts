/** The preload API is generated from the contract, and the dashboard's event-log queries and exports. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { AgentEvent } from '../../src-main/core/events.js';
import { API_METHODS, buildApi, CHANNELS } from '../../src-main/ipc/contract.js';
import { exportEvents, queryEvents } from '../../src-main/ipc/event-query.js';
import { headlineOf, trustStateOf } from '../../src-main/ipc/status-view.js';

describe('the IPC contract', () => {
  test('window.deviceTrust has exactly one named function per channel, plus onEvent', async () => {
    const sent: [string, unknown][] = [];
    const api = buildApi(async (channel, request) => {
      sent.push([channel, request]);
      return { ok: true, value: null };
    }, () => () => undefined) as unknown as Record<string, (r?: unknown) => Promise<unknown>>;
    assert.deepEqual(Object.keys(api).sort(), [...Object.values(CHANNELS).map((c) => c.method), 'onEvent'].sort());
    assert.ok(Object.isFrozen(api));
    for (const { method, channel } of API_METHODS) {
      await api[method]!({});
      assert.deepEqual(sent.at(-1), [channel, {}]);
    }
    assert.equal(new Set(API_METHODS.map((m) => m.method)).size, API_METHODS.length, 'method names are unique');
  });

  test('onEvent passes only events that match the contract', () => {
    let push: (e: unknown) => void = () => undefined;
    const api = buildApi(async () => ({}), (l) => {
      push = l;
      return () => undefined;
    });
    const got: unknown[] = [];
    api.onEvent((e) => got.push(e));
    push({ type: 'navigate', view: 'events' });
    push({ type: 'navigate', view: 'file:///etc' });
    push({ type: 'run-shell', cmd: 'rm' });
    push('confirm-force-renewal');
    assert.deepEqual(got, [{ type: 'navigate', view: 'events' }]);
  });

  test('the tray/header state follows the agent state', () => {
    assert.equal(trustStateOf('ENROLLED', null), 'trusted');
    assert.equal(trustStateOf('RENEWAL_DUE', null), 'trusted');
    assert.equal(trustStateOf('ENROLLED', 'renew'), 'renewing');
    assert.equal(trustStateOf('ENROLLED', 'diagnostics'), 'trusted', 'diagnostics do not change trust');
    assert.equal(trustStateOf('REVOKED', null), 'attention');
    assert.equal(trustStateOf('KEY_MISSING', null), 'attention');
    assert.equal(trustStateOf('NOT_CONFIGURED', null), 'attention');
    assert.equal(trustStateOf('NOT_ENROLLED', null), 'not-trusted');
    assert.equal(trustStateOf('EXPIRED', null), 'not-trusted');
    assert.equal(headlineOf('renewing', false), 'Enrolling this device…');
  });
});

describe('event-log queries', () => {
  const ev = (time: string, id: number, level: AgentEvent['level'], message: string): AgentEvent => ({ time, id, level, title: `t${id}`, message, task: 'user' });
  const log = [
    ev('2026-01-01T10:00:00.000Z', 1000, 'info', 'Certificate 0a enrolled'),
    ev('2026-01-02T10:00:00.000Z', 2000, 'warning', 'No IWA web app answered'),
    ev('2026-01-03T10:00:00.000Z', 1001, 'info', 'Certificate 0b renewed'),
    ev('2026-01-04T10:00:00.000Z', 2002, 'error', '=HYPERLINK("http://x") rejected, "quoted"'),
  ];

  test('filters by level, ID, time and text, newest first, with counts', () => {
    assert.deepEqual(queryEvents(log, {}).events.map((e) => e.id), [2002, 1001, 2000, 1000]);
    assert.deepEqual(queryEvents(log, { levels: ['warning', 'error'] }).events.map((e) => e.id), [2002, 2000]);
    assert.deepEqual(queryEvents(log, { ids: [1001] }).events.map((e) => e.id), [1001]);
    assert.deepEqual(queryEvents(log, { since: '2026-01-02T00:00:00.000Z', until: '2026-01-03T23:00:00.000Z' }).events.map((e) => e.id), [1001, 2000]);
    assert.deepEqual(queryEvents(log, { text: 'iwa' }).events.map((e) => e.id), [2000]);
    const limited = queryEvents(log, { limit: 1 });
    assert.equal(limited.events.length, 1);
    assert.equal(limited.matched, 4);
    assert.equal(limited.total, 4);
    assert.ok(limited.catalogue.some((c) => c.id === 1000 && c.title === 'Certificate enrolled'));
  });

  test('CSV export quotes fields and defuses spreadsheet formulas; JSON lines are one event per line', () => {
    const csv = exportEvents(log, { levels: ['error'] }, 'csv');
    assert.equal(csv.count, 1);
    const lines = csv.content.trim().split('\r\n');
    assert.equal(lines[0], 'time,id,level,title,message,task');
    assert.equal(lines[1], `2026-01-04T10:00:00.000Z,2002,error,t2002,"'=HYPERLINK(""http://x"") rejected, ""quoted""",user`);
    const jsonl = exportEvents(log, {}, 'jsonl');
    assert.deepEqual(jsonl.content.trim().split('\n').map((l) => JSON.parse(l).id), [1000, 2000, 1001, 2002]);
  });
});
