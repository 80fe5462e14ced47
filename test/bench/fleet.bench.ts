/**
 * Bench section: the fleet and the idle daemon.
 *
 * 1. 10,000 simulated agents with certificates issued over one week, run through a year with the real
 *    planning rules (src-main/core/scheduler/plan.ts and policy.ts: the renewal moment, daily passes,
 *    backoff with jitter). Prints the peak-to-mean ratio of renewal requests per hour reaching the org
 *    (goal ≤ 1.5) and the share renewed before expiry when the org is down 2 days in 10 (goal 100 %), next to
 *    the old rule (renew at the first daily pass in the window) and to the statistical floor (the same number
 *    of requests at independent uniformly random moments over the same season).
 * 2. Fleet pacing: 10,000 agents sharing one org for a year — capped at a capacity that answers 429 with
 *    Retry-After above it (goal: peak accepted ≤ the cap, 100 % renewed before expiry), and down for 48 hours
 *    mid-season (goal: the recovery hour's load ≤ 3 × the mean), beside the independent-agent floor.
 * 3. The real `daemon` process, idle after its logon pass: CPU over DTA_BENCH_IDLE_SECONDS (default 10 s)
 *    after DTA_BENCH_IDLE_SETTLE (default 30 s), and resident memory.
 *
 * Reports, asserts nothing (timings are not tests).
 */
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { startLabOrg } from '../../lab/org.js';
import { applyPass, effectiveReport, nextDeadline, renewalOf, type PassReport, type Snapshot } from '../../src-main/core/scheduler/plan.js';
import { DEFAULT_POLICY, type SchedulePolicy } from '../../src-main/core/scheduler/policy.js';
import { emptyRecord, type Trigger } from '../../src-main/core/scheduler/record.js';
import { AGENT_BIN, makeProfile, runAgent, writeRootCa } from '../support/agent.js';
import { seededRandom } from '../support/random.js';
import { table } from './util.js';

const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;
const N = Number(process.env.DTA_BENCH_FLEET ?? 10_000);
const T0 = Date.parse('2026-01-05T00:00:00Z'); // a Monday
const VALIDITY = 365 * DAY;
const WINDOW = 30 * DAY;

type Issuance = 'uniform' | 'logon-clustered';
type Rule = 'chosen moment (this agent)' | 'window start (old rule)';

/** When each agent enrolled: uniformly over the week, or at logon on workdays (most around 08:45). */
function issuanceTimes(kind: Issuance, rnd: () => number): number[] {
  const out: number[] = [];
  for (let i = 0; i < N; i++) {
    if (kind === 'uniform') out.push(T0 + rnd() * 7 * DAY);
    else {
      const day = Math.floor(rnd() * 5);
      // Box–Muller: logons around 08:45 with a 30-minute spread.
      const z = Math.sqrt(-2 * Math.log(1 - rnd())) * Math.cos(2 * Math.PI * rnd());
      out.push(T0 + day * DAY + 8.75 * HOUR + z * 30 * MIN);
    }
  }
  return out;
}

/** The org is down two consecutive days in every ten (at a random offset in each block), or never. */
function outageSchedule(on: boolean, rnd: () => number): (t: number) => boolean {
  if (!on) return () => false;
  const blocks = new Map<number, number>();
  return (t) => {
    const d = Math.floor((t - T0) / DAY);
    const b = Math.floor(d / 10);
    if (!blocks.has(b)) blocks.set(b, Math.floor(rnd() * 9));
    const k = blocks.get(b)!;
    return d % 10 === k || d % 10 === k + 1;
  };
}

interface FleetResult {
  requests: number[];
  renewedBeforeExpiry: number;
  attemptsWhileDown: number;
  maxAttempts: number;
  delays: number[];
}

