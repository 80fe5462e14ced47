import { AgentError } from '../base/errors.js';
import type { SyncCommandRunner } from '../base/exec.js';
import type { ManagedConfigReader, ManagedSource } from './managed-config.js';
import { parseRegRead, regCommands } from './win32-registry.js';

/** Written by the installer from OktaURL=, HttpProxy=, … (and by the original task's installer). */
export const WINDOWS_SETTINGS_KEY = 'HKLM\\SOFTWARE\\Okta\\DeviceTrust';
/** Written by Group Policy; wins over the installer's key. */
export const WINDOWS_POLICY_KEY = 'HKLM\\SOFTWARE\\Policies\\Okta\\DeviceTrust';

/**
 * Windows: the installer's key, then Group Policy's key (which wins). The installer's key is read in the 32-bit
 * view too, lowest, because a 32-bit installer of the original task wrote it there. A missing key is told from
 * an unreadable one by PowerShell's error id, so this works the same on a German or French Windows.
 */
export class WindowsManagedConfig implements ManagedConfigReader {
  readonly description = `${WINDOWS_POLICY_KEY} > ${WINDOWS_SETTINGS_KEY}`;

  constructor(private readonly run: SyncCommandRunner) {}

  private readKey(key: string, view: 32 | 64): ManagedSource | undefined {
    let res;
    try {
      res = this.run(regCommands.read(key, view));
    } catch (e) {
      throw new AgentError('config', 'MANAGED_CONFIG_UNREADABLE', `The managed configuration in ${key} could not be read: ${(e as Error).message}.`);
    }
    const r = parseRegRead(res);
    if (!r.ok) {
      if (r.kind === 'not-found') return undefined;
      throw new AgentError('config', 'MANAGED_CONFIG_UNREADABLE', `The managed configuration in ${key} could not be read: ${r.message}${r.hresult ? ` (${r.hresult})` : ''}`,
        'Check that the registry key is readable by the user and by the service account.');
    }
    if (Object.keys(r.values).length === 0) return undefined;
    return { origin: view === 32 ? `${key} (32-bit view)` : key, values: r.values, ignoreUnknown: true };
  }

  read(): ManagedSource[] {
    return [this.readKey(WINDOWS_SETTINGS_KEY, 32), this.readKey(WINDOWS_SETTINGS_KEY, 64), this.readKey(WINDOWS_POLICY_KEY, 64)].filter((s): s is ManagedSource => !!s);
  }
}
