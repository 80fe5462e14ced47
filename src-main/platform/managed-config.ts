import type { SyncCommandRunner } from '../base/exec.js';
import { runCommandSync } from '../base/exec.js';
import { DarwinManagedConfig } from './managed-config-darwin.js';
import { LinuxManagedConfig } from './managed-config-linux.js';
import { WindowsManagedConfig } from './managed-config-win32.js';
import type { ManagedConfigReader } from './types.js';
export type { ManagedConfigReader, ManagedSource } from './types.js';

export function createManagedConfigReader(platform: NodeJS.Platform, env: NodeJS.ProcessEnv, run: SyncCommandRunner = runCommandSync): ManagedConfigReader {
  if (platform === 'win32') return new WindowsManagedConfig(run);
  if (platform === 'darwin') return new DarwinManagedConfig(run, { user: env.USER });
  return new LinuxManagedConfig(env.DTA_MANAGED_CONFIG_DIR || '/etc/device-trust-agent');
}
