import path from 'node:path';
import { z } from 'zod';
import { DEVICE_STATE_DIRS } from '../../base/paths.js';
import { DEFAULT_POSTURE_OPTIONS, type PostureOptions } from '../../platform/posture/contract.js';

const name = z.string().min(1).max(200);

/** The `posture` setting (managed configuration, config file; the Windows registry gives it as a JSON string). */
export const PostureSettingsSchema = z.strictObject({
  /** Re-check interval of the daemon (default 15 minutes). */
  intervalMinutes: z.number().min(1).max(24 * 60).optional(),
  /** A changed result is announced (event, report) after this many identical observations in a row (default 2). */
  confirmations: z.number().int().min(1).max(10).optional(),
  screenLockMaxSeconds: z.number().int().min(1).max(24 * 3600).optional(),
  maxUpdateAgeDays: z.number().int().min(1).max(3650).optional(),
  endpointProcesses: z.array(name).max(50).optional(),
  endpointServices: z.array(name).max(50).optional(),
  adminChecks: z.array(z.strictObject({
    name: z.string().regex(/^[\w.-]{1,64}$/, 'a short name: letters, digits, . _ -'),
    kind: z.enum(['file', 'registry', 'plist', 'service']),
    target: z.string().min(1).max(1000),
    key: z.string().min(1).max(500).optional(),
    mustExist: z.boolean().optional(),
    title: z.string().min(1).max(200).optional(),
    remedy: z.string().min(1).max(1000).optional(),
  })).max(50).optional(),
  /** The file the device side writes and the user side reads (default: posture.json in the device side's state directory). */
  deviceFile: z.string().min(1).optional(),
  /** How old the device side's answers may be before the user side stops using them (default 180 minutes). */
  deviceMaxAgeMinutes: z.number().min(1).max(7 * 24 * 60).optional(),
  /** Send the signed posture report to the org (default true). */
  report: z.boolean().optional(),
});
export type PostureSettings = z.infer<typeof PostureSettingsSchema>;

export interface ResolvedPostureSettings {
  intervalMs: number;
  confirmations: number;
  options: PostureOptions;
  deviceFile: string;
  /** Whether deviceFile was configured (then any device side writes it; otherwise only the installed one does). */
  deviceFileConfigured: boolean;
  deviceMaxAgeMs: number;
  report: boolean;
}

/**
 * The shared file: next to the device side's state directory (which is 0700), in a directory of its own that
 * every user may read: /var/lib/device-trust-agent-shared/posture.json, C:\ProgramData\device-trust-agent-shared\…
 */
export function defaultDevicePostureFile(platform: NodeJS.Platform = process.platform): string {
  // Another platform: the Linux layout.
  const dir = DEVICE_STATE_DIRS[platform] ?? DEVICE_STATE_DIRS.linux!;
  const p = platform === 'win32' ? path.win32 : path.posix;
  return p.join(`${dir}-shared`, 'posture.json');
}

/** The installed device task's state directory, where it is the device side that writes the shared file. */
export function deviceStateDir(platform: NodeJS.Platform = process.platform): string | undefined {
  return DEVICE_STATE_DIRS[platform];
}

export function resolvePostureSettings(s: PostureSettings | undefined): ResolvedPostureSettings {
  const d = DEFAULT_POSTURE_OPTIONS;
  return {
    intervalMs: (s?.intervalMinutes ?? 15) * 60_000,
    confirmations: s?.confirmations ?? 2,
    options: {
      screenLockMaxSeconds: s?.screenLockMaxSeconds ?? d.screenLockMaxSeconds,
      maxUpdateAgeDays: s?.maxUpdateAgeDays ?? d.maxUpdateAgeDays,
      endpointProcesses: s?.endpointProcesses ?? d.endpointProcesses,
      endpointServices: s?.endpointServices ?? d.endpointServices,
      adminChecks: s?.adminChecks ?? [],
    },
    deviceFile: s?.deviceFile ?? defaultDevicePostureFile(),
    deviceFileConfigured: s?.deviceFile !== undefined,
    deviceMaxAgeMs: (s?.deviceMaxAgeMinutes ?? 180) * 60_000,
    report: s?.report ?? true,
  };
}
