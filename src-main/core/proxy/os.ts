/**
 * The operating system's proxy settings, read through each platform's own command or file. Commands are
 * data (`Command`) and parsers are pure functions, so both are unit-tested against real outputs without
 * the platform at hand; `readOsProxy` is the thin layer that runs them.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Command, CommandRunner } from '../../base/exec.js';

export interface OsProxySettings {
  /** Where the settings came from, for the rule text: "GNOME settings", "WinINET (Internet Options)"… */
  source: string;
  /** A PAC file the system points at (automatic configuration script). */
  pacUrl?: string;
  /** Manual proxies by URL scheme, as `host:port` or `http://host:port`. */
  https?: string;
  http?: string;
  bypass: string[];
}

// ---- GNOME (gsettings) ----

export const gnomeCommand: Command = { file: 'gsettings', args: ['list-recursively', 'org.gnome.system.proxy'] };

/** Parses a GVariant text value as gsettings prints it: 'string', 3128, true, ['a', 'b'], @as []. */
function gvariant(text: string): string | number | boolean | string[] {
  const t = text.trim().replace(/^@as\s+/, '');
  if (t === 'true' || t === 'false') return t === 'true';
  if (/^-?\d+$/.test(t)) return Number(t);
  if (t.startsWith('[')) return [...t.matchAll(/'((?:[^'\\]|\\.)*)'/g)].map((m) => m[1]!.replace(/\\(.)/g, '$1'));
  const m = /^'((?:[^'\\]|\\.)*)'$/.exec(t);
  return m ? m[1]!.replace(/\\(.)/g, '$1') : t;
}

export function parseGsettings(stdout: string): OsProxySettings | undefined {
  const v = new Map<string, ReturnType<typeof gvariant>>();
  for (const line of stdout.split('\n')) {
    const m = /^(org\.gnome\.system\.proxy(?:\.\w+)?)\s+(\S+)\s+(.*)$/.exec(line.trim());
    if (m) v.set(`${m[1]!.replace('org.gnome.system.proxy', '').replace(/^\./, '') || 'proxy'}.${m[2]}`, gvariant(m[3]!));
  }
  const mode = v.get('proxy.mode');
  const bypass = (v.get('proxy.ignore-hosts') as string[] | undefined) ?? [];
  if (mode === 'auto') {
    const pac = String(v.get('proxy.autoconfig-url') ?? '');
    // An empty URL in auto mode means WPAD discovery, which the agent does not implement.
    return pac ? { source: 'GNOME settings (automatic)', pacUrl: pac, bypass } : undefined;
  }
  if (mode !== 'manual') return undefined;
  const hostPort = (scheme: string) => {
    const host = String(v.get(`${scheme}.host`) ?? '');
    const port = Number(v.get(`${scheme}.port`) ?? 0);
    return host && port ? `${host}:${port}` : undefined;
  };
  const https = hostPort('https');
  const http = hostPort('http');
  if (!https && !http) return undefined;
  return { source: 'GNOME settings (manual)', ...(https ? { https } : {}), ...(http ? { http } : {}), bypass };
}

// ---- KDE (kioslaverc) ----

export function kioslavercPath(env: NodeJS.ProcessEnv, home = os.homedir()): string {
  return path.join(env.XDG_CONFIG_HOME || path.join(home, '.config'), 'kioslaverc');
}

/** KDE writes proxies as `http://host 8080` (Plasma 5) or `http://host:8080`. */
function kdeProxy(value: string | undefined): string | undefined {
  if (!value?.trim()) return undefined;
  const m = /^(\S+)\s+(\d+)$/.exec(value.trim());
  return m ? `${m[1]!.replace(/\/+$/, '')}:${m[2]}` : value.trim();
}

export function parseKioslaverc(text: string): OsProxySettings | undefined {
  const settings = new Map<string, string>();
  let inGroup = false;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line.startsWith('[')) {
      inGroup = line === '[Proxy Settings]';
      continue;
    }
    const eq = line.indexOf('=');
    if (inGroup && eq > 0) settings.set(line.slice(0, eq).replace(/\[\$\w+\]$/, '').trim(), line.slice(eq + 1).trim());
  }
  const type = settings.get('ProxyType');
  const bypass = (settings.get('NoProxyFor') ?? '').split(/[,\s]+/).filter(Boolean);
  // ProxyType: 0 none, 1 manual, 2 PAC URL, 3 WPAD (not implemented), 4 environment variables (handled as env).
  if (type === '2') {
    const pac = settings.get('Proxy Config Script');
    return pac ? { source: 'KDE settings (automatic)', pacUrl: pac, bypass: [] } : undefined;
  }
  if (type !== '1' || settings.get('ReversedException') === 'true') return undefined;
  const https = kdeProxy(settings.get('httpsProxy'));
  const http = kdeProxy(settings.get('httpProxy'));
  if (!https && !http) return undefined;
  return { source: 'KDE settings (manual)', ...(https ? { https } : {}), ...(http ? { http } : {}), bypass };
}

// ---- Windows (WinINET per user, WinHTTP per machine) ----

export const windowsInternetSettingsCommand: Command = {
  file: 'powershell.exe',
  args: [
    '-NoProfile',
    '-NonInteractive',
    '-Command',
    "Get-ItemProperty -Path 'HKCU:\\Software\\Microsoft\\Windows\\CurrentVersion\\Internet Settings' | Select-Object ProxyEnable,ProxyServer,ProxyOverride,AutoConfigURL | ConvertTo-Json -Compress",
  ],
};

