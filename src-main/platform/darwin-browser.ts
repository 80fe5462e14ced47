import type { IssuerFilter, StoredCertificate } from './types.js';
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import type { Command, CommandRunner } from '../base/exec.js';
import { writeFileAtomic } from '../base/fsutil.js';
import { emptyResult, mergeResults, type PolicyResult } from './browser-policy.js';
import { identityServices, type MacKeychainStore } from './darwin-store.js';
import * as model from './policy-model.js';

export const MAC_MANAGED_PREFERENCES_DIR = '/Library/Managed Preferences';
/** Firefox's enterprise policies on macOS: this preference domain, read when EnterprisePoliciesEnabled is true. */
export const MAC_FIREFOX_DOMAIN = 'org.mozilla.firefox';
export const MAC_PREFERENCES_DIR = '/Library/Preferences';

/**
 * `plutil` reads (as JSON); `defaults import` writes a whole domain through cfprefsd (so apps see the change at
 * once and cfprefsd does not overwrite it from its cache); `defaults delete` removes the domain.
 */
export const darwinPrefCommands = {
  readArray: (plist: string, key: string): Command => ({ file: '/usr/bin/plutil', args: ['-extract', key, 'json', '-o', '-', plist] }),
  readJson: (plist: string): Command => ({ file: '/usr/bin/plutil', args: ['-convert', 'json', '-o', '-', plist] }),
  importDomain: (domainPath: string, plistFile: string): Command => ({ file: '/usr/bin/defaults', args: ['import', domainPath, plistFile] }),
  deleteDomain: (domainPath: string): Command => ({ file: '/usr/bin/defaults', args: ['delete', domainPath] }),
};

const StringArray = z.array(z.string());
const JsonObject = z.record(z.string(), z.unknown());

/** The reason given when Chrome/Edge have no profile with our entries (shown by browser-setup and status). */
export const MDM_NOT_APPLIED = 'not applied: no configuration profile sets it. Install the profile from `device-trust-agent browser-setup --print macos-mobileconfig` through MDM (managed preferences written without a profile are dropped by macOS 13+)';

export interface MacBrowserSetupOptions {
  run: CommandRunner;
  managedPrefsDir?: string;
  /** Where the org.mozilla.firefox domain lives (default /Library/Preferences). */
  preferencesDir?: string;
  /** The Firefox application; no policy is written when it is not installed. */
  firefoxApp?: string;
  /** The user's keychain store, for Safari's identity preferences (user task only). */
  store?: MacKeychainStore;
  /**
   * Every identity the device certificate can be (issue 25.9): the login keychain's AND the Secure Enclave's, which
   * `security find-identity <login keychain>` does not list (MacDeviceCertificateStore.list). Default: store.list().
   */
  identities?: () => Promise<StoredCertificate[]>;
  /** Where the services we set identity preferences for are remembered, so uninstall can clear them. */
  stateDir: string;
  /** The device task (root) has no user keychain; defaults to this process's uid. */
  isRoot?: boolean;
}

/**
 * macOS browser setup, content from the one policy model:
 * - Chrome and Edge: `AutoSelectCertificateForUrls` comes from a configuration profile (MDM) — the only source
 *   macOS 13+ keeps in /Library/Managed Preferences. The agent never writes there; it READS what the profile
 *   put there and reports "applied (configuration profile)" or, honestly, "not applied".
 * - Firefox: the org.mozilla.firefox preference domain with EnterprisePoliciesEnabled (Mozilla's macOS route),
 *   merged with the admin's policies; never policies.json inside Firefox.app (that breaks its signature, is
 *   erased by updates and blocked by App Management on macOS 13+).
 * - Safari: identity preferences in the user's keychain (user task).
 */
export class MacBrowserSetup {
  private readonly prefsDir: string;
  private readonly preferencesDir: string;
  private readonly firefoxApp: string;

  constructor(private readonly opts: MacBrowserSetupOptions) {
    this.prefsDir = opts.managedPrefsDir ?? MAC_MANAGED_PREFERENCES_DIR;
    this.preferencesDir = opts.preferencesDir ?? MAC_PREFERENCES_DIR;
    this.firefoxApp = opts.firefoxApp ?? '/Applications/Firefox.app';
  }

  private get servicesFile(): string {
    return path.join(this.opts.stateDir, 'identity-preferences.json');
  }

  private async readArray(domain: string): Promise<string[]> {
    const plist = path.join(this.prefsDir, `${domain}.plist`);
    if (!fs.existsSync(plist)) return [];
    const res = await this.opts.run(darwinPrefCommands.readArray(plist, model.AUTO_SELECT_POLICY));
    if (res.code !== 0) return []; // "No value at that key path": the profile has other keys only
    return StringArray.parse(JSON.parse(res.stdout));
  }