/**
 * One agent from enrollment to its renewal, with the scheduler's own rules. Daily passes before the renewal
 * moment only ever answer "nothing to do" (with the org up or down: the certificate is valid and not due),
 * so the simulation starts at the last daily pass before the moment and runs every pass from there.
 * The old rule (renew at the first daily pass inside the window) is the same with the moment moved there.
 */
function simulateAgent(policy: SchedulePolicy, issuedAt: number, rule: Rule, down: (t: number) => boolean, rnd: () => number, out: FleetResult): void {
  // A certificate fingerprint from the seeded generator, so every run of the bench draws the same fleet.
  const sha256 = Array.from({ length: 4 }, () => Math.floor(rnd() * 0x10000).toString(16).padStart(4, '0')).join('').padEnd(64, '0');
  const cert = { sha256, notAfter: issuedAt + VALIDITY, windowStart: issuedAt + VALIDITY - WINDOW };
  const old = rule === 'window start (old rule)';
  const pol = old ? { ...policy, renewalSpread: 0 } : policy;
  const planCert = old ? { ...cert, windowStart: issuedAt + Math.ceil((cert.windowStart - issuedAt) / DAY) * DAY } : cert;
  let snap: Snapshot = { record: emptyRecord(), cert: planCert, configured: true, configFingerprint: 'c' };
  snap = { ...snap, record: applyPass(pol, snap, 'install', { ok: true, outcome: 'enrolled', message: '' }, issuedAt, rnd) };
  const moment = Date.parse(renewalOf(pol, snap)!.renewAt);
  const lastDaily = issuedAt + Math.floor((moment - 1 - issuedAt) / DAY) * DAY;
  snap.record.lastPass = { ...snap.record.lastPass!, at: new Date(lastDaily).toISOString(), trigger: 'daily', outcome: 'nothing-to-do' };
  let attempts = 0;
  for (let guard = 0; guard < 1000; guard++) {
    const d = nextDeadline(pol, snap, Date.parse(snap.record.lastPass!.at))!;
    const at = d.at;
    let report: PassReport;
    if (at < moment) report = { ok: true, outcome: 'nothing-to-do', message: '' };
    else if (down(at)) {
      attempts++;
      out.attemptsWhileDown++;
      // As the agent: with a valid certificate an unreachable org gives "nothing to do"; without, a failure.
      report = at < cert.notAfter ? { ok: true, outcome: 'nothing-to-do', message: 'org unreachable' } : { ok: false, outcome: 'failed', failure: 'retry-later', code: 'UNREACHABLE', message: '' };
    } else {
      attempts++;
      out.requests.push(at);
      if (at < cert.notAfter) out.renewedBeforeExpiry++;
      out.delays.push(at - moment);
      out.maxAttempts = Math.max(out.maxAttempts, attempts);
      return;
    }
    report = effectiveReport(pol, report, snap, at);
    snap = { ...snap, record: applyPass(pol, snap, d.reason as Trigger, report, at, rnd) };
  }
  throw new Error('agent never renewed');
}

/** Requests per bin over the season (first to last request): peak, mean and 99th-percentile bin. */
function binned(requests: number[], width = HOUR): { peak: number; mean: number; p99: number; hours: number } {
  const first = Math.min(...requests);
  const last = Math.max(...requests);
  const n = Math.floor((last - first) / width) + 1;
  const bins = new Array<number>(n).fill(0);
  for (const r of requests) bins[Math.floor((r - first) / width)]!++;
  return { peak: Math.max(...bins), mean: requests.length / n, p99: percentile(bins, 0.99), hours: (n * width) / HOUR };
}

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))] ?? NaN;
}

