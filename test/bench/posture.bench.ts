/**
 * Bench section: what one posture pass costs on this Linux machine (it runs every 15 minutes and on every
 * network change). Each check alone (median of runs; they run in parallel in a pass), then the whole pass.
 * Goal: the whole pass ≤ 200 ms. Prints the ratio to the goal; asserts nothing.
 */
import os from 'node:os';
import { machineContext, POSTURE_CHECKS, runPostureChecks } from '../../src-main/platform/posture/index.js';
import { median, table, time } from './util.js';

const GOAL_MS = 200;

export default async function postureBench(): Promise<void> {
  const ctx = machineContext();
  await runPostureChecks(ctx); // warm: the first spawn of each tool pays for loading it
  const rows: (string | number)[][] = [];
  for (const c of POSTURE_CHECKS) {
    let status = '';
    const ms = await time(5, async () => (status = (await c.run(ctx)).status));
    rows.push([`${c.id} (${status})`, median(ms), Math.max(...ms)]);
  }
  const all = await time(5, () => runPostureChecks(ctx));
  rows.push(['all checks together (one pass)', median(all), Math.max(...all)]);
  table('posture checks on this machine (ms)', ['check', 'median', 'max'], rows);
  // Each tool costs ~10–25 ms of CPU; on a loaded machine the wall time is mostly waiting for a core.
  console.log(`load average ${os.loadavg()[0]!.toFixed(1)} on ${os.cpus().length} CPUs`);
  console.log(`one pass: ${median(all).toFixed(1)} ms, goal ≤ ${GOAL_MS} ms → ratio ${(median(all) / GOAL_MS).toFixed(2)} (${median(all) <= GOAL_MS ? 'met' : 'NOT met'})`);
}
