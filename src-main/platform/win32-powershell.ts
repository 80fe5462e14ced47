import { lastJsonLine } from '../base/json-line.js';
import { z } from 'zod';
import type { Command, CommandResult } from '../base/exec.js';

/**
 * Windows PowerShell 5.1 as a structured tool. Every script we run (except the CNG key-store scripts of
 * win32-cng.ts, which need .NET and check for FullLanguage first):
 * - runs in ConstrainedLanguage (AppLocker/WDAC fleets): cmdlets, variables, hashtables, pipelines and
 *   property reads only — no .NET static calls, no method calls, no New-Object/Add-Type (`clmViolations`
 *   checks the text, and a unit test runs it over every script);
 * - answers with ONE line of JSON on stdout: `{"ok":true,"data":…}` or
 *   `{"ok":false,"hresult":-2147…,"id":"<FullyQualifiedErrorId>","category":"…","message":"…"}` and exit 1.
 *   Decisions are taken from `hresult` and `id` (which Windows does not translate), never from `message`
 *   (which it does: a German Windows says "Zugriff verweigert").
 * Inputs come through the environment, never through the script text, so nothing needs quoting.
 */
const POWERSHELL_ARGS = ['-NoLogo', '-NoProfile', '-NonInteractive', '-ExecutionPolicy', 'Bypass', '-OutputFormat', 'Text', '-EncodedCommand'];

/** Wraps a script body that leaves its answer in `$result` into the JSON envelope. */
export function envelope(body: string): string {
  return [
    "$ErrorActionPreference = 'Stop'",
    "$ProgressPreference = 'SilentlyContinue'",
    '$result = $null',
    'try {',
    body.split('\n').map((l) => `  ${l}`).join('\n'),
    '  ConvertTo-Json -InputObject @{ ok = $true; data = $result } -Compress -Depth 6',
    '} catch {',
    '  ConvertTo-Json -InputObject @{ ok = $false; hresult = $_.Exception.HResult; id = $_.FullyQualifiedErrorId; category = [string]$_.CategoryInfo.Category; message = $_.Exception.Message } -Compress',
    '  exit 1',
    '}',
  ].join('\n');
}

export function powershell(script: string, env?: Record<string, string>): Command {
  return { file: 'powershell.exe', args: [...POWERSHELL_ARGS, Buffer.from(script, 'utf16le').toString('base64')], ...(env ? { env } : {}) };
}

/**
 * What ConstrainedLanguage forbids (about_Language_Modes, "ConstrainedLanguage mode"), as patterns over the
 * script text, each with its reason. Deliberately stricter than CLM (all method calls, not only those on
 * non-core types): a script that passes runs the same in Full and Constrained language.
 */
export const CLM_FORBIDDEN: { pattern: RegExp; reason: string }[] = [
  { pattern: /\]::/, reason: 'static member of a .NET type (e.g. [Convert]::ToBase64String): CLM allows only a few core types, and we use none' },
  { pattern: /\[(?!string\]|int\]|long\]|bool\]|array\]|hashtable\])[A-Za-z_][\w.]*\]/i, reason: 'type literal or cast other than [string]/[int]/[long]/[bool]/[array]/[hashtable] (e.g. [pscustomobject], [System.IO.File]): CLM restricts conversions to its allowed types' },
  { pattern: /[\w)\]]\.[A-Za-z_]\w*\s*\(/, reason: 'method invocation (e.g. $cert.GetRSAPrivateKey()): CLM allows methods only on core types; we call none' },
  { pattern: /\bNew-Object\b/i, reason: 'New-Object: CLM allows only core types and no COM objects' },
  { pattern: /\bAdd-Type\b/i, reason: 'Add-Type: forbidden in CLM (it compiles arbitrary code)' },
  { pattern: /\bInvoke-Expression\b|\biex\b/i, reason: 'Invoke-Expression: code from data; blocked by CLM for untrusted input and never needed here' },
  { pattern: /\$\w+(?:\.\w+)+\s*=(?!=)/, reason: 'property assignment: CLM allows setting properties only on core types' },
  { pattern: /\$ExecutionContext\b/i, reason: '$ExecutionContext: engine internals are off limits in CLM' },
  { pattern: /\bclass\s+\w+|\benum\s+\w+/i, reason: 'class/enum definitions are not allowed in CLM' },
];

export function clmViolations(script: string): { line: string; reason: string }[] {
  const out: { line: string; reason: string }[] = [];
  for (const line of script.split('\n')) {
    const code = line.replace(/'[^']*'/g, "''").replace(/#.*$/, ''); // string contents and comments are not code
    for (const f of CLM_FORBIDDEN) if (f.pattern.test(code)) out.push({ line: line.trim(), reason: f.reason });
  }
  return out;
}

