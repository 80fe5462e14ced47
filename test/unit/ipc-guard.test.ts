/**
 * The IPC guard: every call is checked for its sender (the dashboard's origin, its main frame) and its
 * request schema before a handler runs, and every answer is cut to the contract and redacted.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { AgentError } from '../../src-main/base/errors.js';
import type { StatusView } from '../../src-main/ipc/contract.js';
import { dispatch, originOf, senderProblem, type Handlers, type IpcSender } from '../../src-main/ipc/guard.js';

const ORIGIN = 'app://dashboard';
const good: IpcSender = { frameUrl: 'app://dashboard/index.html', isMainFrame: true };

const status: StatusView = {
  trust: 'trusted', headline: 'This device is trusted', state: 'ENROLLED', summary: 's', deviceId: 'd', deviceName: 'n', certificatesInStore: 1, busy: null,
};

/** Handlers that record what reached them; the guard is what is tested. */
function recording(overrides: Partial<Handlers> = {}) {
  const calls: string[] = [];
  const h = {
    'status:get': async () => (calls.push('status:get'), status),
    'task:renew': async () => (calls.push('task:renew'), { outcome: 'renewed' as const, message: 'ok', warnings: [] }),
    'task:force-renewal': async () => (calls.push('task:force-renewal'), { outcome: 'enrolled' as const, message: 'ok', warnings: [] }),
    'diagnostics:last': async () => (calls.push('diagnostics:last'), null),
    'diagnostics:run': async () => {
      throw new Error('not used');
    },
    'events:query': async () => (calls.push('events:query'), { events: [], matched: 0, total: 0, catalogue: [] }),
    'events:export': async () => (calls.push('events:export'), { savedTo: null, count: 0 }),
    'ui:ready': async () => (calls.push('ui:ready'), { pending: [] }),
    ...overrides,
  } as Handlers;
  return { h, calls };
}

