/**
 * Bench section: how fast the command line starts and how small the idle daemon stays, each as a ratio with its
 * goal beside it, measured in the same run.
 * - Cold start to the first line of output for `help`, `--version` and `status`, against `node -e 0` (goal ≤ 2×),
 *   for the shipped headless program (dist/headless, esbuild) and the source checkout (bin/ over dist/).
 * - The idle daemon after its first pass: RSS (goal ≤ 60 MB) and CPU over a window (goal ≤ 0.1 %); the window is
 *   DTA_BENCH_IDLE_SECONDS (default 60 s) so that 0.1 % is several clock ticks (/proc counts 10 ms ticks).
 * Asserts nothing (timings are not tests).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { startLabOrg } from '../../lab/org.js';
import { AGENT_BIN, makeProfile, REPO, runAgent, writeRootCa } from '../support/agent.js';
import { median, table } from './util.js';

const N = 15;
const HEADLESS = path.join(REPO, 'dist', 'headless', 'device-trust-agent.mjs');

/** Milliseconds from spawn to the first byte on stdout (or exit, for a program that prints nothing). */
function firstLine(args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'ignore'] });
    let t: number | undefined;
    child.stdout.once('data', () => (t ??= performance.now() - t0));
    child.on('error', reject);
    child.on('close', () => resolve(t ?? performance.now() - t0));
  });
}


async function coldStart(env: NodeJS.ProcessEnv): Promise<void> {
  const programs: [string, string][] = [['headless program (dist/headless)', HEADLESS], ['source checkout (bin/ over dist/)', AGENT_BIN]];
  const present = programs.filter(([, file]) => fs.existsSync(file));
  if (present.length < programs.length) console.log('dist/headless is missing (npm run build:headless): only the source checkout is measured.');
  const commands = [['help'], ['--version'], ['status']];
  const samples = new Map<string, number[]>();
  const add = (k: string, v: number) => samples.set(k, [...(samples.get(k) ?? []), v]);
  for (let i = 0; i < N; i++) {
    // Interleaved, so load on the machine falls on every row alike.
    add('node -e 0', await firstLine(['-e', '0'], env));
    for (const [name, file] of present) for (const c of commands) add(`${name} ${c.join(' ')}`, await firstLine([file, ...c], env));
  }
  const base = median(samples.get('node -e 0')!);
  const rows: (string | number)[][] = [['node -e 0', base, 1, '']];
  for (const [name] of present) for (const c of commands) {
    const m = median(samples.get(`${name} ${c.join(' ')}`)!);
    rows.push([`${name}: ${c.join(' ')}`, m, m / base, m / base <= 2 ? 'met' : 'NOT met']);
  }
  table(`Cold start to first line of output (ms; median of ${N}, interleaved; goal ≤ 2 × node -e 0)`, ['what', 'median', '× node -e 0', 'goal ≤ 2×'], rows);
  console.log('status reads the NSS database with certutil (a child process): that share is the store\'s, not start-up.');
}

/** utime + stime in clock ticks, and RSS in kB, from /proc. */
function procSample(pid: number): { ticks: number; rssKb: number } {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]);
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN);
  return { ticks, rssKb };
}

async function idleDaemon(): Promise<void> {
  if (!fs.existsSync('/proc/self/stat')) {
    console.log('skipped: the idle-daemon measurement reads /proc (Linux)');
    return;
  }
  const windowS = Number(process.env.DTA_BENCH_IDLE_SECONDS || 60);
  const lab = await startLabOrg({ allowLabSignIn: true });
  const rows: (string | number)[][] = [];
  try {
    for (const [name, file] of [['headless program', HEADLESS], ['source checkout', AGENT_BIN]] as const) {
      if (!fs.existsSync(file)) continue;
      const p = makeProfile({ orgUrl: lab.orgUrl, rootCaFile: writeRootCa(lab.rootCaPem), extraEnv: { DTA_LAB_SIGN_IN: 'true' } });
      const enrolled = await runAgent(['run'], p.env);
      if (enrolled.code !== 0) throw new Error(`enrollment before the idle window failed: ${enrolled.stderr}`);
      const child = spawn(process.execPath, [file, 'daemon', '--trigger', 'logon'], { env: { PATH: process.env.PATH, ...p.env }, stdio: ['ignore', 'pipe', 'pipe'] });
      try {
        // Idle means after the start-up work: the logon pass and the first posture run, a minute after start (the
        // window waits for its line, or 75 s when posture prints none), then a few seconds for the process to settle.
        await new Promise<void>((resolve, reject) => {
          let out = '';
          const timer = setTimeout(() => (/\n/.test(out) ? resolve() : reject(new Error(`the daemon printed no pass within 75 s: ${out}`))), 75_000);
          child.stdout.on('data', (d) => {
            out += d;
            if (/posture \(start\)/.test(out)) {
              clearTimeout(timer);
              resolve();
            }
          });
          child.on('exit', (code) => reject(new Error(`the daemon exited (${code}): ${out}`)));
        });
        await new Promise((r) => setTimeout(r, 3000));
        const a = procSample(child.pid!);
        let maxRss = a.rssKb;
        const t0 = performance.now();
        while (performance.now() - t0 < windowS * 1000) {
          await new Promise((r) => setTimeout(r, 2000));
          maxRss = Math.max(maxRss, procSample(child.pid!).rssKb);
        }
        const b = procSample(child.pid!);
        const seconds = (performance.now() - t0) / 1000;
        const cpuPct = ((b.ticks - a.ticks) / 100 / seconds) * 100;
        const mb = maxRss / 1024;
        rows.push([`${name}: RSS (max over the window)`, `${mb.toFixed(1)} MiB`, '≤ 60 MB', mb * 1.048576 <= 60 ? 'met' : 'NOT met']);
        rows.push([`${name}: CPU over ${seconds.toFixed(0)} s idle`, `${cpuPct.toFixed(3)} % (${b.ticks - a.ticks} ticks)`, '≤ 0.1 %', cpuPct <= 0.1 ? 'met' : 'NOT met']);
      } finally {
        child.kill('SIGTERM');
        await new Promise((r) => child.once('close', r));
      }
    }
  } finally {
    await lab.close();
  }
  table('The idle daemon (after its logon pass, lab org on loopback)', ['what', 'measured', 'goal', ''], rows);
}

export default async function startupBench(): Promise<void> {
  const p = makeProfile({ orgUrl: 'https://org.invalid', rootCaFile: '/dev/null' });
  await coldStart({ PATH: process.env.PATH, ...p.env });
  await idleDaemon();
}
