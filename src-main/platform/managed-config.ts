import os from 'node:os';
import type { SyncCommandRunner } from '../base/exec.js';
import { runCommandSync } from '../base/exec.js';
import { DarwinManagedConfig } from './managed-config-darwin.js';
import { LinuxManagedConfig } from './managed-config-linux.js';
import { WindowsManagedConfig } from './managed-config-win32.js';

/** One place an admin deployed settings to, with the raw name/value pairs found there. */
export interface ManagedSource {
  /** Where it came from, shown by `--debug` and in errors (a file, a registry key, a preferences domain). */
  origin: string;
  values: Record<string, unknown>;
  /**
   * Names the agent does not know are skipped instead of refused: the registry key is shared with the original
   * registration task, which keeps values of its own there.
   */
  ignoreUnknown?: boolean;
}

/**
 * Managed configuration, read at run time. `read()` returns the sources lowest precedence first; later ones
 * win, and the whole of managed configuration ranks above the config file, the environment and the command line
 * (per setting: core/config.ts `loadConfig`).
 */
export interface ManagedConfigReader {
  readonly description: string;
  read(): ManagedSource[];
}

export function createManagedConfigReader(platform: NodeJS.Platform, env: NodeJS.ProcessEnv, run: SyncCommandRunner = runCommandSync): ManagedConfigReader {
  if (platform === 'win32') return new WindowsManagedConfig(run);
  // The account the process runs as, not $USER: a user must not pick another profile (or none) by the environment.
  if (platform === 'darwin') return new DarwinManagedConfig(run, { user: platform === process.platform ? os.userInfo().username : env.USER });
  return new LinuxManagedConfig(linuxManagedConfigDir(env));
}

/**
 * /etc/device-trust-agent, or DTA_MANAGED_CONFIG_DIR for tests — honoured only for root, who could change
 * /etc anyway: an ordinary user pointing it at an empty directory would otherwise step out of what the admin set.
 */
export function linuxManagedConfigDir(env: NodeJS.ProcessEnv, uid: number | undefined = process.getuid?.()): string {
  return env.DTA_MANAGED_CONFIG_DIR && uid === 0 ? env.DTA_MANAGED_CONFIG_DIR : '/etc/device-trust-agent';
}
