import type { Command, CommandResult } from '../../base/exec.js';
import { powershell } from '../win32-store.js';
import { parseJsonOr } from './types.js';

/**
 * Posture scripts for Windows PowerShell 5.1. Written for ConstrainedLanguage mode (AppLocker/WDAC machines):
 * cmdlets, Select-Object, hashtable literals and ConvertTo-Json only — no .NET method calls, no Add-Type, no
 * [type] casts beyond [string]. Every script answers JSON on stdout; a failure answers
 * {"error": FullyQualifiedErrorId, "hresult": n} with exit code 3, so decisions never read translated text.
 */
export function postureScript(body: string): string {
  return [
    "$ErrorActionPreference = 'Stop'",
    'try {',
    body,
    '} catch {',
    '  @{ error = [string]$_.FullyQualifiedErrorId; hresult = $_.Exception.HResult } | ConvertTo-Json -Compress',
    '  exit 3',
    '}',
  ].join('\n');
}

export function postureCommand(body: string): Command {
  return powershell(postureScript(body));
}

export const E_ACCESSDENIED = -2147024891; // 0x80070005

export interface PsFailure {
  error: string;
  hresult?: number;
  accessDenied: boolean;
}

/** The structured failure of a posture script, or undefined when it answered. */
export function psFailure(r: CommandResult): PsFailure | undefined {
  if (r.code === 0) return undefined;
  const j = parseJsonOr<{ error?: string; hresult?: number }>(r.stdout.trim());
  const error = typeof j?.error === 'string' ? j.error : `exit code ${r.code}`;
  const hresult = typeof j?.hresult === 'number' ? j.hresult : undefined;
  const accessDenied = hresult === E_ACCESSDENIED || /UnauthorizedAccess|AccessDenied/i.test(error);
  return { error, ...(hresult !== undefined ? { hresult } : {}), accessDenied };
}

export function hex(hresult: number | undefined): string {
  return hresult === undefined ? '' : ` (0x${(hresult >>> 0).toString(16).padStart(8, '0')})`;
}
