/**
 * One wiring point per process (core/context.ts): what a root hands down stays with what it was handed to. Two
 * contexts in one process — as in the tests, or a CLI run inside the tray app — keep their events, secrets,
 * proxy source and platform apart. With the process-wide registries this replaced (useSecretStore,
 * useSystemProxy, addEventSink), the second context's wiring took over the first's.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import path from 'node:path';
import { after, test } from 'node:test';
import { loadConfig, type LoadedConfig } from '../../src-main/core/config.js';
import { EventSinks, type AgentContext } from '../../src-main/core/context.js';
import { EVENTS, EventLog } from '../../src-main/core/events.js';
import { configureEventForwarding } from '../../src-main/core/fleet/forwarding.js';
import { HttpClient } from '../../src-main/core/net/http.js';
import { httpOptionsFor } from '../../src-main/core/proxy/options.js';
import type { SystemProxySource } from '../../src-main/core/proxy/system.js';
import { createPassEngine } from '../../src-main/core/scheduler/create-pass-engine.js';
import { Trace } from '../../src-main/base/trace.js';
import { adminTokenStatus, removeAdminToken, storeAdminToken } from '../../src-main/core/secrets/admin-token.js';
import type { SecretStore } from '../../src-main/core/secrets/index.js';
import { DashboardService } from '../../src-main/ipc/service.js';
import type { Platform, PlatformSettings, SinkEvent } from '../../src-main/platform/types.js';
import { tempDir } from '../support/agent.js';
import { testContext } from '../support/context.js';

class MemoryStore implements SecretStore {
  readonly values = new Map<string, string>();
  constructor(readonly description: string) {}
  async get(name: string) { return this.values.get(name); }
  async set(name: string, value: string) { this.values.set(name, value); }
  async delete(name: string) { return this.values.delete(name); }
}

interface Wired {
  name: string;
  context: AgentContext;
  loaded: LoadedConfig;
  seen: SinkEvent[];
  store: MemoryStore;
  asked: string[];
  platforms: number;
}

/** A context as a root builds one, with its own sink, secret store, proxy source and platform factory. */
function wired(name: string): Wired {
  const home = tempDir(`ctx-${name}`);
  const w = { name, seen: [] as SinkEvent[], store: new MemoryStore(`store ${name}`), asked: [] as string[], platforms: 0 } as Wired;
  const systemProxy: SystemProxySource = { description: `proxy source ${name}`, resolve: async (url) => (w.asked.push(url), `PROXY proxy-${name}.corp.example:3128`) };
  const events = new EventSinks((e) => w.seen.push(e), { DTA_PLATFORM_LOG: 'on' });
  const base = testContext();
  w.context = testContext({
    secrets: w.store, systemProxy, events,
    platform: (settings: PlatformSettings): Platform => (w.platforms++, base.platform(settings)),
  });
  w.loaded = loadConfig({ env: { HOME: home, DTA_MANAGED_CONFIG_DIR: path.join(home, 'managed') }, cli: { orgUrl: `https://org-${name}.example.invalid`, stateDir: path.join(home, 'state') } });
  return w;
}

test('events recorded through one context reach its sinks only, the platform log and the remote forwarder alike', async () => {
  const a = wired('a');
  const b = wired('b');
  // Each context forwards to its own collector (a real TCP syslog listener each).
  const collectors = await Promise.all([a, b].map(() => collector()));
  after(() => collectors.forEach((c) => c.server.close()));
  const fa = configureEventForwarding(a.context.events, { ...a.loaded.config, syslogRemote: `tcp://127.0.0.1:${collectors[0]!.port}` })!;
  const fb = configureEventForwarding(b.context.events, { ...b.loaded.config, syslogRemote: `tcp://127.0.0.1:${collectors[1]!.port}` })!;
  assert.notEqual(fa, fb, 'one forwarder per context');

  await storeAdminToken(a.loaded, a.context, 'token-a-0123456789', 'test-a');
  await removeAdminToken(b.loaded, b.context, 'test-b'); // none stored: nothing recorded
  await storeAdminToken(b.loaded, b.context, 'token-b-0123456789', 'test-b');
  await Promise.all([fa.flush(), fb.flush()]);

  assert.deepEqual(a.seen.map((e) => [e.id, e.task]), [[EVENTS.ADMIN_TOKEN_STORED.id, 'test-a']], 'a\'s platform log has a\'s event only');
  assert.deepEqual(b.seen.map((e) => [e.id, e.task]), [[EVENTS.ADMIN_TOKEN_STORED.id, 'test-b']], 'b\'s platform log has b\'s event only');
  await until(() => collectors.every((c) => c.text().includes('eventId="1240"')));
  const [ta, tb] = collectors.map((c) => c.text());
  assert.match(ta!, /task="test-a".*org-a\.example\.invalid/);
  assert.doesNotMatch(ta!, /test-b|org-b/, 'a\'s collector got nothing of b\'s');
  assert.match(tb!, /task="test-b".*org-b\.example\.invalid/);
  assert.doesNotMatch(tb!, /test-a|org-a/, 'b\'s collector got nothing of a\'s');

  // Reconfiguring one context's forwarding (no remote any more) leaves the other's in place.
  assert.equal(configureEventForwarding(a.context.events, a.loaded.config), undefined);
  assert.equal(a.context.events.list().length, 1, 'a: the platform log only');
  assert.equal(b.context.events.list().length, 2, 'b: the platform log and its forwarder');
});

