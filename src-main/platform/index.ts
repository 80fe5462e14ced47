/**
 * The one place that picks the platform: the composition roots (cli/main.ts, electron/main.ts) load this OS's
 * implementation (linux.ts, win32.ts, darwin.ts) and hand it to the core as its platform factory. Only that OS's
 * module is loaded: the others' code, and the posture checks until they run, stay on disk (issue 27).
 */
import { AgentError } from '../base/errors.js';
import type { PlatformDeps } from './common.js';
import type { Platform, PlatformSettings } from './types.js';

export type { Platform, PlatformFactory } from './types.js';
export type { PlatformDeps } from './common.js';
// What the composition roots hand the core besides the platform: managed configuration and the OS's log.
export { createManagedConfigReader } from './managed-config.js';
export { platformSink } from './event-sinks.js';

/** Builds one OS's platform for a configuration; tests hand another OS's command runner and environment. */
export type PlatformBuilder = (config: PlatformSettings, deps?: PlatformDeps) => Platform;

export async function loadPlatform(os: NodeJS.Platform = process.platform): Promise<PlatformBuilder> {
  if (os === 'linux') return (await import('./linux.js')).createLinuxPlatform;
  if (os === 'win32') return (await import('./win32.js')).createWin32Platform;
  if (os === 'darwin') return (await import('./darwin.js')).createDarwinPlatform;
  throw new AgentError('local', 'PLATFORM_UNSUPPORTED', `This agent has no certificate store for ${os}.`, 'Use it on Windows, macOS or Linux.');
}
