/** macOS: keys in the Secure Enclave (a CTK identity), else non-extractable in the login keychain. */
import { platformBasics, withBrowserSetup, type PlatformDeps } from './common.js';
import { MacBrowserSetup } from './darwin-browser.js';
import { MacDeviceCertificateStore, MacKeyStore } from './darwin-keys.js';
import { loginKeychain, MacKeychainStore } from './darwin-store.js';
import { unixDeviceChannel } from './device-channel-unix.js';
import type { Platform, PlatformSettings } from './types.js';

export function createDarwinPlatform(config: PlatformSettings, deps: PlatformDeps = {}): Platform {
  const platform = 'darwin';
  const { run, env, home, workDir } = platformBasics(config, platform, deps);
  const store = new MacKeychainStore({ keychain: loginKeychain(home), workDir, agentPath: process.execPath, run });
  // Keys are created in the Secure Enclave (a CTK identity), else non-extractable in the login keychain: no key.pem.
  const keys = new MacKeyStore({ skipTpm: config.skipTpm ?? false, workDir, keychain: store, keychainPath: loginKeychain(home), run });
  const device = new MacDeviceCertificateStore(store, keys);
  return { ...withBrowserSetup(platform, device, new MacBrowserSetup({ run, store, identities: () => device.list(), stateDir: config.stateDir })), keys, ...unixDeviceChannel(platform, env) };
}