function fleet(): void {
  const rows: (string | number)[][] = [];
  const t = performance.now();
  for (const issuance of ['uniform', 'logon-clustered'] as Issuance[]) {
    for (const rule of ['chosen moment (this agent)', 'window start (old rule)'] as Rule[]) {
      for (const outage of [false, true]) {
        const rnd = seededRandom(42);
        const times = issuanceTimes(issuance, rnd);
        const down = outageSchedule(outage, seededRandom(7));
        const r: FleetResult = { requests: [], renewedBeforeExpiry: 0, attemptsWhileDown: 0, maxAttempts: 0, delays: [] };
        for (const at of times) simulateAgent(DEFAULT_POLICY, at, rule, down, rnd, r);
        const h = binned(r.requests);
        const d = binned(r.requests, DAY);
        rows.push([issuance, rule, outage ? '2 days in 10' : 'never', h.peak, h.mean, h.peak / h.mean, h.p99 / h.mean, d.peak / d.mean, h.hours / 24,
          `${((100 * r.renewedBeforeExpiry) / N).toFixed(2)} %`, r.maxAttempts, percentile(r.delays, 0.99) / HOUR]);
      }
    }
  }
  table(`Fleet: ${N} agents issued over one week, renewal requests per hour over the renewal season (one-year certificates, 30-day window)`,
    ['issuance', 'renewal rule', 'org down', 'peak/h', 'mean/h', 'peak:mean', 'p99 hour:mean', 'peak:mean per day', 'season (days)', 'renewed before expiry', 'max attempts', 'p99 delay (h)'], rows);

  // The floor: the same count at independent uniformly random moments over a season of the same length.
  const season = Math.round((rows[0]![8] as number) * 24);
  const floor: number[] = [];
  const rnd = seededRandom(3);
  for (let k = 0; k < 5; k++) {
    const pts = Array.from({ length: N }, () => T0 + rnd() * season * HOUR);
    const h = binned(pts);
    floor.push(h.peak / h.mean);
  }
  console.log(`\nStatistical floor: ${N} independent uniformly random requests over ${(season / 24).toFixed(0)} days give a peak:mean of ` +
    `${(floor.reduce((a, b) => a + b) / floor.length).toFixed(2)} per hour (mean of 5 draws) — what any uncoordinated fleet can reach at this size.`);
  console.log(`Goal peak:mean ≤ 1.5 per hour with the org up: ${rows.filter((r) => r[1] === 'chosen moment (this agent)' && r[2] === 'never').every((r) => (r[5] as number) <= 1.5) ? 'met' : 'NOT met (see the floor above)'}; ` +
    `renewed before expiry with the org down 2 days in 10: ${rows.filter((r) => r[2] === '2 days in 10').map((r) => r[9]).join(', ')} (goal 100 %). ` +
    `Simulated in ${((performance.now() - t) / 1000).toFixed(1)} s.`);
}

/** A binary min-heap of (time, agent) for the fleet simulations whose agents share one org. */
class EventQueue {
  private readonly t: number[] = [];
  private readonly a: number[] = [];
  get size(): number {
    return this.t.length;
  }
  push(at: number, agent: number): void {
    this.t.push(at);
    this.a.push(agent);
    let i = this.t.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (this.t[p]! <= this.t[i]!) break;
      this.swap(i, p);
      i = p;
    }
  }
  pop(): [number, number] {
    const top: [number, number] = [this.t[0]!, this.a[0]!];
    const lt = this.t.pop()!;
    const la = this.a.pop()!;
    if (this.t.length) {
      this.t[0] = lt;
      this.a[0] = la;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < this.t.length && this.t[l]! < this.t[m]!) m = l;
        if (r < this.t.length && this.t[r]! < this.t[m]!) m = r;
        if (m === i) break;
        this.swap(i, m);
        i = m;
      }
    }
    return top;
  }
  private swap(i: number, j: number): void {
    [this.t[i], this.t[j]] = [this.t[j]!, this.t[i]!];
    [this.a[i], this.a[j]] = [this.a[j]!, this.a[i]!];
  }
}

interface PacedResult {
  accepted: number[];
  /** Most renewals accepted in one clock hour (the org's own accounting, as its cap counts them). */
  peakClockHour: number;
  refused429: number;
  renewedBeforeExpiry: number;
  maxAttempts: number;
}