const Failure = z.object({ ok: z.literal(false), hresult: z.number().nullable().optional(), id: z.string().nullable().optional(), category: z.string().nullable().optional(), message: z.string().nullable().optional() });
const Success = z.object({ ok: z.literal(true), data: z.unknown() });

export interface PsFailure {
  /** HRESULT as 0x-prefixed lower-case hex (the exception's, which Windows does not translate). */
  hresult?: string;
  /** PowerShell's FullyQualifiedErrorId ("PathNotFound,Microsoft.PowerShell.Commands.GetItemCommand"). */
  id?: string;
  category?: string;
  /** For people only: translated by Windows. */
  message: string;
}

export type PsAnswer = { ok: true; data: unknown } | ({ ok: false } & PsFailure);

export function hex32(n: number): string {
  return `0x${(n >>> 0).toString(16).padStart(8, '0')}`;
}

/**
 * Reads an envelope answer. Without one (PowerShell could not start the script, or a terminating error
 * outside our try), the error text comes from stderr, which with -EncodedCommand and redirected streams is
 * CLIXML: decoded for the message, and an HRESULT is taken from it if one is there.
 */
export function parsePsAnswer(res: CommandResult): PsAnswer {
  const raw = lastJsonLine(res.stdout);
  const s = Success.safeParse(raw);
  if (s.success && res.code === 0) return { ok: true, data: s.data.data };
  const f = Failure.safeParse(raw);
  if (f.success) {
    return {
      ok: false,
      ...(typeof f.data.hresult === 'number' ? { hresult: hex32(f.data.hresult) } : {}),
      ...(f.data.id ? { id: f.data.id } : {}),
      ...(f.data.category ? { category: f.data.category } : {}),
      message: f.data.message?.trim() || `PowerShell exited with ${res.code}`,
    };
  }
  const errors = parseClixml(res.stderr);
  const text = errors.length ? errors.join(' ') : res.stderr.trim() || res.stdout.trim();
  const hresult = /\b0x(8[0-9a-f]{7})\b/i.exec(text)?.[1];
  return { ok: false, ...(hresult ? { hresult: `0x${hresult.toLowerCase()}` } : {}), message: text.split(/\r?\n/)[0]?.slice(0, 500) || `PowerShell exited with ${res.code}` };
}

/** `_xHHHH_` escapes of PowerShell's CLIXML serializer (CR, LF, control characters) back to characters. */
function unescapeClixml(s: string): string {
  return s
    .replace(/_x([0-9A-Fa-f]{4})_/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)))
    .replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&apos;/g, "'").replace(/&amp;/g, '&');
}

/**
 * The message of a CLIXML stderr (`#< CLIXML` then `<Objs …><S S="Error">…</S>…</Objs>`). PowerShell writes the
 * error record's console display, wrapped at the console width, one `<S S="Error">` per display line: the
 * message, then a position line ("At line:1 char:40", translated: "In Zeile:3 Zeichen:9"), then `+ <code>` and
 * `+ ~~~` and the `+ CategoryInfo` block. The message is what comes before the position line, which is found
 * by what follows it (a line starting with "+"), not by its translated words.
 */
export function parseClixml(stderr: string): string[] {
  if (!/#< CLIXML/.test(stderr)) return [];
  const parts = [...stderr.matchAll(/<S S="Error">([\s\S]*?)<\/S>/g)].map((m) => unescapeClixml(m[1]!));
  const lines = parts.join('').split(/\r?\n/).filter((l) => l.trim());
  const plus = lines.findIndex((l) => /^\s*\+/.test(l));
  const messageLines = plus >= 2 ? lines.slice(0, plus - 1) : plus === -1 ? lines : lines.slice(0, plus);
  const message = messageLines.map((l) => l.trim()).join(' ').replace(/\s+/g, ' ').trim();
  return message ? [message] : [];
}

/** Classes of failure decided from HRESULT / error id only. */
export type PsFailureKind = 'not-found' | 'access-denied' | 'already-exists' | 'other';

export function classifyPsFailure(f: PsFailure): PsFailureKind {
  const h = f.hresult;
  const id = f.id ?? '';
  if (/^(PathNotFound|ItemNotFound)|ItemNotFoundException/i.test(id) || h === '0x80070002' || h === '0x80070003' || h === '0x80092004') return 'not-found';
  if (/UnauthorizedAccess|SecurityException|PermissionDenied/i.test(id) || f.category === 'PermissionDenied' || h === '0x80070005') return 'access-denied';
  if (h === '0x800700b7' || h === '0x80092005' || h === '0x8009000f') return 'already-exists';
  return 'other';
}
