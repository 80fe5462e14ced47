/** Helpers shared by the bench sections: timing, medians and the printed tables. */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? NaN;
}

export async function time(n: number, fn: () => Promise<unknown> | unknown): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await fn();
    out.push(performance.now() - t0);
  }
  return out;
}

export function table(title: string, head: string[], rows: (string | number)[][]): void {
  const cells = [head, ...rows.map((r) => r.map((c) => (typeof c === 'number' ? (Number.isNaN(c) ? 'n/a' : c.toFixed(2)) : c)))];
  const widths = head.map((_, i) => Math.max(...cells.map((r) => String(r[i]).length)));
  console.log(`\n${title}`);
  cells.forEach((r, k) => {
    console.log(r.map((c, i) => (i === 0 ? String(c).padEnd(widths[i]!) : String(c).padStart(widths[i]!))).join('  '));
    if (k === 0) console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  });
}

/**
 * Runs a program to its exit and returns its wall time and peak RSS (MiB), the latter from GNU time (Debian's
 * `time` package: the kernel's own accounting of the finished child), or NaN where that is not installed.
 */
export async function runMeasured(file: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<{ code: number; out: string; ms: number; peakMiB: number }> {
  const gnuTime = fs.existsSync('/usr/bin/time') ? '/usr/bin/time' : undefined;
  const memFile = path.join(os.tmpdir(), `dta-bench-time-${process.pid}-${Math.random().toString(36).slice(2)}`);
  const [cmd, argv] = gnuTime ? [gnuTime, ['-f', '%M', '-o', memFile, file, ...args]] : [file, args];
  const t0 = performance.now();
  return new Promise((resolve) => {
    execFile(cmd, argv, { cwd: opts.cwd, env: opts.env, timeout: opts.timeoutMs ?? 60_000 }, (err, stdout, stderr) => {
      const ms = performance.now() - t0;
      let peakMiB = NaN;
      try {
        peakMiB = Number(fs.readFileSync(memFile, 'utf8').trim().split('\n').pop()) / 1024;
        fs.rmSync(memFile);
      } catch {
        // no GNU time, or the child was killed before it wrote
      }
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, out: `${stdout}${stderr}`, ms, peakMiB });
    });
  });
}
