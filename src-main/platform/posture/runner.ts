import fs from 'node:fs';
import path from 'node:path';
import { runCommand, type Command, type CommandRunner } from '../../base/exec.js';

/**
 * How posture commands run: nothing a user puts on their PATH or in their environment changes a fact.
 *  - the tool is looked up by name in a per-OS allow-list, and only in fixed system directories (never PATH):
 *    a `findmnt` of the user's own in ~/bin is never run;
 *  - it runs with a fixed minimal environment (no LD_PRELOAD, PATH, LANG… of the caller), plus only the session
 *    variables a per-user setting needs to be read at all (gsettings reaches the user's dconf over D-Bus).
 * The command lines stay data in each check module; this is the one place they are made absolute.
 */
export const POSTURE_TOOLS: Partial<Record<NodeJS.Platform, readonly string[]>> = {
  linux: ['findmnt', 'lsblk', 'cryptsetup', 'dmsetup', 'nft', 'iptables', 'firewall-cmd', 'gsettings', 'kreadconfig5', 'kreadconfig6', 'mokutil', 'systemctl'],
  darwin: ['fdesetup', 'system_profiler', 'bputil', 'sw_vers', 'plutil', 'defaults', 'sysadminctl', 'socketfilterfw', 'launchctl'],
  win32: ['powershell.exe', 'reg.exe'],
};

/** Where those tools may live: root-owned system directories, searched in this order. */
export const POSTURE_TOOL_DIRS: Partial<Record<NodeJS.Platform, readonly string[]>> = {
  linux: ['/usr/sbin', '/usr/bin', '/sbin', '/bin'],
  darwin: ['/usr/sbin', '/usr/bin', '/sbin', '/bin', '/usr/libexec/ApplicationFirewall'],
  win32: ['C:\\Windows\\System32', 'C:\\Windows\\System32\\WindowsPowerShell\\v1.0'],
};

/** The environment posture tools get: fixed PATH and locale (parsers read English, C-locale output). */
export function postureEnv(platform: NodeJS.Platform, env: NodeJS.ProcessEnv): Record<string, string> {
  if (platform === 'win32') {
    return { SystemRoot: 'C:\\Windows', windir: 'C:\\Windows', PATH: (POSTURE_TOOL_DIRS.win32 ?? []).join(';'), ...(env.USERPROFILE ? { USERPROFILE: env.USERPROFILE } : {}) };
  }
  const out: Record<string, string> = { PATH: (POSTURE_TOOL_DIRS[platform] ?? POSTURE_TOOL_DIRS.linux!).join(':'), LANG: 'C.UTF-8', LC_ALL: 'C.UTF-8' };
  // Per-user settings (the screen lock) are read from the user's session: these locate it, they run no code.
  for (const k of ['HOME', 'USER', 'LOGNAME', 'DBUS_SESSION_BUS_ADDRESS', 'XDG_RUNTIME_DIR'] as const) {
    const v = env[k];
    if (v && !/[\0\n]/.test(v)) out[k] = v;
  }
  return out;
}

/** The absolute path of an allowed tool, or why there is none. An absolute path must itself be an allowed one. */
export function resolvePostureTool(file: string, platform: NodeJS.Platform, exists: (f: string) => boolean = fs.existsSync): { path: string } | { refused: string } {
  const p = platform === 'win32' ? path.win32 : path.posix;
  const name = p.basename(file);
  const allowed = POSTURE_TOOLS[platform] ?? [];
  if (!allowed.some((t) => t.toLowerCase() === name.toLowerCase())) return { refused: `${name} is not a posture tool this agent runs` };
  const dirs = POSTURE_TOOL_DIRS[platform] ?? [];
  if (p.isAbsolute(file)) {
    return dirs.some((d) => p.dirname(file).toLowerCase() === d.toLowerCase()) ? { path: file } : { refused: `${file} is not in a system directory` };
  }
  for (const d of dirs) {
    const full = p.join(d, name);
    if (exists(full)) return { path: full };
  }
  return { refused: `${name} is not installed in ${dirs.join(', ')}` };
}

/**
 * The runner posture checks get: absolute allowed tools, fixed environment. A tool that is not there answers as
 * a missing command (ENOENT), which each check already reports as UNKNOWN with its reason — never a PASS.
 */
export function postureRunner(platform: NodeJS.Platform, env: NodeJS.ProcessEnv, base: CommandRunner = runCommand, exists?: (f: string) => boolean): CommandRunner {
  const fixed = postureEnv(platform, env);
  return async (cmd: Command) => {
    const tool = resolvePostureTool(cmd.file, platform, exists);
    if ('refused' in tool) throw Object.assign(new Error(tool.refused), { code: 'ENOENT' });
    return base({ ...cmd, file: tool.path, env: { ...fixed, ...cmd.env }, inheritEnv: false });
  };
}
