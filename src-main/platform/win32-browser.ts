import type { IssuerFilter } from './types.js';
import type { Command, CommandRunner } from '../base/exec.js';
import { emptyResult, type PolicyResult } from './browser-policy.js';
import * as model from './policy-model.js';
import { parseRegRead, regCommands, regWriteFailure } from './win32-registry.js';

/**
 * Windows browser setup: Chrome's and Edge's `AutoSelectCertificateForUrls` and Firefox's enterprise policies as
 * HKLM policy values (what Group Policy would write), from the one policy model. Others' entries in the same
 * list are kept; ours are recognised by their issuer filter. Needs an elevated or SYSTEM context (the device task
 * runs as SYSTEM); a user task is refused and reports the keys as skipped. Reads are PowerShell JSON (missing vs
 * denied from error ids, not translated text); writes are reg.exe judged by exit code.
 */
export class WindowsBrowserSetup {
  constructor(private readonly run: CommandRunner) {}

  /** The numbered values of a list key, in order, with their names (a gap ends what Chrome reads, not what we keep). */
  private async readList(key: string): Promise<{ entries: string[]; byName: Map<string, string> }> {
    const r = parseRegRead(await this.run(regCommands.read(key)));
    if (!r.ok) {
      if (r.kind === 'not-found') return { entries: [], byName: new Map() };
      throw new Error(`${r.message}${r.hresult ? ` (${r.hresult})` : ''}`);
    }
    const numbered = Object.entries(r.values).filter(([name]) => /^\d+$/.test(name)).sort((a, b) => Number(a[0]) - Number(b[0]));
    return { entries: numbered.map(([, data]) => data), byName: new Map(numbered) };
  }

  /** Whether a key exists (and which values it has), so removal only deletes what is there. */
  private async valuesOf(key: string): Promise<Record<string, string> | undefined> {
    const r = parseRegRead(await this.run(regCommands.read(key)));
    if (r.ok) return r.values;
    if (r.kind === 'not-found') return undefined;
    throw new Error(`${r.message}${r.hresult ? ` (${r.hresult})` : ''}`);
  }

  private async exec(cmd: Command): Promise<void> {
    const res = await this.run(cmd);
    if (res.code !== 0) throw new Error(regWriteFailure(res));
  }

  /** Rewrites a numbered list so that it holds `desired` as "1".."n" and nothing after; unchanged values are not touched. */
  private async writeList(key: string, desired: string[], byName: Map<string, string>): Promise<void> {
    for (const v of model.registryListValues(key, desired)) {
      if (byName.get(v.name) !== v.data) await this.exec(regCommands.addValue(v.key, v.name, v.type, v.data));
    }
    for (const name of [...byName.keys()].filter((n) => Number(n) > desired.length)) await this.exec(regCommands.deleteValue(key, name));
  }

  async apply(m: model.BrowserPolicyModel): Promise<PolicyResult> {
    const result = emptyResult();
    const ours = model.autoSelectEntries(m);
    for (const b of model.CHROMIUM_BROWSERS.filter((x) => x.windowsKey)) {
      const key = `${b.windowsKey}\\${model.AUTO_SELECT_POLICY}`;
      try {
        const { entries, byName } = await this.readList(key);
        await this.writeList(key, model.mergeAutoSelect(entries, ours, m.issuer ?? m.issuerCN), byName);
        result.written.push(key);
      } catch (e) {
        result.skipped.push({ dir: key, reason: (e as Error).message });
      }
    }
    try {
      for (const v of model.firefoxRegistryValues(model.firefoxPolicies('win32'))) await this.exec(regCommands.addValue(v.key, v.name, v.type, v.data));
      result.written.push(model.FIREFOX_WINDOWS_KEY);
    } catch (e) {
      result.skipped.push({ dir: model.FIREFOX_WINDOWS_KEY, reason: (e as Error).message });
    }
    return result;
  }

  /** Uninstall: our list entries and Firefox values go; others' entries stay (renumbered from 1). */
  async remove(issuerCN: string | IssuerFilter): Promise<PolicyResult> {
    const result = emptyResult();
    for (const b of model.CHROMIUM_BROWSERS.filter((x) => x.windowsKey)) {
      const key = `${b.windowsKey}\\${model.AUTO_SELECT_POLICY}`;
      try {
        const { entries, byName } = await this.readList(key);
        const rest = model.mergeAutoSelect(entries, [], issuerCN);
        if (rest.length === entries.length) continue;
        if (rest.length) await this.writeList(key, rest, byName);
        else await this.exec(regCommands.deleteKey(key));
        result.written.push(key);
      } catch (e) {
        result.skipped.push({ dir: key, reason: (e as Error).message });
      }
    }
    const prefKeys = [...new Set(model.firefoxRegistryValues(model.firefoxPolicies('win32')).map((v) => v.key))];
    for (const key of prefKeys) {
      try {
        const values = await this.valuesOf(key);
        if (values === undefined) continue;
        if (key.endsWith('\\Certificates')) {
          if ('ImportEnterpriseRoots' in values) await this.exec(regCommands.deleteValue(key, 'ImportEnterpriseRoots'));
        } else {
          // Each preference has a key of its own (…\Preferences\<pref name>) that only we write.
          await this.exec(regCommands.deleteKey(key));
        }
        result.written.push(key);
      } catch (e) {
        result.skipped.push({ dir: key, reason: (e as Error).message });
      }
    }
    return result;
  }
}
