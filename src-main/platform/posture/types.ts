import type { CommandResult, Command } from '../../base/exec.js';

import type { PostureContext, PostureResult } from './contract.js';
// The checks' contract (what the core sees) is in contract.ts.
export * from './contract.js';

/** Runs a command; a missing tool is a result (code 127), not an exception. */
export async function tryRun(ctx: PostureContext, cmd: Command): Promise<CommandResult & { missing?: boolean }> {
  try {
    return await ctx.run(cmd);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return { code: 127, stdout: '', stderr: String(code ?? (e as Error).message), missing: code === 'ENOENT' };
  }
}

/** A command line as the user would type it, for evidence lines. */
export function shown(cmd: Command): string {
  if (cmd.file.endsWith('powershell.exe')) return 'powershell.exe (script)';
  return [cmd.file, ...cmd.args].join(' ');
}

export function result(base: Omit<PostureResult, 'evidence'> & { evidence?: string[] }): PostureResult {
  return { evidence: [], ...base };
}

/** The first non-empty line of a command's error output, bounded (evidence, never a decision). */
export function firstLine(s: string): string {
  return (s.split(/\r?\n/).map((l) => l.trim()).find(Boolean) ?? '').slice(0, 200);
}

/** PowerShell 5.1 ConvertTo-Json writes a one-element array as the element itself, and dates as "/Date(ms)/". */
export function asArray<T>(v: T | T[] | null | undefined): T[] {
  return v === null || v === undefined ? [] : Array.isArray(v) ? v : [v];
}

export function psDate(v: unknown): Date | undefined {
  if (typeof v !== 'string') return undefined;
  const ms = /\/Date\((-?\d+)(?:[+-]\d+)?\)\//.exec(v);
  const d = ms ? new Date(Number(ms[1])) : new Date(v);
  return Number.isNaN(d.getTime()) ? undefined : d;
}

export function parseJsonOr<T>(text: string): T | undefined {
  try {
    return JSON.parse(text.replace(/^\uFEFF/, '')) as T;
  } catch {
    return undefined;
  }
}