test('two passes at once, one per context: each pass\'s events go to its own context\'s sinks, its platform and proxy answer from its own', async () => {
  const a = wired('a');
  const b = wired('b');
  const pass = (w: Wired) => createPassEngine({ loadConfig: () => w.loaded, context: w.context, stateDir: w.loaded.config.stateDir, side: 'user', trace: () => new Trace(undefined), respectRenewalMoment: false })
    .engine.attempt('manual');
  // The orgs do not resolve (.invalid): each pass ends "retry later", recording its events on the way.
  const [ra, rb] = await Promise.all([pass(a), pass(b)]);
  assert.ok(ra.ran && rb.ran, 'both passes ran');
  for (const w of [a, b]) {
    const logged = new EventLog(w.loaded.config.stateDir, undefined, { sinks: [] }).read().map((e) => e.id);
    assert.ok(logged.includes(EVENTS.RETRY_LATER.id) && logged.includes(EVENTS.STATE_CHANGED.id), `${w.name}: ${logged.join(', ')}`);
    assert.deepEqual(w.seen.map((e) => e.id), logged, `${w.name}'s sink got exactly ${w.name}'s events`);
    assert.equal(w.platforms, 1, `${w.name}'s pass built its platform with ${w.name}'s factory`);
    assert.deepEqual([...new Set(w.asked)], [`https://org-${w.name}.example.invalid/`], `${w.name}'s pass asked ${w.name}'s proxy source about its own org only`);
  }
});

test('each context\'s secret lookups go to its own store; the dashboard shows where its token is', async () => {
  const a = wired('a');
  const b = wired('b');
  await storeAdminToken(a.loaded, a.context, 'token-a-0123456789', 'test-a');
  assert.equal(a.store.values.size, 1);
  assert.equal(b.store.values.size, 0, 'b\'s store was not written');
  assert.deepEqual(await adminTokenStatus(a.loaded, a.context), { org: 'org-a.example.invalid', stored: true, store: 'store a' });
  assert.deepEqual(await adminTokenStatus(a.loaded, b.context), { org: 'org-a.example.invalid', stored: false, store: 'store b' }, 'b asks its own store');
  const dashboard = (w: Wired) => new DashboardService({ loadConfig: () => w.loaded, context: w.context, emit: () => undefined, saveExport: async () => null });
  assert.deepEqual(await dashboard(a).adminToken(), { org: 'org-a.example.invalid', stored: true, store: 'store a' });
  assert.deepEqual(await dashboard(b).adminToken(), { org: 'org-b.example.invalid', stored: false, store: 'store b' });
});

test('each context\'s system-proxy source routes only its own requests', async () => {
  const a = wired('a');
  const b = wired('b');
  const route = async (w: Wired, url: string) => {
    const http = new HttpClient(httpOptionsFor(w.loaded.config, w.context, { env: {} }));
    try {
      return await http.resolver.decide(url);
    } finally {
      await http.close();
    }
  };
  const [da, db] = await Promise.all([route(a, 'https://org-a.example.invalid/api/v1/x'), route(b, 'https://org-b.example.invalid/api/v1/y')]);
  assert.match(da.rule, /proxy source a/);
  assert.match(db.rule, /proxy source b/);
  assert.deepEqual(da.routes.map((r) => (r.kind === 'proxy' ? r.proxy.host : 'DIRECT')), ['proxy-a.corp.example:3128']);
  assert.deepEqual(db.routes.map((r) => (r.kind === 'proxy' ? r.proxy.host : 'DIRECT')), ['proxy-b.corp.example:3128']);
  assert.deepEqual(a.asked, ['https://org-a.example.invalid/']);
  assert.deepEqual(b.asked, ['https://org-b.example.invalid/']);
});

test('each context\'s platform is built by its own factory (the dashboard\'s status)', async () => {
  const a = wired('a');
  const b = wired('b');
  const svc = new DashboardService({ loadConfig: () => a.loaded, context: a.context, emit: () => undefined, saveExport: async () => null });
  const view = await svc.status();
  assert.equal(view.state, 'NOT_ENROLLED', JSON.stringify(view));
  assert.ok(a.platforms >= 1, 'a\'s factory built the platform');
  assert.equal(b.platforms, 0, 'b\'s factory was not asked');
});

/** A TCP syslog collector: everything it received, as text. */
async function collector(): Promise<{ server: net.Server; port: number; text: () => string }> {
  const chunks: Buffer[] = [];
  const server = net.createServer((socket) => socket.on('data', (d) => chunks.push(d)));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as net.AddressInfo).port, text: () => Buffer.concat(chunks).toString('utf8') };
}

async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 20));
  }
}
