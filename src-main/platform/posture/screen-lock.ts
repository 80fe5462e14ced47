import type { Command } from '../../base/exec.js';
import { hex, postureCommand, psFailure } from './powershell.js';
import { firstLine, parseJsonOr, result, tryRun, type PostureCheck, type PostureContext, type PostureResult } from './types.js';

const ID = 'screen-lock';
const TITLE = 'Screen lock';

const minutes = (s: number) => (s % 60 === 0 ? `${s / 60} min` : `${s} s`);

/** The common verdict: a lock that engages, after at most `max` seconds of idle. */
export function judgeLock(opts: { lockEnabled: boolean | undefined; idleSeconds: number | undefined; lockDelaySeconds?: number; max: number; evidence: string[]; remedy: string; where: string }): PostureResult {
  const { lockEnabled, idleSeconds, max, evidence, remedy, where } = opts;
  const total = idleSeconds !== undefined ? idleSeconds + (opts.lockDelaySeconds ?? 0) : undefined;
  const facts = { lockEnabled: lockEnabled ?? false, ...(total !== undefined ? { lockAfterSeconds: total } : {}), maxSeconds: max };
  if (lockEnabled === false) return result({ check: ID, title: TITLE, status: 'FAIL', summary: `The screen does not lock when idle (${where}).`, evidence, facts, remedy });
  if (lockEnabled === undefined || total === undefined) return result({ check: ID, title: TITLE, status: 'UNKNOWN', summary: 'The screen-lock settings could not be read.', why: `no ${where} setting answered`, evidence, remedy: 'Ask IT to check the screen lock on this computer.' });
  if (idleSeconds === 0) return result({ check: ID, title: TITLE, status: 'FAIL', summary: 'The screen never goes idle, so it never locks.', evidence, facts, remedy });
  if (total > max) return result({ check: ID, title: TITLE, status: 'FAIL', summary: `The screen locks after ${minutes(total)} of idle; at most ${minutes(max)} is required.`, evidence, facts, remedy });
  return result({ check: ID, title: TITLE, status: 'PASS', summary: `The screen locks after ${minutes(total)} of idle.`, evidence, facts });
}

// ---------------------------------------------------------------- Linux: GNOME (GSettings) and KDE (kscreenlockerrc)

export const linuxLockCommands = {
  gsettings: (schema: string, key: string): Command => ({ file: 'gsettings', args: ['get', schema, key] }),
  kreadconfig: (tool: 'kreadconfig5' | 'kreadconfig6', key: string, fallback: string): Command => ({ file: tool, args: ['--file', 'kscreenlockerrc', '--group', 'Daemon', '--key', key, '--default', fallback] }),
};

/** GVariant text: "true", "uint32 300", "300". */
export function parseGVariant(stdout: string): boolean | number | undefined {
  const t = stdout.trim();
  if (t === 'true' || t === 'false') return t === 'true';
  const m = /^(?:u?int\d+\s+)?(\d+)$/.exec(t);
  return m ? Number(m[1]) : undefined;
}

const GNOME_REMEDY = 'Settings → Privacy → Screen Lock: turn on "Automatic Screen Lock" and set "Blank Screen Delay" (Power) to 15 minutes or less.';
const KDE_REMEDY = 'System Settings → Screen Locking: turn on "Lock screen automatically" after 15 minutes or less.';

