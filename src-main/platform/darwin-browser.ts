import type { IssuerFilter } from './types.js';
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import type { Command, CommandRunner } from '../base/exec.js';
import { writeFileAtomic } from '../base/fsutil.js';
import { emptyResult, mergeResults, removeFirefoxPolicies, writeFirefoxPolicies, type PolicyResult } from './browser-policy.js';
import { identityServices, type MacKeychainStore } from './darwin-store.js';
import * as model from './policy-model.js';

export const MAC_MANAGED_PREFERENCES_DIR = '/Library/Managed Preferences';
/** Firefox on macOS reads policies.json from its application bundle (Mozilla's documented location). */
export const MAC_FIREFOX_POLICY_DIR = '/Applications/Firefox.app/Contents/Resources/distribution';

/** `defaults` writes through cfprefsd (so the browsers see the change at once); `plutil` reads a value as JSON. */
export const darwinPrefCommands = {
  readArray: (plist: string, key: string): Command => ({ file: '/usr/bin/plutil', args: ['-extract', key, 'json', '-o', '-', plist] }),
  writeArray: (domainPath: string, key: string, items: string[]): Command => ({ file: '/usr/bin/defaults', args: ['write', domainPath, key, '-array', ...items] }),
  deleteKey: (domainPath: string, key: string): Command => ({ file: '/usr/bin/defaults', args: ['delete', domainPath, key] }),
};

const StringArray = z.array(z.string());

export interface MacBrowserSetupOptions {
  run: CommandRunner;
  managedPrefsDir?: string;
  firefoxPolicyDir?: string;
  /** The user's keychain store, for Safari's identity preferences (user task only). */
  store?: MacKeychainStore;
  /** Where the services we set identity preferences for are remembered, so uninstall can clear them. */
  stateDir: string;
  /** The device task (root) has no user keychain; defaults to this process's uid. */
  isRoot?: boolean;
}

/**
 * macOS browser setup: Chrome's and Edge's `AutoSelectCertificateForUrls` as managed preferences (device task, as
 * root), Firefox's policies.json in its bundle, and Safari through identity preferences in the user's keychain
 * (user task). Content comes from the one policy model.
 */
export class MacBrowserSetup {
  private readonly prefsDir: string;
  private readonly firefoxDir: string;

  constructor(private readonly opts: MacBrowserSetupOptions) {
    this.prefsDir = opts.managedPrefsDir ?? MAC_MANAGED_PREFERENCES_DIR;
    this.firefoxDir = opts.firefoxPolicyDir ?? MAC_FIREFOX_POLICY_DIR;
  }

  private get servicesFile(): string {
    return path.join(this.opts.stateDir, 'identity-preferences.json');
  }

  private async readArray(domain: string): Promise<string[]> {
    const plist = path.join(this.prefsDir, `${domain}.plist`);
    if (!fs.existsSync(plist)) return [];
    const res = await this.opts.run(darwinPrefCommands.readArray(plist, model.AUTO_SELECT_POLICY));
    if (res.code !== 0) return []; // "No value at that key path": the admin's file has other keys only
    return StringArray.parse(JSON.parse(res.stdout));
  }

  private async writeArray(domain: string, items: string[]): Promise<void> {
    const domainPath = path.join(this.prefsDir, domain);
    const cmd = items.length ? darwinPrefCommands.writeArray(domainPath, model.AUTO_SELECT_POLICY, items) : darwinPrefCommands.deleteKey(domainPath, model.AUTO_SELECT_POLICY);
    const res = await this.opts.run(cmd);
    if (res.code !== 0) throw new Error((res.stderr || res.stdout).trim() || `exit ${res.code}`);
    const plist = `${domainPath}.plist`;
    if (fs.existsSync(plist)) fs.chmodSync(plist, 0o644);
  }

  private async managedPreferences(m: model.BrowserPolicyModel | undefined, issuer: string | IssuerFilter): Promise<PolicyResult> {
    const result = emptyResult();
    const ours = m ? model.autoSelectEntries(m) : [];
    for (const b of model.CHROMIUM_BROWSERS.filter((x) => x.macDomain)) {
      const target = path.join(this.prefsDir, `${b.macDomain}.plist`);
      try {
        const existing = await this.readArray(b.macDomain!);
        const merged = model.mergeAutoSelect(existing, ours, issuer);
        if (JSON.stringify(merged) !== JSON.stringify(existing)) {
          fs.accessSync(this.prefsDir, fs.constants.W_OK);
          await this.writeArray(b.macDomain!, merged);
        }
        result.written.push(target);
      } catch (e) {
        result.skipped.push({ dir: target, reason: (e as NodeJS.ErrnoException).code ?? (e as Error).message });
      }
    }
    return result;
  }

  private async identityPreferences(m: model.BrowserPolicyModel): Promise<PolicyResult> {
    const store = this.opts.store;
    if (!store || (this.opts.isRoot ?? process.getuid?.() === 0)) return emptyResult();
    const result = emptyResult();
    const ours = (await store.list()).filter((c) => c.info.issuerCN === m.issuerCN).sort((a, b) => Date.parse(b.info.notAfter) - Date.parse(a.info.notAfter))[0];
    const services = identityServices(m.patterns);
    if (!ours || !services.length) return result;
    try {
      await store.preferIdentity(ours.id, services);
      writeFileAtomic(this.servicesFile, JSON.stringify(services) + '\n', 0o600);
      result.written.push(...services.map((s) => `identity preference ${s}`));
    } catch (e) {
      result.skipped.push({ dir: 'identity preferences', reason: (e as Error).message });
    }
    return result;
  }

  async apply(m: model.BrowserPolicyModel): Promise<PolicyResult> {
    const firefox = fs.existsSync(path.dirname(path.dirname(this.firefoxDir))) ? writeFirefoxPolicies([this.firefoxDir], model.firefoxPolicies('darwin')) : emptyResult();
    return mergeResults(await this.managedPreferences(m, m.issuer ?? m.issuerCN), firefox, await this.identityPreferences(m));
  }

  async remove(issuer: string | IssuerFilter): Promise<PolicyResult> {
    const result = mergeResults(await this.managedPreferences(undefined, issuer), removeFirefoxPolicies([this.firefoxDir], model.firefoxPolicies('darwin')));
    if (this.opts.store && fs.existsSync(this.servicesFile)) {
      try {
        const services = StringArray.parse(JSON.parse(fs.readFileSync(this.servicesFile, 'utf8')));
        await this.opts.store.clearPreferences(services);
        fs.rmSync(this.servicesFile);
        result.written.push(...services.map((s) => `identity preference ${s}`));
      } catch (e) {
        result.skipped.push({ dir: 'identity preferences', reason: (e as Error).message });
      }
    }
    return result;
  }
}
