import os from 'node:os';
import type { Command } from '../../base/exec.js';
import { hex, postureCommand, psFailure } from './powershell.js';
import { asArray, firstLine, parseJsonOr, psDate, result, tryRun, type PostureCheck, type PostureContext, type PostureFacts, type PostureResult } from './types.js';

const ID = 'os-version';
const TITLE = 'OS version and updates';
const DAY = 86_400_000;

/** The common verdict: the version is a fact for the org's policy; the check itself judges update recency. */
export function judgeUpdates(opts: { name: string; version: string; lastUpdate: Date | undefined; lastUpdateSource: string; now: Date; maxDays: number; evidence: string[]; remedy: string; extraFacts?: PostureFacts }): PostureResult {
  const { name, version, lastUpdate, now, maxDays, evidence, remedy } = opts;
  const facts: PostureFacts = { osName: name, osVersion: version, ...opts.extraFacts };
  if (!lastUpdate) {
    return result({ check: ID, title: TITLE, status: 'UNKNOWN', summary: `${name} ${version}; when it was last updated is not known.`, why: `no record of the last update was found (${opts.lastUpdateSource})`, evidence, facts, remedy });
  }
  const days = Math.max(0, Math.floor((now.getTime() - lastUpdate.getTime()) / DAY));
  facts.lastUpdate = lastUpdate.toISOString();
  facts.daysSinceUpdate = days;
  if (days > maxDays) return result({ check: ID, title: TITLE, status: 'FAIL', summary: `${name} ${version} was last updated ${days} days ago (at most ${maxDays} allowed).`, evidence, facts, remedy });
  return result({ check: ID, title: TITLE, status: 'PASS', summary: `${name} ${version}, updated ${days === 0 ? 'today' : `${days} day${days === 1 ? '' : 's'} ago`}.`, evidence, facts });
}

// ---------------------------------------------------------------- Linux: /etc/os-release and the package manager's own records