async function linux(ctx: PostureContext): Promise<PostureResult> {
  const desktop = [ctx.env.XDG_CURRENT_DESKTOP, ctx.env.DESKTOP_SESSION].filter(Boolean).join(':');
  if (ctx.privileged) {
    return result({ check: ID, title: TITLE, status: 'UNKNOWN', summary: 'The screen lock is a setting of each user.', why: 'this task runs as root, outside any desktop session; the user task reads the setting', evidence: [] });
  }
  if (!desktop) {
    // gsettings would answer its defaults even with no desktop at all: that would be a false PASS.
    return result({ check: ID, title: TITLE, status: 'UNKNOWN', summary: 'No desktop session is visible to this task.', why: 'XDG_CURRENT_DESKTOP and DESKTOP_SESSION are unset (no graphical session, or one this task cannot see)', evidence: ['XDG_CURRENT_DESKTOP: unset'],
      remedy: 'Nothing to do on a machine without a desktop; otherwise start the agent from your desktop session (device-trust-agent install).' });
  }
  if (/kde|plasma/i.test(desktop)) {
    for (const tool of ['kreadconfig6', 'kreadconfig5'] as const) {
      const auto = await tryRun(ctx, linuxLockCommands.kreadconfig(tool, 'Autolock', 'true'));
      if (auto.missing) continue;
      const timeout = await tryRun(ctx, linuxLockCommands.kreadconfig(tool, 'Timeout', '5'));
      const mins = Number(timeout.stdout.trim());
      return judgeLock({ lockEnabled: auto.code === 0 ? auto.stdout.trim() === 'true' : undefined, idleSeconds: Number.isFinite(mins) && timeout.code === 0 ? mins * 60 : undefined, max: ctx.options.screenLockMaxSeconds,
        evidence: [`${tool} kscreenlockerrc Daemon: Autolock=${auto.stdout.trim()}, Timeout=${timeout.stdout.trim()} min`], remedy: KDE_REMEDY, where: 'KDE' });
    }
  }
  if (!/gnome|unity|ubuntu|cinnamon|budgie|pantheon/i.test(desktop)) {
    return result({ check: ID, title: TITLE, status: 'UNKNOWN', summary: `The screen lock of the ${desktop} desktop is not read by this agent.`, why: `${desktop} keeps its screen-lock setting where this check does not look (GNOME and KDE are read)`, evidence: [`XDG_CURRENT_DESKTOP: ${desktop}`],
      remedy: 'Set your desktop to lock the screen after 15 minutes or less; ask IT whether it counts.' });
  }
  const lock = await tryRun(ctx, linuxLockCommands.gsettings('org.gnome.desktop.screensaver', 'lock-enabled'));
  if (lock.missing || lock.code !== 0) {
    return result({ check: ID, title: TITLE, status: 'UNKNOWN', summary: 'No desktop screen-lock setting was found.', why: lock.missing ? 'gsettings is not installed and this is not a KDE session (a desktop without GNOME/KDE settings, or no desktop at all)' : `the GNOME settings schema did not answer: ${firstLine(lock.stderr)}`,
      evidence: [`gsettings get org.gnome.desktop.screensaver lock-enabled: ${lock.missing ? 'not installed' : firstLine(lock.stderr) || `exit ${lock.code}`}`], remedy: 'Set your desktop to lock the screen after 15 minutes or less, or ask IT which desktop settings count.' });
  }
  const idle = await tryRun(ctx, linuxLockCommands.gsettings('org.gnome.desktop.session', 'idle-delay'));
  const delay = await tryRun(ctx, linuxLockCommands.gsettings('org.gnome.desktop.screensaver', 'lock-delay'));
  const enabled = parseGVariant(lock.stdout);
  const idleS = idle.code === 0 ? parseGVariant(idle.stdout) : undefined;
  const delayS = delay.code === 0 ? parseGVariant(delay.stdout) : undefined;
  return judgeLock({
    lockEnabled: typeof enabled === 'boolean' ? enabled : undefined,
    idleSeconds: typeof idleS === 'number' ? idleS : undefined,
    ...(typeof delayS === 'number' ? { lockDelaySeconds: delayS } : {}),
    max: ctx.options.screenLockMaxSeconds,
    evidence: [`gsettings: lock-enabled=${lock.stdout.trim()}, idle-delay=${idle.stdout.trim() || '?'}, lock-delay=${delay.stdout.trim() || '?'}`],
    remedy: GNOME_REMEDY,
    where: 'GNOME',
  });
}

// ---------------------------------------------------------------- Windows: policy, then the user's own setting