/**
 * 10,000 agents sharing one org, through a year, with the scheduler's own rules (applyPass, nextDeadline,
 * Retry-After honoured with jitter): the org either accepts at most `capPerHour` renewals in each clock hour and
 * answers 429 with Retry-After (the seconds to the next hour) above it, or is down for `outage`.
 */
function pacedFleet(opts: { capPerHour?: number; outage?: { from: number; to: number } }, seed: number): PacedResult {
  const rnd = seededRandom(seed);
  const times = issuanceTimes('logon-clustered', rnd);
  const policy = DEFAULT_POLICY;
  const snaps: Snapshot[] = [];
  const notAfter: number[] = [];
  const attempts = new Array<number>(N).fill(0);
  const q = new EventQueue();
  times.forEach((issuedAt, i) => {
    const sha256 = Array.from({ length: 4 }, () => Math.floor(rnd() * 0x10000).toString(16).padStart(4, '0')).join('').padEnd(64, '0');
    const cert = { sha256, notAfter: issuedAt + VALIDITY, windowStart: issuedAt + VALIDITY - WINDOW };
    let snap: Snapshot = { record: emptyRecord(), cert, configured: true, configFingerprint: 'c' };
    snap = { ...snap, record: applyPass(policy, snap, 'install', { ok: true, outcome: 'enrolled', message: '' }, issuedAt, rnd) };
    // Daily passes before the moment answer "nothing to do" without a request; the first request is at the moment.
    const moment = Date.parse(renewalOf(policy, snap)!.renewAt);
    snap.record.lastPass = { ...snap.record.lastPass!, at: new Date(moment - 1).toISOString(), trigger: 'daily', outcome: 'nothing-to-do' };
    snaps.push(snap);
    notAfter.push(cert.notAfter);
    q.push(moment, i);
  });
  const perHour = new Map<number, number>();
  const out: PacedResult = { accepted: [], peakClockHour: 0, refused429: 0, renewedBeforeExpiry: 0, maxAttempts: 0 };
  while (q.size) {
    const [at, i] = q.pop();
    const snap = snaps[i]!;
    attempts[i]!++;
    const hour = Math.floor(at / HOUR);
    let report: PassReport;
    if (opts.outage && at >= opts.outage.from && at < opts.outage.to) {
      // Unreachable: with a valid certificate the agent says "nothing to do", which counts as a failure to retry.
      report = effectiveReport(policy, { ok: true, outcome: 'nothing-to-do', message: 'org unreachable' }, snap, at);
    } else if (opts.capPerHour !== undefined && (perHour.get(hour) ?? 0) >= opts.capPerHour) {
      out.refused429++;
      report = { ok: false, outcome: 'failed', failure: 'retry-later', code: 'SERVER_UNAVAILABLE', message: '429', retryAfterMs: (hour + 1) * HOUR - at };
    } else {
      perHour.set(hour, (perHour.get(hour) ?? 0) + 1);
      out.peakClockHour = Math.max(out.peakClockHour, perHour.get(hour)!);
      out.accepted.push(at);
      if (at < notAfter[i]!) out.renewedBeforeExpiry++;
      out.maxAttempts = Math.max(out.maxAttempts, attempts[i]!);
      continue;
    }
    const record = applyPass(policy, snap, 'retry', report, at, rnd);
    snaps[i] = { ...snap, record };
    const next = nextDeadline(policy, snaps[i]!, at)!;
    q.push(Math.max(next.at, at + 1000), i);
  }
  return out;
}

