import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import type { ChildProcess } from 'node:child_process';
import { PassThrough } from 'node:stream';
import { test } from 'node:test';
import { NetworkWatcher, networkFingerprint, type NetworkFacts } from '../../src-main/core/scheduler/network.js';
import { FakeClock } from '../support/fake-clock.js';

// Captured on a Debian 12 container (eth0 with an IPv4 default route and an IPv6 default route).
const ROUTE_V4 = `Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0
eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
`;
const ROUTE_V6 = `fd000000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0
00000000000000000000000000000000 00 00000000000000000000000000000000 00 fd000000000000000000000000000001 00000400 00000003 00000000 00000003     eth0
00000000000000000000000000000001 80 00000000000000000000000000000000 00 00000000000000000000000000000000 00000000 00000004 00000000 80200001       lo
00000000000000000000000000000000 00 00000000000000000000000000000000 00 00000000000000000000000000000000 ffffffff 00000001 00000000 00200200       lo
`;
const IFACES: NetworkFacts['interfaces'] = {
  lo: [{ address: '127.0.0.1', netmask: '255.0.0.0', family: 'IPv4', mac: '00:00:00:00:00:00', internal: true, cidr: '127.0.0.1/8' }],
  eth0: [
    { address: '192.0.2.10', netmask: '255.255.255.0', family: 'IPv4', mac: '02:42:c0:00:02:0a', internal: false, cidr: '192.0.2.10/24' },
    { address: 'fe80::1', netmask: 'ffff:ffff:ffff:ffff::', family: 'IPv6', mac: '02:42:c0:00:02:0a', internal: false, cidr: 'fe80::1/64', scopeid: 2 },
  ],
};

test('the network fingerprint: default routes (IPv4 and IPv6) and non-loopback addresses, nothing else', () => {
  const f = networkFingerprint({ routeV4: ROUTE_V4, routeV6: ROUTE_V6, interfaces: IFACES });
  assert.deepEqual(f.summary, ['addr eth0 192.0.2.10/24', 'default4 eth0 via 192.0.2.1', 'default6 eth0 via fd000000000000000000000000000001']);
  // The kernel's "unreachable" placeholder on lo and link-local addresses do not count.
  const vpn = networkFingerprint({ routeV4: ROUTE_V4, routeV6: ROUTE_V6, interfaces: { ...IFACES, tun0: [{ address: '10.8.0.2', netmask: '255.255.255.0', family: 'IPv4', mac: '', internal: false, cidr: '10.8.0.2/24' }] } });
  assert.notEqual(vpn.fingerprint, f.fingerprint, 'a VPN interface coming up changes it');
  const noRoute = networkFingerprint({ routeV4: ROUTE_V4.split('\n').filter((l) => !l.includes('\t00000000\t010200C0')).join('\n'), routeV6: ROUTE_V6, interfaces: IFACES });
  assert.notEqual(noRoute.fingerprint, f.fingerprint, 'losing the default route changes it');
  assert.equal(networkFingerprint({ routeV4: ROUTE_V4, routeV6: ROUTE_V6, interfaces: IFACES }).fingerprint, f.fingerprint);
});

/** An `ip monitor` stand-in whose output the test writes. */
function fakeMonitor(): ChildProcess & { stdout: PassThrough } {
  const c = new EventEmitter() as ChildProcess & { stdout: PassThrough };
  (c as { stdout: PassThrough }).stdout = new PassThrough();
  c.kill = () => true;
  return c;
}

test('a change is reported once, after the routes have been quiet for the debounce period; chatter is ignored', async () => {
  const clock = new FakeClock(Date.parse('2026-01-01T00:00:00Z'));
  let facts: NetworkFacts = { routeV4: ROUTE_V4, routeV6: '', interfaces: IFACES };
  const monitor = fakeMonitor();
  const changes: string[][] = [];
  const w = new NetworkWatcher({ clock, debounceMs: 60_000, source: 'ip-monitor', facts: () => facts, spawnMonitor: () => monitor, onChange: (s) => changes.push(s) });
  w.start();
  assert.equal(w.mode, 'ip-monitor');
  const line = async (s: string) => {
    monitor.stdout.write(s + '\n');
    await new Promise((r) => setImmediate(r));
  };
  await line('3: eth0    inet6 fe80::1/64 scope link'); // chatter: the fingerprint does not change
  await clock.advance(120_000);
  assert.equal(changes.length, 0);

  facts = { ...facts, interfaces: { ...IFACES, tun0: [{ address: '10.8.0.2', netmask: '255.255.255.0', family: 'IPv4', mac: '', internal: false, cidr: '10.8.0.2/24' }] } };
  await line('5: tun0    inet 10.8.0.2/24 scope global tun0');
  await clock.advance(30_000);
  facts = { ...facts, routeV4: ROUTE_V4 + 'tun0\t00000000\t0100080A\t0003\t0\t0\t0\t00000000\t0\t0\t0\n' };
  await line('default via 10.8.0.1 dev tun0');
  await clock.advance(59_000);
  assert.equal(changes.length, 0, 'not before 60 s of quiet');
  await clock.advance(2_000);
  assert.equal(changes.length, 1, 'one report for the burst');
  assert.ok(changes[0]!.includes('default4 tun0 via 10.8.0.1'));
  w.stop();
});

test('without ip monitor the watcher polls the same fingerprint', async () => {
  const clock = new FakeClock(0);
  let facts: NetworkFacts = { routeV4: ROUTE_V4, interfaces: {} };
  const monitor = fakeMonitor();
  const changes: string[][] = [];
  const logs: string[] = [];
  const w = new NetworkWatcher({ clock, debounceMs: 60_000, source: 'ip-monitor', pollMs: 30_000, facts: () => facts, spawnMonitor: () => monitor, onChange: (s) => changes.push(s), log: (l) => logs.push(l) });
  w.start();
  monitor.emit('error', new Error('spawn ip ENOENT'));
  assert.equal(w.mode, 'poll');
  assert.match(logs[0]!, /spawn ip ENOENT.*polling every 30 s/);
  facts = { routeV4: ROUTE_V4.split('\n').slice(0, 1).join('\n'), interfaces: {} };
  await clock.advance(30_000 + 60_000);
  assert.equal(changes.length, 1);
  assert.deepEqual(changes[0], []);
  w.stop();
});
