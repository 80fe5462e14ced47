import os from 'node:os';
import type { SyncCommandRunner } from '../base/exec.js';
import { runCommandSync } from '../base/exec.js';
import { DarwinManagedConfig } from './managed-config-darwin.js';
import { LinuxManagedConfig } from './managed-config-linux.js';
import { WindowsManagedConfig } from './managed-config-win32.js';
import type { ManagedConfigReader } from './types.js';
export type { ManagedConfigReader, ManagedSource } from './types.js';

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