/**
 * Machine policy "Interactive logon: Machine inactivity limit" (InactivityTimeoutSecs) locks by itself; otherwise
 * the secure screen saver decides, Group Policy (HKCU\Software\Policies) over the user's own Control Panel values.
 * A screen saver must also be CHOSEN (issue 25.6): SCRNSAVE.EXE names it (Group Policy "Force specific screen
 * saver", or the user's choice); with "(None)" chosen Windows removes the value while ScreenSaveActive may stay 1,
 * and then nothing starts, so nothing locks ("Once a screen saver is chosen, Windows monitors keystrokes and mouse
 * movements and then starts the screen saver after a period of inactivity": learn.microsoft.com/windows/win32/lwef/
 * screen-saver-library; the SCRNSAVE.EXE value: Sigma rule proc_creation_win_reg_screensaver, atomic-red-team T1546.002).
 */
export const win32LockScripts = {
  settings: [
    "$m = Get-ItemProperty -LiteralPath 'HKLM:\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Policies\\System' -ErrorAction SilentlyContinue | Select-Object InactivityTimeoutSecs",
    "$p = Get-ItemProperty -LiteralPath 'HKCU:\\Software\\Policies\\Microsoft\\Windows\\Control Panel\\Desktop' -ErrorAction SilentlyContinue | Select-Object ScreenSaveActive, ScreenSaverIsSecure, ScreenSaveTimeOut, 'SCRNSAVE.EXE'",
    "$u = Get-ItemProperty -LiteralPath 'HKCU:\\Control Panel\\Desktop' -ErrorAction SilentlyContinue | Select-Object ScreenSaveActive, ScreenSaverIsSecure, ScreenSaveTimeOut, 'SCRNSAVE.EXE'",
    '@{ machine = $m; policy = $p; user = $u } | ConvertTo-Json -Compress',
  ].join('\n'),
};
export const win32LockCommands = { settings: (): Command => postureCommand(win32LockScripts.settings) };

type SaverValues = { ScreenSaveActive?: string | number | null; ScreenSaverIsSecure?: string | number | null; ScreenSaveTimeOut?: string | number | null; 'SCRNSAVE.EXE'?: string | null } | null;

export function judgeWin32Lock(stdout: string, max: number): PostureResult {
  const j = parseJsonOr<{ machine?: { InactivityTimeoutSecs?: number | null } | null; policy?: SaverValues; user?: SaverValues }>(stdout.trim());
  const remedy = 'Settings → Personalization → Lock screen → Screen saver: choose one, set "Wait" to 15 minutes or less and tick "On resume, display logon screen".';
  if (!j) return result({ check: ID, title: TITLE, status: 'UNKNOWN', summary: 'The screen-lock settings could not be read.', why: 'the registry query gave no JSON', evidence: [], remedy: 'Ask IT to check the screen lock on this computer.' });
  const evidence: string[] = [];
  const limit = j.machine?.InactivityTimeoutSecs;
  if (typeof limit === 'number' && limit > 0) {
    evidence.push(`HKLM …\\Policies\\System InactivityTimeoutSecs=${limit}`);
    if (limit <= max) return judgeLock({ lockEnabled: true, idleSeconds: limit, max, evidence, remedy, where: 'machine policy' });
  }
  const pick = (k: 'ScreenSaveActive' | 'ScreenSaverIsSecure' | 'ScreenSaveTimeOut') => {
    const v = j.policy?.[k] ?? j.user?.[k];
    return v === null || v === undefined || v === '' ? undefined : Number(v);
  };
  const active = pick('ScreenSaveActive');
  const secure = pick('ScreenSaverIsSecure');
  const timeout = pick('ScreenSaveTimeOut');
  const saver = (j.policy?.['SCRNSAVE.EXE'] || j.user?.['SCRNSAVE.EXE'] || '').trim();
  evidence.push(`screen saver (${j.policy?.ScreenSaveActive != null ? 'Group Policy' : 'user setting'}): ${saver ? `SCRNSAVE.EXE=${saver}` : 'none chosen (SCRNSAVE.EXE unset)'}, active=${active ?? 'unset'}, secure=${secure ?? 'unset'}, timeout=${timeout ?? 'unset'} s`);
  if (!saver) return result({ check: ID, title: TITLE, status: 'FAIL', summary: 'No screen saver is chosen ("(None)"), so the screen does not lock when the computer is idle.', evidence, facts: { lockEnabled: false, maxSeconds: max }, remedy });
  if (active !== 1 || secure !== 1) return result({ check: ID, title: TITLE, status: 'FAIL', summary: active !== 1 ? 'No screen saver turns on when the computer is idle, so the screen does not lock.' : 'The screen saver does not ask for the password on resume.', evidence, facts: { lockEnabled: false, maxSeconds: max }, remedy });
  return judgeLock({ lockEnabled: true, idleSeconds: timeout, max, evidence, remedy, where: 'screen saver' });
}

