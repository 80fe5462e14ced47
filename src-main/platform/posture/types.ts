import type { CommandResult, CommandRunner, Command } from '../../base/exec.js';

/**
 * Device posture: one check per module in this directory, each keeping its platform command lines as data
 * (`…Commands`) and its output parsers as pure functions, so the Windows and macOS halves are unit-tested over
 * fixtures and the Linux half runs for real. docs/POSTURE.md has the table of checks, tools and privileges.
 */
export type PostureStatus = 'PASS' | 'FAIL' | 'UNKNOWN';

export type PostureCheckId = 'disk-encryption' | 'firewall' | 'screen-lock' | 'os-version' | 'secure-boot' | 'endpoint-protection' | `admin:${string}`;

/** Facts a policy can compare (OS version, days since the last update…): flat, small, no secrets. */
export type PostureFacts = Record<string, string | number | boolean>;

export interface PostureResult {
  check: PostureCheckId;
  title: string;
  status: PostureStatus;
  /** One sentence for the user: what was found. */
  summary: string;
  /** UNKNOWN only: why this check could not decide (e.g. "needs root: …"). */
  why?: string;
  /** UNKNOWN only: the device task (root/SYSTEM) can answer it; the user task takes its answer from the shared file. */
  needsPrivilege?: boolean;
  /** What was looked at and what it said, as short lines ("lsblk -s /dev/vda: disk vda, no crypt layer"). */
  evidence: string[];
  facts?: PostureFacts;
  /** FAIL and UNKNOWN: what the user (or the admin) does about it, in plain words. */
  remedy?: string;
}

/** An admin-defined check from managed configuration: a thing that must (not) exist. */
export interface AdminCheckSpec {
  /** Short name; the result's check ID is `admin:<name>`. */
  name: string;
  kind: 'file' | 'registry' | 'plist' | 'service';
  /** file: a path; registry: HKLM\…\Key; plist: the plist file; service: the service name / launchd label. */
  target: string;
  /** registry: the value name; plist: the key path (plutil -extract syntax). */
  key?: string | undefined;
  /** true (default): must exist (a service: must be running); false: must not. */
  mustExist?: boolean | undefined;
  title?: string | undefined;
  remedy?: string | undefined;
}

export interface PostureOptions {
  /** Screen lock must engage within this many seconds of idle (default 900). */
  screenLockMaxSeconds: number;
  /** The last OS/package update must be at most this old (default 30 days). */
  maxUpdateAgeDays: number;
  /** Linux/macOS: process names of the endpoint protection (any one running passes). */
  endpointProcesses: string[];
  /** Linux: systemd units; macOS: launchd labels; Windows: service names (any one running passes). */
  endpointServices: string[];
  adminChecks: AdminCheckSpec[];
}

export const DEFAULT_POSTURE_OPTIONS: PostureOptions = {
  screenLockMaxSeconds: 900,
  maxUpdateAgeDays: 30,
  // Common Linux/macOS agents, used when the admin lists none: CrowdStrike, Defender for Endpoint, SentinelOne, ClamAV, Sophos.
  endpointProcesses: ['falcon-sensor', 'falcond', 'wdavdaemon', 'SentinelAgent', 'sentineld', 'clamd', 'SophosScanD', 'sophos_threat_detector'],
  endpointServices: [],
  adminChecks: [],
};

/** What a check is handed: everything it touches on the machine goes through here, so tests can point it elsewhere. */
export interface PostureContext {
  platform: NodeJS.Platform;
  run: CommandRunner;
  readFile(file: string): string | undefined;
  readBytes(file: string): Buffer | undefined;
  exists(file: string): boolean;
  mtime(file: string): Date | undefined;
  /** Names of running processes (Linux: /proc/<pid>/comm). */
  processes(): string[];
  env: NodeJS.ProcessEnv;
  /** root / SYSTEM: the device task. */
  privileged: boolean;
  now: Date;
  options: PostureOptions;
}

export interface PostureCheck {
  id: Exclude<PostureCheckId, `admin:${string}`>;
  title: string;
  run(ctx: PostureContext): Promise<PostureResult>;
}

/** Runs a command; a missing tool is a result (code 127), not an exception. */
export async function tryRun(ctx: PostureContext, cmd: Command): Promise<CommandResult & { missing?: boolean }> {
  try {
    return await ctx.run(cmd);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return { code: 127, stdout: '', stderr: String(code ?? (e as Error).message), missing: code === 'ENOENT' };
  }
}

/** A command line as the user would type it, for evidence lines. */
export function shown(cmd: Command): string {
  if (cmd.file.endsWith('powershell.exe')) return 'powershell.exe (script)';
  return [cmd.file, ...cmd.args].join(' ');
}

export function result(base: Omit<PostureResult, 'evidence'> & { evidence?: string[] }): PostureResult {
  return { evidence: [], ...base };
}

/** The first non-empty line of a command's error output, bounded (evidence, never a decision). */
export function firstLine(s: string): string {
  return (s.split(/\r?\n/).map((l) => l.trim()).find(Boolean) ?? '').slice(0, 200);
}

/** PowerShell 5.1 ConvertTo-Json writes a one-element array as the element itself, and dates as "/Date(ms)/". */
export function asArray<T>(v: T | T[] | null | undefined): T[] {
  return v === null || v === undefined ? [] : Array.isArray(v) ? v : [v];
}

export function psDate(v: unknown): Date | undefined {
  if (typeof v !== 'string') return undefined;
  const ms = /\/Date\((-?\d+)(?:[+-]\d+)?\)\//.exec(v);
  const d = ms ? new Date(Number(ms[1])) : new Date(v);
  return Number.isNaN(d.getTime()) ? undefined : d;
}

export function parseJsonOr<T>(text: string): T | undefined {
  try {
    return JSON.parse(text.replace(/^\uFEFF/, '')) as T;
  } catch {
    return undefined;
  }
}
