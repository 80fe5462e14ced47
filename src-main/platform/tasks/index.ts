import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { AgentError } from '../../base/errors.js';
import { runCommand, type CommandRunner } from '../../base/exec.js';
import { writeFileAtomic } from '../../base/fsutil.js';
import { declaredAgentCommand } from '../../base/self.js';
import { darwinTasks } from './darwin.js';
import { linuxTasks } from './linux.js';
import type { InstallPlan, PlannedCommand, RemovalPlan, TaskRegistrar } from './types.js';
import { win32Tasks } from './win32.js';

export type * from './types.js';

export function tasksFor(platform: NodeJS.Platform = process.platform): TaskRegistrar {
  switch (platform) {
    case 'linux':
      return linuxTasks;
    case 'win32':
      return win32Tasks;
    case 'darwin':
      return darwinTasks;
    default:
      throw new AgentError('local', 'PLATFORM_UNSUPPORTED', `Registering the agent's triggers is not implemented for ${platform}.`);
  }
}

/**
 * How registered tasks start this agent: the program this process is part of, as its entry point declared
 * it (the headless program: its own Node and bundled script); else this checkout's entry point under the
 * running Node (tests that call the CLI in-process).
 */
export function defaultAgentCommand(): string[] {
  const declared = declaredAgentCommand();
  if (declared) return declared;
  const bin = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..', 'bin', 'device-trust-agent.js');
  return [process.execPath, bin];
}

export interface StepReport {
  what: string;
  ok: boolean;
  detail: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls a query until it says "gone" (non-zero exit) or the deadline passes (a failure, or the optional note). */
async function waitUntilGone(c: PlannedCommand & { untilGone: NonNullable<PlannedCommand['untilGone']> }, run: CommandRunner): Promise<StepReport> {
  const line = [c.file, ...c.args].join(' ');
  const t0 = Date.now();
  for (;;) {
    let code: number;
    try {
      code = (await run(c)).code;
    } catch {
      code = -1; // the query could not run: nothing to wait for that we could see
    }
    if (code !== 0) return { what: c.what, ok: true, detail: `${line}: gone after ${((Date.now() - t0) / 1000).toFixed(1)} s` };
    if (Date.now() - t0 + c.untilGone.intervalMs > c.untilGone.deadlineMs) break;
    await sleep(c.untilGone.intervalMs);
  }
  const why = `still there after ${c.untilGone.deadlineMs / 1000} s (${line} keeps answering)`;
  if (c.optional) return { what: c.what, ok: true, detail: `${why}: skipped — ${c.optional}` };
  throw new AgentError('local', 'TASK_COMMAND_FAILED', `${c.what} failed: ${why}.`, 'Wait a minute and run the same command again; if it repeats, restart the computer first.');
}

async function runPlanned(c: PlannedCommand, run: CommandRunner): Promise<StepReport> {
  if (c.untilGone) return waitUntilGone({ ...c, untilGone: c.untilGone }, run);
  const line = [c.file, ...c.args].join(' ');
  try {
    const r = await run(c);
    if (r.code === 0) return { what: c.what, ok: true, detail: line };
    const why = (r.stderr || r.stdout).trim().split('\n')[0] ?? '';
    if (c.optional) return { what: c.what, ok: true, detail: `${line}: skipped — ${c.optional} (${why || `exit ${r.code}`})` };
    throw new AgentError('local', 'TASK_COMMAND_FAILED', `${c.what} failed: ${line} exited with ${r.code}${why ? `: ${why}` : ''}.`);
  } catch (e) {
    if (e instanceof AgentError) throw e;
    if (c.optional) return { what: c.what, ok: true, detail: `${line}: skipped — ${c.optional} (${(e as Error).message})` };
    throw new AgentError('local', 'TASK_COMMAND_FAILED', `${c.what} failed: ${line} could not run (${(e as Error).message}).`);
  }
}

/** Writes the files and runs the commands of an install plan; the temporary files go in any case. */
export async function applyInstall(plan: InstallPlan, run: CommandRunner = runCommand): Promise<StepReport[]> {
  const steps: StepReport[] = [];
  try {
    for (const f of plan.files) {
      fs.mkdirSync(path.dirname(f.path), { recursive: true });
      writeFileAtomic(f.path, f.content, f.mode);
      steps.push({ what: f.what, ok: true, detail: `wrote ${f.path}` });
    }
    for (const c of plan.commands) steps.push(await runPlanned(c, run));
  } finally {
    for (const f of plan.cleanup) fs.rmSync(f, { force: true });
  }
  return steps;
}

/** Stops and unregisters, removes the files, prunes directories left empty. */
export async function applyRemoval(plan: RemovalPlan, run: CommandRunner = runCommand): Promise<StepReport[]> {
  const steps: StepReport[] = [];
  for (const c of plan.commands) steps.push(await runPlanned(c, run));
  for (const f of plan.files) {
    if (!fs.existsSync(f)) continue;
    fs.rmSync(f, { force: true });
    steps.push({ what: `remove ${path.basename(f)}`, ok: true, detail: `removed ${f}` });
  }
  for (const c of plan.after) steps.push(await runPlanned(c, run));
  for (const d of plan.dirs) {
    try {
      fs.rmdirSync(d); // only when empty: never someone else's files
      steps.push({ what: `remove empty ${path.basename(d)}`, ok: true, detail: `removed ${d}` });
    } catch {
      /* not empty, or not there */
    }
  }
  return steps;
}
