import os from 'node:os';
import path from 'node:path';

/** Default locations, following the XDG base-directory conventions on Linux (other platforms: issue 7). */
export function defaultPaths(env: NodeJS.ProcessEnv = process.env) {
  const home = env.HOME || os.homedir();
  const stateHome = env.XDG_STATE_HOME || path.join(home, '.local', 'state');
  const configHome = env.XDG_CONFIG_HOME || path.join(home, '.config');
  return {
    stateDir: path.join(stateHome, 'device-trust-agent'),
    configFile: path.join(configHome, 'device-trust-agent', 'config.json'),
    // Chromium, Chrome and Firefox on Linux share the user's NSS database here.
    nssDbDir: path.join(home, '.pki', 'nssdb'),
    managedConfigDir: env.DTA_MANAGED_CONFIG_DIR || '/etc/device-trust-agent',
    browserPolicyDirs: [
      '/etc/chromium/policies/managed',
      '/etc/opt/chrome/policies/managed',
      '/etc/opt/edge/policies/managed',
    ],
  };
}
