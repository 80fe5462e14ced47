import { z } from 'zod';
import type { Command, CommandResult } from '../base/exec.js';
import type { RegType } from './policy-model.js';
import { classifyPsFailure, envelope, parsePsAnswer, powershell, type PsFailure } from './win32-powershell.js';

/**
 * The registry. Reads go through PowerShell (ConstrainedLanguage-safe, JSON answer): "key missing" and "access
 * denied" are told apart by PowerShell's error id and the HRESULT, never by reg.exe's translated "ERROR: …" /
 * "FEHLER: …" / "ERREUR : …" line — and value names come back as data, so reg.exe's translated "(Default)" /
 * "(Standard)" / "(par défaut)" label never matters. Writes use reg.exe and are judged by its exit code alone.
 */
export const regScripts = {
  /** Every value of one key: name → data (string, number, or string array for REG_MULTI_SZ). */
  read: envelope([
    '$item = Get-Item -LiteralPath $env:DTA_REG_KEY',
    '$values = @{}',
    'foreach ($name in $item.Property) { $values[$name] = Get-ItemPropertyValue -LiteralPath $env:DTA_REG_KEY -Name $name }',
    '$result = @{ values = $values }',
  ].join('\n')),
};

/** `HKLM\SOFTWARE\X` in reg.exe form → the PowerShell registry path; the 32-bit view is the WOW6432Node branch. */
export function psRegistryPath(key: string, view: 32 | 64 = 64): string {
  const m = /^(HKLM|HKEY_LOCAL_MACHINE|HKCU|HKEY_CURRENT_USER)\\(.*)$/i.exec(key);
  if (!m) throw new Error(`not a HKLM/HKCU key: ${key}`);
  const hive = /^(HKLM|HKEY_LOCAL_MACHINE)$/i.test(m[1]!) ? 'HKLM:' : 'HKCU:';
  let rest = m[2]!;
  if (view === 32 && hive === 'HKLM:' && /^SOFTWARE\\/i.test(rest)) rest = rest.replace(/^SOFTWARE\\/i, 'SOFTWARE\\WOW6432Node\\');
  return `Microsoft.PowerShell.Core\\Registry::${hive === 'HKLM:' ? 'HKEY_LOCAL_MACHINE' : 'HKEY_CURRENT_USER'}\\${rest}`;
}

/**
 * reg.exe as data (writes). `/reg:64` writes the 64-bit view, where the browsers and our managed configuration
 * live, whatever the bitness of the process that runs it.
 */
export const regCommands = {
  read: (key: string, view: 32 | 64 = 64): Command => powershell(regScripts.read, { DTA_REG_KEY: psRegistryPath(key, view) }),
  addValue: (key: string, name: string, type: RegType, data: string): Command => ({
    file: 'reg.exe',
    // REG_MULTI_SZ items are separated by \0 on the reg.exe command line; ours hold one item.
    args: ['add', key, '/v', name, '/t', type, '/d', data, '/f', '/reg:64'],
  }),
  deleteValue: (key: string, name: string): Command => ({ file: 'reg.exe', args: ['delete', key, '/v', name, '/f', '/reg:64'] }),
  deleteKey: (key: string): Command => ({ file: 'reg.exe', args: ['delete', key, '/f', '/reg:64'] }),
};

export type RegFailure = 'not-found' | 'access-denied' | 'other';

export type RegRead = { ok: true; values: Record<string, string> } | { ok: false; kind: RegFailure; message: string; hresult?: string };

const ReadData = z.object({ values: z.record(z.string(), z.union([z.string(), z.number(), z.boolean(), z.array(z.union([z.string(), z.number()])), z.null()])) });

function regFailureOf(f: PsFailure): { kind: RegFailure; message: string; hresult?: string } {
  const c = classifyPsFailure(f);
  return { kind: c === 'not-found' || c === 'access-denied' ? c : 'other', message: f.message, ...(f.hresult ? { hresult: f.hresult } : {}) };
}

/** The answer of `regCommands.read`: values as strings (numbers in decimal, REG_MULTI_SZ items joined with "\n"). */
export function parseRegRead(res: CommandResult): RegRead {
  const a = parsePsAnswer(res);
  if (!a.ok) return { ok: false, ...regFailureOf(a) };
  const d = ReadData.safeParse(a.data);
  if (!d.success) return { ok: false, kind: 'other', message: `unexpected answer from PowerShell: ${d.error.issues[0]?.message ?? ''}` };
  const values: Record<string, string> = {};
  for (const [name, v] of Object.entries(d.data.values)) {
    if (name === '' || name === '(default)') continue;
    values[name] = Array.isArray(v) ? v.map(String).join('\n') : v === null ? '' : String(v);
  }
  return { ok: true, values };
}

/** A reg.exe write failed (non-zero exit): the reason is for people only, as reg.exe prints it in the UI language. */
export function regWriteFailure(res: CommandResult): string {
  return (res.stderr || res.stdout).trim().split(/\r?\n/).filter(Boolean).pop() ?? `reg.exe exited with ${res.code}`;
}
