import os from 'node:os';
import path from 'node:path';

/**
 * Default locations: XDG base directories on Linux, %LOCALAPPDATA%/%APPDATA% on Windows, ~/Library on macOS.
 * The NSS database and the policy directories only matter on Linux; Windows and macOS use the OS store and
 * their own policy locations (see src-main/platform/).
 */
export function defaultPaths(env: NodeJS.ProcessEnv = process.env, platform: NodeJS.Platform = process.platform) {
  const home = env.HOME || env.USERPROFILE || os.homedir();
  let stateDir: string;
  let configFile: string;
  if (platform === 'win32') {
    const local = env.LOCALAPPDATA || path.join(home, 'AppData', 'Local');
    const roaming = env.APPDATA || path.join(home, 'AppData', 'Roaming');
    stateDir = path.join(local, 'DeviceTrustAgent');
    configFile = path.join(roaming, 'DeviceTrustAgent', 'config.json');
  } else if (platform === 'darwin') {
    stateDir = path.join(home, 'Library', 'Application Support', 'Device Trust Agent');
    configFile = path.join(home, 'Library', 'Application Support', 'Device Trust Agent', 'config.json');
  } else {
    stateDir = path.join(env.XDG_STATE_HOME || path.join(home, '.local', 'state'), 'device-trust-agent');
    configFile = path.join(env.XDG_CONFIG_HOME || path.join(home, '.config'), 'device-trust-agent', 'config.json');
  }
  return {
    home,
    stateDir,
    configFile,
    // Chromium, Chrome and (through the agent's copy into each profile) Firefox on Linux read the user's NSS database here.
    nssDbDir: path.join(home, '.pki', 'nssdb'),
    managedConfigDir: env.DTA_MANAGED_CONFIG_DIR && process.getuid?.() === 0 ? env.DTA_MANAGED_CONFIG_DIR : '/etc/device-trust-agent',
    browserPolicyDirs: [
      '/etc/chromium/policies/managed',
      '/etc/opt/chrome/policies/managed',
      '/etc/opt/edge/policies/managed',
    ],
    // Debian's firefox-esr and Mozilla's builds read /etc/firefox/policies/policies.json.
    firefoxPolicyDirs: ['/etc/firefox/policies'],
  };
}

/** The device task's state directory (root/SYSTEM) where the installer registers it; undefined elsewhere. */
export const DEVICE_STATE_DIRS: Partial<Record<NodeJS.Platform, string>> = {
  linux: '/var/lib/device-trust-agent',
  win32: 'C:\\ProgramData\\device-trust-agent',
  darwin: '/Library/Application Support/device-trust-agent',
};