export function parseOsRelease(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^([A-Z_]+)=(.*)$/.exec(line.trim());
    if (m) out[m[1]!] = m[2]!.replace(/^(["'])(.*)\1$/, '$2');
  }
  return out;
}

/** The last "End-Date:" (else "Start-Date:") of apt's history log: "End-Date: 2026-11-30  22:14:05" (local time). */
export function lastAptRun(text: string): Date | undefined {
  const all = [...text.matchAll(/^(?:End|Start)-Date:\s*(\d{4}-\d{2}-\d{2})\s+(\d{2}:\d{2}:\d{2})/gm)];
  const last = all.at(-1);
  if (!last) return undefined;
  const d = new Date(`${last[1]}T${last[2]}`);
  return Number.isNaN(d.getTime()) ? undefined : d;
}

/** Package databases whose modification time is the last install/upgrade, by distribution family. */
export const LINUX_UPDATE_RECORDS = ['/var/lib/dpkg/status', '/var/lib/rpm/rpmdb.sqlite', '/var/lib/rpm/Packages', '/var/lib/pacman/local', '/var/lib/dnf/history.sqlite'];
export const APT_HISTORY = '/var/log/apt/history.log';

function linux(ctx: PostureContext): PostureResult {
  const text = ctx.readFile('/etc/os-release') ?? ctx.readFile('/usr/lib/os-release');
  const rel = text ? parseOsRelease(text) : {};
  const name = rel.NAME ?? 'Linux';
  const version = rel.VERSION_ID ?? rel.BUILD_ID ?? 'unknown';
  const evidence = [`/etc/os-release: ${rel.PRETTY_NAME ?? `${name} ${version}`}`, `kernel: ${os.release()}`];
  let last: Date | undefined;
  let source = '';
  const apt = ctx.readFile(APT_HISTORY);
  if (apt) {
    last = lastAptRun(apt);
    if (last) source = APT_HISTORY;
  }
  for (const f of LINUX_UPDATE_RECORDS) {
    const m = ctx.mtime(f);
    if (m && (!last || m > last)) {
      last = m;
      source = f;
    }
  }
  if (last) evidence.push(`last package change: ${last.toISOString()} (${source})`);
  return judgeUpdates({ name, version, lastUpdate: last, lastUpdateSource: `${APT_HISTORY}, ${LINUX_UPDATE_RECORDS.join(', ')}`, now: ctx.now, maxDays: ctx.options.maxUpdateAgeDays, evidence,
    remedy: 'Install the pending updates: your Software/Updates application, or "sudo apt update && sudo apt upgrade" (Debian/Ubuntu) / "sudo dnf upgrade" (Fedora/RHEL).',
    extraFacts: { ...(rel.ID ? { osId: rel.ID } : {}), kernel: os.release() } });
}

// ---------------------------------------------------------------- Windows: build + UBR, and the newest hotfix

export const win32OsScripts = {
  version: [
    "$v = Get-ItemProperty -LiteralPath 'HKLM:\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion' | Select-Object ProductName, DisplayVersion, CurrentMajorVersionNumber, CurrentMinorVersionNumber, CurrentBuild, UBR",
    '$h = Get-HotFix | Where-Object { $_.InstalledOn } | Sort-Object InstalledOn -Descending | Select-Object -First 1 HotFixID, InstalledOn',
    '@{ version = $v; hotfix = $h } | ConvertTo-Json -Compress',
  ].join('\n'),
};
export const win32OsCommands = { version: (): Command => postureCommand(win32OsScripts.version) };

export function parseWin32Version(stdout: string): { name: string; version: string; display?: string; build: number; lastUpdate?: Date; hotfix?: string } | undefined {
  const j = parseJsonOr<{ version?: Record<string, unknown>; hotfix?: Record<string, unknown> | Record<string, unknown>[] | null }>(stdout.trim());
  const v = j?.version;
  if (!v || v.CurrentBuild === undefined) return undefined;
  const build = Number(v.CurrentBuild);
  // Windows 11 still says "Windows 10" in ProductName; build 22000 and later is Windows 11.
  const name = build >= 22000 ? String(v.ProductName ?? 'Windows').replace(/Windows 10/, 'Windows 11') : String(v.ProductName ?? 'Windows');
  const version = `${v.CurrentMajorVersionNumber ?? 10}.${v.CurrentMinorVersionNumber ?? 0}.${build}.${v.UBR ?? 0}`;
  const hf = asArray(j.hotfix)[0];
  const lastUpdate = psDate(hf?.InstalledOn);
  return { name, version, build, ...(typeof v.DisplayVersion === 'string' ? { display: v.DisplayVersion } : {}), ...(lastUpdate ? { lastUpdate } : {}), ...(hf?.HotFixID ? { hotfix: String(hf.HotFixID) } : {}) };
}

const WIN_REMEDY = 'Install the pending updates: Settings → Windows Update → Check for updates, then restart when asked.';

export function judgeWin32Os(stdout: string, now: Date, maxDays: number): PostureResult {
  const p = parseWin32Version(stdout);
  if (!p) return result({ check: ID, title: TITLE, status: 'UNKNOWN', summary: 'The Windows version could not be read.', why: 'the registry query gave no CurrentBuild', evidence: [], remedy: WIN_REMEDY });
  const evidence = [`CurrentVersion: ${p.name} ${p.display ?? ''} build ${p.version}`.replace(/\s+/g, ' '), p.hotfix ? `newest hotfix: ${p.hotfix} installed ${p.lastUpdate?.toISOString() ?? '?'}` : 'Get-HotFix: no dated hotfix'];
  return judgeUpdates({ name: p.name, version: p.version, lastUpdate: p.lastUpdate, lastUpdateSource: 'Get-HotFix', now, maxDays, evidence, remedy: WIN_REMEDY, extraFacts: { build: p.build, ...(p.display ? { displayVersion: p.display } : {}) } });
}

async function win32(ctx: PostureContext): Promise<PostureResult> {
  const r = await tryRun(ctx, win32OsCommands.version());
  const fail = psFailure(r);
  if (fail) return result({ check: ID, title: TITLE, status: 'UNKNOWN', summary: 'The Windows version could not be read.', why: `${fail.error}${hex(fail.hresult)}`, evidence: [], remedy: WIN_REMEDY });
  return judgeWin32Os(r.stdout, ctx.now, ctx.options.maxUpdateAgeDays);
}

// ---------------------------------------------------------------- macOS: sw_vers and the install history

export const darwinOsCommands = {
  productVersion: (): Command => ({ file: '/usr/bin/sw_vers', args: ['-productVersion'] }),
  buildVersion: (): Command => ({ file: '/usr/bin/sw_vers', args: ['-buildVersion'] }),
  /** Every install (system updates included) with its date, as JSON. */
  installHistory: (): Command => ({ file: '/usr/bin/plutil', args: ['-convert', 'json', '-o', '-', '/Library/Receipts/InstallHistory.plist'] }),
};

/** The newest macOS update or security response in InstallHistory.plist (apps from the App Store do not count). */
export function lastMacUpdate(stdout: string): { at: Date; name: string } | undefined {
  const items = parseJsonOr<{ date?: string; displayName?: string; processName?: string }[]>(stdout);
  let best: { at: Date; name: string } | undefined;
  for (const i of Array.isArray(items) ? items : []) {
    // Apple's updates come through softwareupdated (or a full macOS installer); other .pkg installs are not OS updates.
    if (!/^(softwareupdated|macOS Installer|OS X Installer)$/.test(i.processName ?? '')) continue;
    const at = i.date ? new Date(i.date) : undefined;
    if (at && !Number.isNaN(at.getTime()) && (!best || at > best.at)) best = { at, name: i.displayName ?? '' };
  }
  return best;
}

async function darwin(ctx: PostureContext): Promise<PostureResult> {
  const v = await tryRun(ctx, darwinOsCommands.productVersion());
  const b = await tryRun(ctx, darwinOsCommands.buildVersion());
  const h = await tryRun(ctx, darwinOsCommands.installHistory());
  return judgeDarwinOs(v.stdout.trim(), b.stdout.trim(), h.code === 0 ? h.stdout : '', ctx.now, ctx.options.maxUpdateAgeDays, h.code === 0 ? '' : firstLine(h.stderr));
}

export function judgeDarwinOs(version: string, build: string, history: string, now: Date, maxDays: number, historyError = ''): PostureResult {
  const last = lastMacUpdate(history);
  const evidence = [`sw_vers: macOS ${version || '?'} (${build || '?'})`, last ? `InstallHistory.plist: ${last.name} at ${last.at.toISOString()}` : `InstallHistory.plist: no system update${historyError ? ` (${historyError})` : ''}`];
  return judgeUpdates({ name: 'macOS', version: version || 'unknown', lastUpdate: last?.at, lastUpdateSource: '/Library/Receipts/InstallHistory.plist', now, maxDays, evidence, extraFacts: build ? { build } : {},
    remedy: 'Install the pending updates: System Settings → General → Software Update.' });
}

export const osVersion: PostureCheck = {
  id: ID,
  title: TITLE,
  run: async (ctx) => (ctx.platform === 'win32' ? win32(ctx) : ctx.platform === 'darwin' ? darwin(ctx) : linux(ctx)),
};
