import type { Command, CommandResult } from '../base/exec.js';
import type { RegType } from './policy-model.js';

/**
 * reg.exe as data. `/reg:64` reads and writes the 64-bit view, where the browsers and our managed
 * configuration live, whatever the bitness of the process that runs it.
 */
export const regCommands = {
  query: (key: string, view: 32 | 64 = 64): Command => ({ file: 'reg.exe', args: ['query', key, `/reg:${view}`] }),
  addValue: (key: string, name: string, type: RegType, data: string): Command => ({
    file: 'reg.exe',
    // REG_MULTI_SZ items are separated by \0 on the reg.exe command line; ours hold one item.
    args: ['add', key, '/v', name, '/t', type, '/d', data, '/f', '/reg:64'],
  }),
  deleteValue: (key: string, name: string): Command => ({ file: 'reg.exe', args: ['delete', key, '/v', name, '/f', '/reg:64'] }),
  deleteKey: (key: string): Command => ({ file: 'reg.exe', args: ['delete', key, '/f', '/reg:64'] }),
};

export interface RegEntry {
  name: string;
  type: string;
  /** As reg.exe prints it; DWORD/QWORD converted to decimal, REG_MULTI_SZ items joined with "\n". */
  data: string;
}

export interface RegKeyListing {
  key: string;
  values: RegEntry[];
  subkeys: string[];
}

/**
 * Parses `reg query` output: a key line (HKEY_…), then its values indented by four spaces as
 * `name<4 spaces>REG_TYPE<4 spaces>data`, then subkeys as full key lines.
 */
export function parseRegQuery(stdout: string): RegKeyListing[] {
  const out: RegKeyListing[] = [];
  let current: RegKeyListing | undefined;
  for (const raw of stdout.split(/\r?\n/)) {
    if (!raw.trim()) continue;
    if (/^HKEY_/i.test(raw)) {
      if (current && out.length && raw.toUpperCase().startsWith(current.key.toUpperCase() + '\\')) current.subkeys.push(raw.trim());
      else {
        current = { key: raw.trim(), values: [], subkeys: [] };
        out.push(current);
      }
      continue;
    }
    const m = /^ {4}(.*?) {4}(REG_[A-Z_]+)(?: {4}(.*))?$/.exec(raw);
    if (!m || !current) continue;
    const [, name, type, data = ''] = m as unknown as [string, string, string, string?];
    current.values.push({ name: name === '(Default)' ? '' : name, type, data: convertData(type, data) });
  }
  return out;
}

function convertData(type: string, data: string): string {
  if ((type === 'REG_DWORD' || type === 'REG_QWORD') && /^0x[0-9a-f]+$/i.test(data)) return BigInt(data).toString(10);
  if (type === 'REG_MULTI_SZ') return data.split('\\0').filter(Boolean).join('\n');
  return data;
}

export type RegFailure = 'not-found' | 'access-denied' | 'other';

/** reg.exe reports failures as one "ERROR: …" line on stderr. */
export function regFailure(res: CommandResult): { kind: RegFailure; message: string } {
  const message = (res.stderr || res.stdout).trim().split(/\r?\n/).filter(Boolean).pop() ?? `reg.exe exited with ${res.code}`;
  if (/unable to find the specified registry key or value/i.test(message)) return { kind: 'not-found', message };
  if (/access is denied/i.test(message)) return { kind: 'access-denied', message };
  return { kind: 'other', message };
}