  /** Chrome/Edge: whether a configuration profile delivers our entries. Nothing is written. */
  private async profileStatus(m: model.BrowserPolicyModel): Promise<PolicyResult> {
    const result = emptyResult();
    const ours = model.autoSelectEntries(m);
    for (const b of model.CHROMIUM_BROWSERS.filter((x) => x.macDomain)) {
      const target = path.join(this.prefsDir, `${b.macDomain}.plist`);
      try {
        const present = await this.readArray(b.macDomain!);
        if (ours.every((e) => present.includes(e))) result.written.push(`${target} (applied by a configuration profile)`);
        else result.skipped.push({ dir: target, reason: MDM_NOT_APPLIED });
      } catch (e) {
        result.skipped.push({ dir: target, reason: `not readable: ${(e as Error).message}` });
      }
    }
    return result;
  }

  private async readDomain(domainPath: string): Promise<Record<string, unknown>> {
    const plist = `${domainPath}.plist`;
    if (!fs.existsSync(plist)) return {};
    const res = await this.opts.run(darwinPrefCommands.readJson(plist));
    if (res.code !== 0) throw new Error(`cannot read ${plist}: ${(res.stderr || res.stdout).trim()}`);
    return JsonObject.parse(JSON.parse(res.stdout));
  }

  private async writeDomain(domainPath: string, values: Record<string, unknown>): Promise<void> {
    fs.accessSync(path.dirname(domainPath), fs.constants.W_OK);
    const tmp = fs.mkdtempSync(path.join(this.opts.stateDir, 'ffpol-'));
    try {
      const file = path.join(tmp, 'domain.plist');
      fs.writeFileSync(file, model.renderPlist(values as Parameters<typeof model.renderPlist>[0]), { mode: 0o600 });
      const res = await this.opts.run(darwinPrefCommands.importDomain(domainPath, file));
      if (res.code !== 0) throw new Error((res.stderr || res.stdout).trim() || `defaults exited ${res.code}`);
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  }

  /** Firefox: our policies merged into the org.mozilla.firefox domain (device task, as root). */
  private async firefox(apply: boolean): Promise<PolicyResult> {
    const result = emptyResult();
    const domainPath = path.join(this.preferencesDir, MAC_FIREFOX_DOMAIN);
    if (apply && !fs.existsSync(this.firefoxApp)) return result;
    try {
      const existing = await this.readDomain(domainPath);
      const { EnterprisePoliciesEnabled: _enabled, ...policies } = existing;
      const ours = model.firefoxPolicies('darwin');
      const next = apply ? model.mergeFirefoxPolicies({ policies }, ours) : model.unmergeFirefoxPolicies({ policies }, ours);
      const nextPolicies = (next.policies ?? {}) as Record<string, unknown>;
      if (!apply && !fs.existsSync(`${domainPath}.plist`)) return result;
      if (Object.keys(nextPolicies).length === 0) {
        const res = await this.opts.run(darwinPrefCommands.deleteDomain(domainPath));
        if (res.code !== 0) throw new Error((res.stderr || res.stdout).trim() || `defaults exited ${res.code}`);
      } else {
        await this.writeDomain(domainPath, { EnterprisePoliciesEnabled: true, ...nextPolicies });
      }
      result.written.push(`${domainPath} (Firefox enterprise policies)`);
    } catch (e) {
      result.skipped.push({ dir: domainPath, reason: (e as NodeJS.ErrnoException).code ?? (e as Error).message });
    }
    return result;
  }

  private async identityPreferences(m: model.BrowserPolicyModel): Promise<PolicyResult> {
    const store = this.opts.store;
    if (!store || (this.opts.isRoot ?? process.getuid?.() === 0)) return emptyResult();
    const result = emptyResult();
    const services = identityServices(m.patterns);
    if (!services.length) return result;
    const all = await (this.opts.identities ?? (() => store.list()))();
    const ours = all.filter((c) => c.info.issuerCN === m.issuerCN).sort((a, b) => Date.parse(b.info.notAfter) - Date.parse(a.info.notAfter))[0];
    if (!ours) {
      // Said, not silent: Safari then asks the user to pick a certificate.
      result.skipped.push({ dir: 'identity preferences', reason: 'no device certificate in the login keychain or the Secure Enclave yet (set after the next enrollment)' });
      return result;
    }
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
    const root = this.opts.isRoot ?? process.getuid?.() === 0;
    return mergeResults(await this.profileStatus(m), root ? await this.firefox(true) : emptyResult(), await this.identityPreferences(m));
  }

  async remove(_issuer: string | IssuerFilter): Promise<PolicyResult> {
    const root = this.opts.isRoot ?? process.getuid?.() === 0;
    const result = mergeResults(root ? await this.firefox(false) : emptyResult());
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
