import fs from 'node:fs';
import path from 'node:path';
import { AgentError } from '../base/errors.js';
import type { Command, SyncCommandRunner } from '../base/exec.js';
import type { ManagedConfigReader, ManagedSource } from './managed-config.js';

/** The preferences domain a configuration profile (MDM) sets; the app's bundle identifier. */
export const MAC_CONFIG_DOMAIN = 'com.example.devicetrustagent';

export const darwinConfigCommands = {
  /** The whole plist as JSON (binary and XML plists alike). */
  toJson: (plist: string): Command => ({ file: '/usr/bin/plutil', args: ['-convert', 'json', '-o', '-', plist] }),
};

/**
 * macOS, lowest first: /Library/Preferences/<domain>.plist (an admin's `defaults write` or a package), the
 * device-wide configuration profile (/Library/Managed Preferences/<domain>.plist), then the user's profile
 * (/Library/Managed Preferences/<user>/<domain>.plist), as macOS itself ranks forced preferences.
 */
export class DarwinManagedConfig implements ManagedConfigReader {
  readonly description: string;
  private readonly files: string[];

  constructor(private readonly run: SyncCommandRunner, opts: { user?: string | undefined; root?: string; domain?: string } = {}) {
    const root = opts.root ?? '/';
    const domain = opts.domain ?? MAC_CONFIG_DOMAIN;
    this.files = [
      path.join(root, 'Library', 'Preferences', `${domain}.plist`),
      path.join(root, 'Library', 'Managed Preferences', `${domain}.plist`),
      ...(opts.user ? [path.join(root, 'Library', 'Managed Preferences', opts.user, `${domain}.plist`)] : []),
    ];
    this.description = `managed preferences ${domain}`;
  }

  read(): ManagedSource[] {
    const out: ManagedSource[] = [];
    for (const file of this.files) {
      if (!fs.existsSync(file)) continue;
      let res;
      try {
        res = this.run(darwinConfigCommands.toJson(file));
      } catch (e) {
        throw new AgentError('config', 'MANAGED_CONFIG_UNREADABLE', `The managed preferences ${file} could not be read: ${(e as Error).message}.`);
      }
      let parsed: unknown;
      try {
        if (res.code !== 0) throw new Error((res.stderr || res.stdout).trim());
        parsed = JSON.parse(res.stdout);
      } catch (e) {
        throw new AgentError('config', 'MANAGED_CONFIG_UNREADABLE', `The managed preferences ${file} could not be read: ${(e as Error).message}.`,
          'Check the configuration profile: its values must be strings, booleans or numbers.');
      }
      if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) continue;
      // A profile's payload bookkeeping (PayloadUUID, …) is not a setting.
      const values = Object.fromEntries(Object.entries(parsed).filter(([k]) => !/^Payload/.test(k)));
      out.push({ origin: file, values });
    }
    return out;
  }
}
