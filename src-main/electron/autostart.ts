/**
 * Start at login. Windows and macOS have Electron's login-item API; on Linux the tray app writes an XDG
 * autostart entry. Only a packaged app registers itself (a development run would register the bare
 * Electron binary). Electron-free.
 */
import os from 'node:os';
import path from 'node:path';

export function linuxAutostartFile(env: NodeJS.ProcessEnv = process.env): string {
  const configHome = env.XDG_CONFIG_HOME || path.join(env.HOME || os.homedir(), '.config');
  return path.join(configHome, 'autostart', 'device-trust-agent-tray.desktop');
}

/** Quotes an Exec= argument as the Desktop Entry spec asks. */
function execArg(s: string): string {
  return /[\s"'\\$`]/.test(s) ? `"${s.replace(/(["`$\\])/g, '\\$1')}"` : s;
}

export function linuxAutostartEntry(execPath: string): string {
  return [
    '[Desktop Entry]',
    'Type=Application',
    'Name=Device Trust Agent',
    'Comment=Keeps this device trusted and shows what is wrong when it is not',
    `Exec=${execArg(execPath)} --hidden`,
    'Terminal=false',
    'X-GNOME-Autostart-enabled=true',
    '',
  ].join('\n');
}