describe('IPC guard', () => {
  test('a call from the dashboard main frame with a valid request reaches its handler', async () => {
    const { h, calls } = recording();
    const r = await dispatch('status:get', {}, good, h, { allowedOrigins: [ORIGIN] });
    assert.deepEqual(r, { ok: true, value: status });
    assert.deepEqual(calls, ['status:get']);
  });

  for (const [name, sender] of [
    ['another origin', { frameUrl: 'https://evil.example/x', isMainFrame: true }],
    ['a look-alike host', { frameUrl: 'app://dashboard.evil/index.html', isMainFrame: true }],
    ['a file:// page', { frameUrl: 'file:///tmp/index.html', isMainFrame: true }],
    ['a sub-frame of the dashboard', { frameUrl: 'app://dashboard/index.html', isMainFrame: false }],
    ['a frame that is gone', { frameUrl: undefined, isMainFrame: true }],
  ] as const) {
    test(`a call from ${name} is refused and no handler runs`, async () => {
      const { h, calls } = recording();
      const refused: string[] = [];
      const r = await dispatch('task:renew', {}, sender, h, { allowedOrigins: [ORIGIN], onRefused: (why) => refused.push(why) });
      assert.deepEqual(r, { ok: false, error: { code: 'IPC_REFUSED', message: 'The request was refused.' } });
      assert.deepEqual(calls, []);
      assert.equal(refused.length, 1);
    });
  }

  test('an unknown channel is refused, including inherited property names', async () => {
    const { h, calls } = recording();
    for (const channel of ['shell:exec', 'constructor', '__proto__', 42]) {
      const r = await dispatch(channel, {}, good, h, { allowedOrigins: [ORIGIN] });
      assert.equal(r.ok, false);
    }
    assert.deepEqual(calls, []);
  });

  for (const [channel, request, where] of [
    ['task:force-renewal', {}, /confirmed/],
    ['task:force-renewal', { confirmed: 'yes' }, /confirmed/],
    ['events:query', { levels: ['debug'] }, /levels/],
    ['events:query', { since: 'yesterday' }, /since/],
    ['events:query', { limit: 1e9 }, /limit/],
    ['events:query', { text: 'x'.repeat(10_000) }, /text/],
    ['events:query', { evil: true }, /evil|Unrecognized/i],
    ['events:export', { query: {}, format: 'exe' }, /format/],
    ['status:get', 'not an object', /request/],
    ['status:get', { path: '/etc/passwd' }, /Unrecognized|path/i],
  ] as const) {
    test(`a malformed request is refused before the handler: ${channel} ${JSON.stringify(request).slice(0, 40)}`, async () => {
      const { h, calls } = recording();
      const r = await dispatch(channel, request, good, h, { allowedOrigins: [ORIGIN] });
      assert.equal(r.ok, false);
      if (!r.ok) {
        assert.equal(r.error.code, 'IPC_INVALID_REQUEST');
        assert.match(r.error.message, where);
      }
      assert.deepEqual(calls, []);
    });
  }

  test('answers are cut to the contract: a key or token a handler adds never crosses', async () => {
    const { h } = recording({
      'status:get': async () => ({ ...status, keyPem: '-----BEGIN PRIVATE KEY-----\nMIGH\n-----END PRIVATE KEY-----', userToken: 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl' }) as StatusView,
    });
    const r = await dispatch('status:get', {}, good, h, { allowedOrigins: [ORIGIN] });
    assert.ok(r.ok);
    assert.doesNotMatch(JSON.stringify(r), /PRIVATE KEY|eyJhbGci|keyPem|userToken/);
  });

  test('a token inside an allowed text field is redacted on the way out', async () => {
    const jwt = 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlc2lnbmF0dXJl';
    const { h } = recording({ 'task:renew': async () => ({ outcome: 'renewed', message: `token ${jwt}`, warnings: [] }) });
    const r = await dispatch('task:renew', {}, good, h, { allowedOrigins: [ORIGIN] });
    assert.ok(r.ok);
    assert.doesNotMatch(JSON.stringify(r), new RegExp(jwt.slice(10, 40)));
  });

  test('an answer that does not match the contract is not sent', async () => {
    const { h } = recording({ 'status:get': async () => ({ trust: 'maybe' }) as unknown as StatusView });
    const r = await dispatch('status:get', {}, good, h, { allowedOrigins: [ORIGIN] });
    assert.deepEqual(r, { ok: false, error: { code: 'INTERNAL', message: 'The answer to status:get did not match the contract.' } });
  });

  test('an AgentError keeps its code, sentence and remedy; other errors become INTERNAL', async () => {
    const { h } = recording({
      'task:renew': async () => {
        throw new AgentError('retry-later', 'IWA_UNREACHABLE', 'No IWA web app answered.', 'Connect to the corporate network or VPN.');
      },
      'task:force-renewal': async () => {
        throw new TypeError('x is undefined');
      },
    });
    assert.deepEqual(await dispatch('task:renew', {}, good, h, { allowedOrigins: [ORIGIN] }), {
      ok: false, error: { code: 'IWA_UNREACHABLE', message: 'No IWA web app answered.', remedy: 'Connect to the corporate network or VPN.' },
    });
    const r = await dispatch('task:force-renewal', { confirmed: true }, good, h, { allowedOrigins: [ORIGIN] });
    assert.equal(r.ok ? '' : r.error.code, 'INTERNAL');
  });

  test('origins of custom schemes are compared by scheme and host', () => {
    assert.equal(originOf('app://dashboard/index.html'), 'app://dashboard');
    assert.equal(originOf('https://dashboard.test:8443/a?b'), 'https://dashboard.test:8443');
    assert.equal(originOf('about:blank'), undefined);
    assert.equal(originOf('not a url'), undefined);
    assert.equal(senderProblem(good, [ORIGIN]), undefined);
    assert.match(senderProblem({ frameUrl: 'app://dashboard/index.html', isMainFrame: true }, ['https://dashboard.test']) ?? '', /not the dashboard/);
  });
});
