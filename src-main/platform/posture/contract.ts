import type { CommandRunner } from '../../base/exec.js';

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

export interface TimedResult extends PostureResult {
  /** How long the check took (for `posture --debug` and the bench). */
  ms: number;
}

/** This OS's posture checks, as the core is handed them with the platform (`Platform.posture`). */
export interface PostureChecks {
  /** This machine, as the checks see it (tests override parts). */
  context(opts?: Partial<PostureOptions>, overrides?: Partial<PostureContext>): PostureContext;
  /** Every check; one that throws is UNKNOWN, never a PASS. */
  run(ctx: PostureContext): Promise<TimedResult[]>;
}