export function pacing(): void {
  const t = performance.now();
  const base = pacedFleet({}, 11);
  const season = binned(base.accepted);
  // The independent-agent floor: the same count at independent uniformly random moments over the same season.
  const floorDraws: number[] = [];
  const frnd = seededRandom(5);
  const first = Math.min(...base.accepted);
  for (let k = 0; k < 5; k++) {
    const h = binned(Array.from({ length: N }, () => first + frnd() * season.hours * HOUR));
    floorDraws.push(h.peak / h.mean);
  }
  const floor = floorDraws.reduce((a, b) => a + b) / floorDraws.length;
  const cap = Math.ceil(season.mean * 1.2);
  const capped = pacedFleet({ capPerHour: cap }, 11);
  const cappedBins = binned(capped.accepted);
  // A 48-hour outage in the busiest part of the season.
  const sorted = [...base.accepted].sort((a, b) => a - b);
  const outageFrom = Math.floor(sorted[Math.floor(N * 0.4)]! / HOUR) * HOUR;
  const outage = { from: outageFrom, to: outageFrom + 48 * HOUR };
  const down = pacedFleet({ outage }, 11);
  const downBins = binned(down.accepted);
  const recovery = down.accepted.filter((x) => x >= outage.to && x < outage.to + HOUR).length;
  // The floor for that hour without coordination: every agent whose moment fell in the outage must try again within a
  // day of the org's return (one reachable day always sees an attempt), so at best the backlog is spread evenly over
  // 24 h, on top of the moments that fall in that hour anyway.
  const backlog = base.accepted.filter((x) => x >= outage.from && x < outage.to).length;
  const localRate = backlog / 48;
  const recoveryFloor = (localRate + backlog / 24) / downBins.mean;
  // The same outage with the org shedding load (429 + Retry-After) above 3 × the mean: the org sets the peak.
  const shedCap = Math.ceil(3 * season.mean);
  const shed = pacedFleet({ outage, capPerHour: shedCap }, 11);
  const shedRecovery = shed.accepted.filter((x) => x >= outage.to && x < outage.to + HOUR).length;
  const pct = (n: number) => `${((100 * n) / N).toFixed(2)} %`;
  table(`Fleet pacing: ${N} agents sharing one org for a year (logon-clustered issuance; Retry-After honoured with jitter)`,
    ['scenario', 'peak accepted/h', 'mean/h', 'peak:mean', 'independent-agent floor', 'recovery hour/mean', '429s', 'renewed before expiry', 'max attempts'], [
      ['org unlimited', season.peak, season.mean, season.peak / season.mean, floor, 'n/a', 0, pct(base.renewedBeforeExpiry), base.maxAttempts],
      [`org capped at ${cap}/h (429 + Retry-After above)`, capped.peakClockHour, cappedBins.mean, capped.peakClockHour / cappedBins.mean, floor, 'n/a', capped.refused429, pct(capped.renewedBeforeExpiry), capped.maxAttempts],
      ['org down 48 h mid-season', downBins.peak, downBins.mean, downBins.peak / downBins.mean, floor, recovery / downBins.mean, 0, pct(down.renewedBeforeExpiry), down.maxAttempts],
      [`org down 48 h, then sheds above ${shedCap}/h (3 × mean)`, shed.peakClockHour, binned(shed.accepted).mean, shed.peakClockHour / binned(shed.accepted).mean, floor, shedRecovery / downBins.mean, shed.refused429, pct(shed.renewedBeforeExpiry), shed.maxAttempts],
    ]);
  console.log(`Goals: capped — peak accepted ${capped.peakClockHour}/clock hour ≤ cap ${cap}: ${capped.peakClockHour <= cap ? 'met' : 'NOT met'}, renewed before expiry ${pct(capped.renewedBeforeExpiry)} (goal 100 %): ${capped.renewedBeforeExpiry === N ? 'met' : 'NOT met'}; `
    + `48-hour outage — recovery hour ${recovery} = ${(recovery / downBins.mean).toFixed(2)} × mean (goal ≤ 3): ${recovery <= 3 * downBins.mean ? 'met' : 'NOT met'}, renewed before expiry ${pct(down.renewedBeforeExpiry)}; `
    + `floor for that hour under the one-reachable-day rule: ${recoveryFloor.toFixed(2)} × mean (${backlog} moments fell in the outage, ${localRate.toFixed(1)}/h there); `
    + `with the org shedding above 3 × mean: recovery hour ${(shedRecovery / downBins.mean).toFixed(2)} × mean, ${pct(shed.renewedBeforeExpiry)} renewed before expiry: ${shedRecovery <= shedCap && shed.renewedBeforeExpiry === N ? 'met' : 'NOT met'}. `
    + `Simulated in ${((performance.now() - t) / 1000).toFixed(1)} s.`);
  console.log('(The recovery hour is bounded by the backlog: every agent whose moment fell in the outage retries once per backoff interval, '
    + 'which is kept under a day so that one reachable day always sees an attempt; the jitter spreads them over that interval, not beyond it. '
    + 'Below the floor only the org can go: its 429 + Retry-After, which the agents honour, sets the recovery peak.)');
}