export const winhttpCommand: Command = { file: 'netsh', args: ['winhttp', 'show', 'proxy'] };

/** WinINET/WinHTTP proxy lists: `host:port` for all schemes, or `http=h:p;https=h:p`. */
function windowsProxyServer(value: string): { https?: string; http?: string } {
  const v = value.trim();
  if (!v.includes('=')) return { https: v, http: v };
  const out: { https?: string; http?: string } = {};
  for (const part of v.split(/[;\s]+/)) {
    const [scheme, hp] = part.split('=');
    if (!hp) continue;
    if (scheme?.toLowerCase() === 'https') out.https = hp;
    if (scheme?.toLowerCase() === 'http') out.http = hp;
  }
  return out;
}

export function parseWinInetJson(stdout: string): OsProxySettings | undefined {
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(stdout) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  const bypass = typeof raw.ProxyOverride === 'string' ? raw.ProxyOverride.split(/[;\s]+/).filter(Boolean) : [];
  if (typeof raw.AutoConfigURL === 'string' && raw.AutoConfigURL) return { source: 'WinINET (Internet Options, automatic script)', pacUrl: raw.AutoConfigURL, bypass };
  if (Number(raw.ProxyEnable) !== 1 || typeof raw.ProxyServer !== 'string' || !raw.ProxyServer) return undefined;
  return { source: 'WinINET (Internet Options)', ...windowsProxyServer(raw.ProxyServer), bypass };
}

/** `netsh winhttp show proxy`: two "label : value" lines (proxy, bypass list) or "Direct access". Labels are localized, so position counts. */
export function parseNetshWinhttp(stdout: string): OsProxySettings | undefined {
  const values = stdout
    .split(/\r?\n/)
    .map((l) => /^\s+[^:]+?\s:\s+(.+?)\s*$/.exec(l)?.[1])
    .filter((v): v is string => Boolean(v));
  const server = values[0];
  if (!server || /^\(none\)$/i.test(server)) return undefined;
  const bypass = values[1] && !/^\(none\)$/i.test(values[1]) ? values[1].split(/[;\s]+/).filter(Boolean) : [];
  return { source: 'WinHTTP (netsh winhttp)', ...windowsProxyServer(server), bypass };
}

// ---- macOS (scutil) ----

export const scutilCommand: Command = { file: 'scutil', args: ['--proxy'] };

export function parseScutilProxy(stdout: string): OsProxySettings | undefined {
  const values = new Map<string, string>();
  const exceptions: string[] = [];
  let inExceptions = false;
  for (const raw of stdout.split('\n')) {
    const line = raw.trim();
    if (/^ExceptionsList\s*:\s*<array>/.test(line)) {
      inExceptions = true;
      continue;
    }
    if (inExceptions) {
      if (line === '}') inExceptions = false;
      else {
        const m = /^\d+\s*:\s*(.+)$/.exec(line);
        if (m) exceptions.push(m[1]!);
      }
      continue;
    }
    const m = /^(\w+)\s*:\s*(.+)$/.exec(line);
    if (m) values.set(m[1]!, m[2]!);
  }
  if (values.get('ProxyAutoConfigEnable') === '1' && values.get('ProxyAutoConfigURLString')) {
    return { source: 'macOS network settings (automatic proxy configuration)', pacUrl: values.get('ProxyAutoConfigURLString')!, bypass: exceptions };
  }
  const hp = (p: string) => (values.get(`${p}Enable`) === '1' && values.get(`${p}Proxy`) ? `${values.get(`${p}Proxy`)}:${values.get(`${p}Port`) ?? '80'}` : undefined);
  const https = hp('HTTPS');
  const http = hp('HTTP');
  if (!https && !http) return undefined;
  if (values.get('ExcludeSimpleHostnames') === '1') exceptions.push('<local>');
  return { source: 'macOS network settings', ...(https ? { https } : {}), ...(http ? { http } : {}), bypass: exceptions };
}

// ---- the thin layer that runs them ----

export type OsProxyReader = () => Promise<OsProxySettings | undefined>;

async function tryRun(run: CommandRunner, cmd: Command): Promise<string | undefined> {
  try {
    const r = await run(cmd);
    return r.code === 0 ? r.stdout : undefined;
  } catch {
    return undefined; // the command is not installed: no settings of that kind
  }
}

/** The settings of the platform this runs on; undefined when none are set or they cannot be read. */
export function osProxyReader(run: CommandRunner, platform: NodeJS.Platform = process.platform, env: NodeJS.ProcessEnv = process.env): OsProxyReader {
  return async () => {
    switch (platform) {
      case 'win32': {
        const user = await tryRun(run, windowsInternetSettingsCommand);
        const fromUser = user ? parseWinInetJson(user) : undefined;
        if (fromUser) return fromUser;
        const machine = await tryRun(run, winhttpCommand);
        return machine ? parseNetshWinhttp(machine) : undefined;
      }
      case 'darwin': {
        const out = await tryRun(run, scutilCommand);
        return out ? parseScutilProxy(out) : undefined;
      }
      case 'linux': {
        const kde = /kde/i.test(env.XDG_CURRENT_DESKTOP ?? '');
        const readKde = () => {
          try {
            return parseKioslaverc(fs.readFileSync(kioslavercPath(env), 'utf8'));
          } catch {
            return undefined;
          }
        };
        if (kde) return readKde();
        const out = await tryRun(run, gnomeCommand);
        return out ? parseGsettings(out) : readKde();
      }
      default:
        return undefined;
    }
  };
}
