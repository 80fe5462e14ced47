import type { Command } from '../../base/exec.js';

/**
 * Registering the agent's triggers with the operating system, behind one interface. Each platform turns
 * the same request into files to write and commands to run — data, so unit tests can check them without
 * the platform — and `apply.ts` carries them out.
 *
 * What every platform registers (docs/ADMINS.md "Scheduling" has the table):
 * - user task: runs at logon as the logged-on user — the long-running daemon (daily passes, the renewal
 *   moment, retries, network changes) — plus an hourly check that runs a due pass when no daemon runs;
 * - device task: the machine-wide part (browser policy) as a system account, at boot and hourly.
 */
export type TaskScope = 'user' | 'device';

export interface TaskRequest {
  scope: TaskScope;
  /** The agent's command line up to the sub-command: [node, …/bin/device-trust-agent.js] or [the app]. */
  agent: string[];
  /** Arguments every registered invocation gets (e.g. --state-dir, --config given at install time). */
  extraArgs: string[];
  env: NodeJS.ProcessEnv;
  /** Linux: systemd user units, or XDG autostart where there is no systemd. */
  linuxMode?: 'systemd' | 'autostart';
  /** macOS: the user whose GUI domain gets the LaunchAgent. */
  uid?: number;
  /** Windows: where the task XML is written before `schtasks /Create /XML` imports it. */
  tmpDir?: string;
  /** Windows: the daily trigger's first run (defaults to now: "every 24 hours counted from install"). */
  now?: Date;
}

export interface PlannedFile {
  path: string;
  content: string | Buffer;
  mode: number;
  what: string;
}

export interface PlannedCommand extends Command {
  what: string;
  /** When set, a failure (or a missing tool) is reported with this explanation but does not fail the step. */
  optional?: string;
  /**
   * A wait, not an action: the command is a query that exits 0 while the thing still exists (`launchctl print
   * system/<label>`); it is run every `intervalMs` until it exits non-zero, and the step fails when `deadlineMs`
   * passes first.
   */
  untilGone?: { deadlineMs: number; intervalMs: number };
}

export interface InstallPlan {
  platform: NodeJS.Platform;
  scope: TaskScope;
  mode: string;
  files: PlannedFile[];
  commands: PlannedCommand[];
  /** Files only needed while the commands run (an imported task XML): removed afterwards. */
  cleanup: string[];
  notes: string[];
}

export interface RemovalPlan {
  platform: NodeJS.Platform;
  scope: TaskScope;
  /** Run before the files go (stop, disable, unload, delete the task). */
  commands: PlannedCommand[];
  files: string[];
  /** Directories removed when they are left empty. */
  dirs: string[];
  /** Run after the files are gone (reload the service manager). */
  after: PlannedCommand[];
  notes: string[];
}

export interface TaskRegistrar {
  readonly platform: NodeJS.Platform;
  /** Where the device task keeps its state (the registered commands pass it with --state-dir). */
  readonly deviceStateDir: string;
  install(req: TaskRequest): InstallPlan;
  /** Removes what install registers, in every mode (uninstall must leave nothing behind). */
  uninstall(req: TaskRequest): RemovalPlan;
}

/** `--state-dir DIR` for the device task, unless the install command line already chose one. */
export function deviceStateArgs(req: TaskRequest, dir: string): string[] {
  return req.extraArgs.some((a) => /^statedir=/i.test(a)) ? [] : ['--state-dir', dir];
}