function procStat(pid: number): { ticks: number; rssKb: number } {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(f[11]) + Number(f[12]); // utime + stime
  const rss = /VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return { ticks, rssKb: Number(rss?.[1] ?? NaN) };
}

function childrenOf(pid: number): number[] {
  try {
    return fs.readdirSync(`/proc/${pid}/task`).flatMap((t) => fs.readFileSync(`/proc/${pid}/task/${t}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number));
  } catch {
    return [];
  }
}

async function idleDaemon(): Promise<void> {
  if (process.platform !== 'linux') {
    console.log('\nIdle daemon: skipped (CPU and memory are read from /proc on Linux)');
    return;
  }
  const seconds = Number(process.env.DTA_BENCH_IDLE_SECONDS ?? 10);
  const settle = Number(process.env.DTA_BENCH_IDLE_SETTLE ?? 30);
  const lab = await startLabOrg({ allowLabSignIn: true });
  const rootCaFile = writeRootCa(lab.rootCaPem);
  const p = makeProfile({ orgUrl: lab.orgUrl, rootCaFile, extraEnv: { DTA_LAB_SIGN_IN: 'true' } });
  try {
    await runAgent(['run'], p.env);
    const child = spawn(process.execPath, [AGENT_BIN, 'daemon'], { env: { PATH: process.env.PATH ?? '', ...p.env }, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    for (let i = 0; i < 200 && !/logon/.test(out); i++) await new Promise((r) => setTimeout(r, 50));
    const hz = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    const started = procStat(child.pid!);
    // Node does some work of its own (garbage collection, compilation) in the first seconds after the
    // pass; the idle window starts after it, and that start-up work is printed separately.
    await new Promise((r) => setTimeout(r, settle * 1000));
    const a = procStat(child.pid!);
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, seconds * 1000));
    const b = procStat(child.pid!);
    const wall = (performance.now() - t0) / 1000;
    const helpers = childrenOf(child.pid!).map((pid) => ({ pid, cmd: fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim(), ...procStat(pid) }));
    table(`Idle daemon (network watch on): ${settle} s after its logon pass, then a ${seconds} s window`, ['process', 'CPU in the settle (s)', 'CPU idle (s)', 'CPU idle (%)', 'RSS (MiB)'], [
      ['device-trust-agent daemon', (a.ticks - started.ticks) / hz, (b.ticks - a.ticks) / hz, (100 * (b.ticks - a.ticks)) / hz / wall, b.rssKb / 1024],
      ...helpers.map((h) => [h.cmd, 'n/a', 'n/a', 'n/a', h.rssKb / 1024] as (string | number)[]),
    ]);
    console.log(`(CPU is counted in clock ticks of 1/${hz} s: 0.00 means less than one tick in ${seconds} s.)`);
    child.kill('SIGTERM');
    await new Promise((r) => child.on('exit', r));
  } finally {
    lab.close();
  }
}

export default async function run(): Promise<void> {
  fleet();
  pacing();
  await idleDaemon();
}
