import { spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import type { Clock } from './clock.js';
import { childEnv } from '../../base/exec.js';

/**
 * Notices that the network changed — an interface or a default route appeared or went, a VPN came up —
 * and says so once things have been quiet for the debounce period (certmonger waits 60 s after a routing
 * change). On Linux it listens to `ip -o monitor link address route` (event-driven: no CPU while nothing
 * happens) and compares a fingerprint of the default routes and addresses, so chatter that changes
 * neither is ignored; where `ip` is missing, or on other platforms, it polls the same fingerprint.
 */

export interface NetworkFacts {
  /** `/proc/net/route` text (Linux), or undefined elsewhere. */
  routeV4?: string;
  /** `/proc/net/ipv6_route` text (Linux), or undefined elsewhere. */
  routeV6?: string;
  interfaces: NodeJS.Dict<os.NetworkInterfaceInfo[]>;
}

/** Default routes and non-loopback addresses, in a stable order: what makes the org reachable or not. */
export function networkFingerprint(f: NetworkFacts): { fingerprint: string; summary: string[] } {
  const items: string[] = [];
  for (const line of (f.routeV4 ?? '').split('\n').slice(1)) {
    const [iface, dest, gw, , , , , mask] = line.trim().split(/\s+/);
    if (iface && dest === '00000000' && mask === '00000000') items.push(`default4 ${iface} via ${hexToIpv4(gw ?? '')}`);
  }
  for (const line of (f.routeV6 ?? '').split('\n')) {
    const cols = line.trim().split(/\s+/);
    if (cols.length < 10) continue;
    const [dest, plen, , , nextHop, , , , flags, iface] = cols;
    // RTF_REJECT (0x200) marks the kernel's "unreachable" placeholder routes on lo.
    if (dest === '0'.repeat(32) && plen === '00' && iface !== 'lo' && !(parseInt(flags ?? '0', 16) & 0x200)) items.push(`default6 ${iface} via ${nextHop}`);
  }
  for (const [name, addrs] of Object.entries(f.interfaces)) {
    for (const a of addrs ?? []) {
      if (a.internal || (a.family === 'IPv6' && a.address.toLowerCase().startsWith('fe80:'))) continue;
      items.push(`addr ${name} ${a.address}/${a.cidr?.split('/')[1] ?? ''}`);
    }
  }
  items.sort();
  return { fingerprint: crypto.createHash('sha256').update(items.join('\n')).digest('hex').slice(0, 16), summary: items };
}

function hexToIpv4(hex: string): string {
  if (!/^[0-9A-Fa-f]{8}$/.test(hex)) return hex;
  // /proc/net/route holds addresses in host byte order (little-endian on the platforms we run on).
  return [6, 4, 2, 0].map((i) => parseInt(hex.slice(i, i + 2), 16)).join('.');
}

export function readNetworkFacts(): NetworkFacts {
  const read = (p: string) => {
    try {
      return fs.readFileSync(p, 'utf8');
    } catch {
      return undefined;
    }
  };
  const routeV4 = read('/proc/net/route');
  const routeV6 = read('/proc/net/ipv6_route');
  return { ...(routeV4 !== undefined ? { routeV4 } : {}), ...(routeV6 !== undefined ? { routeV6 } : {}), interfaces: os.networkInterfaces() };
}

export interface NetworkWatcherOptions {
  clock: Clock;
  debounceMs: number;
  onChange: (summary: string[]) => void;
  log?: (line: string) => void;
  /** 'auto': `ip monitor` on Linux when available, else polling. */
  source?: 'auto' | 'ip-monitor' | 'poll';
  pollMs?: number;
  facts?: () => NetworkFacts;
  /** How `ip monitor` is started (tests may substitute an event source). */
  spawnMonitor?: () => ChildProcess;
}

export class NetworkWatcher {
  private last: string | undefined;
  private debounce: unknown;
  private check: unknown;
  private poll: unknown;
  private child: ChildProcess | undefined;
  private stopped = false;
  /** Which event source is in use, for the daemon's start-up line. */
  mode: 'ip-monitor' | 'poll' | 'stopped' = 'stopped';

  constructor(private readonly opts: NetworkWatcherOptions) {}

  start(): void {
    this.stopped = false;
    this.last = this.fingerprint().fingerprint;
    const source = this.opts.source ?? 'auto';
    if (source !== 'poll' && (source === 'ip-monitor' || process.platform === 'linux')) this.startMonitor();
    else this.startPolling();
  }

  stop(): void {
    this.stopped = true;
    this.mode = 'stopped';
    const { clock } = this.opts;
    for (const h of [this.debounce, this.check, this.poll]) if (h !== undefined) clock.clearTimer(h);
    this.debounce = this.check = this.poll = undefined;
    this.child?.kill();
    this.child = undefined;
  }

  /** Something may have changed: look at the fingerprint shortly (bursts of events become one look). */
  nudge(): void {
    if (this.stopped || this.check !== undefined) return;
    this.check = this.opts.clock.setTimer(() => {
      this.check = undefined;
      this.compare();
    }, 1000);
  }

  private fingerprint() {
    return networkFingerprint((this.opts.facts ?? readNetworkFacts)());
  }

  private compare(): void {
    const now = this.fingerprint();
    if (now.fingerprint === this.last) return;
    this.last = now.fingerprint;
    const { clock } = this.opts;
    if (this.debounce !== undefined) clock.clearTimer(this.debounce);
    this.debounce = clock.setTimer(() => {
      this.debounce = undefined;
      if (!this.stopped) this.opts.onChange(this.fingerprint().summary);
    }, this.opts.debounceMs);
  }

  private startMonitor(): void {
    let child: ChildProcess;
    try {
      child = this.opts.spawnMonitor?.() ?? spawn('ip', ['-o', 'monitor', 'link', 'address', 'route'], { stdio: ['ignore', 'pipe', 'ignore'], env: childEnv() });
    } catch {
      return this.startPolling();
    }
    this.child = child;
    this.mode = 'ip-monitor';
    child.stdout?.on('data', () => this.nudge());
    const fallBack = (why: string) => {
      if (this.child !== child) return;
      this.child = undefined;
      if (this.stopped) return;
      this.opts.log?.(`Network monitor unavailable (${why}); polling every ${(this.opts.pollMs ?? 30_000) / 1000} s instead.`);
      this.startPolling();
    };
    child.on('error', (e) => fallBack(e.message));
    child.on('exit', (code) => fallBack(`ip monitor exited with ${code}`));
  }

  private startPolling(): void {
    this.mode = 'poll';
    const every = this.opts.pollMs ?? 30_000;
    const loop = () => {
      this.poll = this.opts.clock.setTimer(() => {
        if (this.stopped) return;
        this.compare();
        loop();
      }, every);
    };
    loop();
  }
}