async function win32(ctx: PostureContext): Promise<PostureResult> {
  const r = await tryRun(ctx, win32LockCommands.settings());
  const fail = psFailure(r);
  if (fail) return result({ check: ID, title: TITLE, status: 'UNKNOWN', summary: 'The screen-lock settings could not be read.', why: `the registry query failed: ${fail.error}${hex(fail.hresult)}`, evidence: [], remedy: 'Ask IT to check the screen lock on this computer.' });
  return judgeWin32Lock(r.stdout, ctx.options.screenLockMaxSeconds);
}

// ---------------------------------------------------------------- macOS: idle time and the password delay

export const darwinLockCommands = {
  /** Seconds of idle before the screen saver (per host); an unset value means the default of 20 minutes. */
  idleTime: (): Command => ({ file: '/usr/bin/defaults', args: ['-currentHost', 'read', 'com.apple.screensaver', 'idleTime'] }),
  /**
   * "screenLock delay is N seconds" / "screenLock delay is immediate" / "screenLock is off" (on stderr, with the log
   * prefix; not localized). "immediate" is what `sysadminctl -screenLock immediate` (CIS macOS 13/14 benchmark 2.x)
   * leaves, printed after "delay is" (issue 25.11); "screenLock is immediate" is accepted too.
   */
  screenLock: (): Command => ({ file: '/usr/sbin/sysadminctl', args: ['-screenLock', 'status'] }),
};

export function parseSysadminctlLock(text: string): { enabled: boolean; delay: number } | undefined {
  if (/screenLock is off/i.test(text)) return { enabled: false, delay: 0 };
  if (/screenLock (?:delay )?is immediate/i.test(text)) return { enabled: true, delay: 0 };
  const m = /screenLock delay is (\d+) seconds/i.exec(text);
  return m ? { enabled: true, delay: Number(m[1]) } : undefined;
}

export function judgeDarwinLock(idle: { code: number; stdout: string }, lock: { stdout: string; stderr: string }, max: number): PostureResult {
  const idleS = idle.code === 0 && /^\d+$/.test(idle.stdout.trim()) ? Number(idle.stdout.trim()) : 1200;
  const parsed = parseSysadminctlLock(`${lock.stdout}\n${lock.stderr}`);
  const evidence = [`screensaver idleTime: ${idle.code === 0 ? idle.stdout.trim() : 'unset (default 1200)'} s`, `sysadminctl -screenLock status: ${firstLine(lock.stderr) || firstLine(lock.stdout)}`];
  return judgeLock({ lockEnabled: parsed?.enabled, idleSeconds: idleS, ...(parsed ? { lockDelaySeconds: parsed.delay } : {}), max, evidence, where: 'macOS',
    remedy: 'System Settings → Lock Screen: set "Start Screen Saver when inactive" to 15 minutes or less and "Require password after screen saver begins" to "Immediately".' });
}

async function darwin(ctx: PostureContext): Promise<PostureResult> {
  const idle = await tryRun(ctx, darwinLockCommands.idleTime());
  const lock = await tryRun(ctx, darwinLockCommands.screenLock());
  return judgeDarwinLock(idle, lock, ctx.options.screenLockMaxSeconds);
}

export const screenLock: PostureCheck = {
  id: ID,
  title: TITLE,
  run: (ctx) => (ctx.platform === 'win32' ? win32(ctx) : ctx.platform === 'darwin' ? darwin(ctx) : linux(ctx)),
};
