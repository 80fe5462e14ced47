import { registerSecret } from '../../base/safe-text.js';
import { keyringUnavailable, type SecretStore } from './types.js';

/** The keyring service name every entry is filed under. */
export const KEYRING_SERVICE = 'device-trust-agent';

// The subset of @napi-rs/keyring used here, declared locally so that a missing native prebuild is a clear
// KEYRING_UNAVAILABLE instead of a crash at import time.
interface AsyncEntryLike {
  getPassword(): Promise<string | null | undefined>;
  setPassword(value: string): Promise<void>;
  deleteCredential(): Promise<boolean>;
}
interface KeyringModule {
  AsyncEntry: new (service: string, user: string, options?: { linux?: { store?: 'secret-service' | 'keyutils' } }) => AsyncEntryLike;
}

let loaded: Promise<KeyringModule> | undefined;
function loadModule(): Promise<KeyringModule> {
  loaded ??= import('@napi-rs/keyring') as unknown as Promise<KeyringModule>;
  return loaded;
}

/**
 * The OS keyring through @napi-rs/keyring: Windows Credential Manager, macOS Keychain, and on Linux the
 * Secret Service (GNOME Keyring, KWallet, KeePassXC) over D-Bus. On Linux the entry is pinned to the Secret
 * Service: the library's fallback, the kernel keyring, forgets everything at logout, so a token put there would
 * silently vanish.
 */
export class KeyringSecretStore implements SecretStore {
  readonly description: string;

  constructor(private readonly platform: NodeJS.Platform = process.platform) {
    this.description = platform === 'linux' ? 'Secret Service' : platform === 'darwin' ? 'macOS Keychain' : platform === 'win32' ? 'Windows Credential Manager' : platform;
  }

  private async entry(name: string): Promise<AsyncEntryLike> {
    let mod: KeyringModule;
    try {
      mod = await loadModule();
    } catch (e) {
      throw keyringUnavailable(this.description, `the keyring module could not be loaded (${(e as Error).message})`);
    }
    try {
      return new mod.AsyncEntry(KEYRING_SERVICE, name, this.platform === 'linux' ? { linux: { store: 'secret-service' } } : undefined);
    } catch (e) {
      throw this.unavailable(e);
    }
  }

  private unavailable(e: unknown): Error {
    const msg = (e as Error).message ?? String(e);
    const why = /DBUS_SESSION_BUS_ADDRESS|autolaunch|org\.freedesktop\.secrets|ServiceUnknown|platform storage|AccessDenied/i.test(msg)
      ? `no Secret Service is running or reachable on the D-Bus session bus (${msg})`
      : msg;
    return keyringUnavailable(this.description, why);
  }

  async get(name: string): Promise<string | undefined> {
    const entry = await this.entry(name);
    try {
      const value = (await entry.getPassword()) ?? undefined;
      // A secret read from the keyring never reaches a sink (base/safe-text.ts).
      registerSecret(value);
      return value;
    } catch (e) {
      if (/no (matching )?entry|NoEntry/i.test((e as Error).message)) return undefined;
      throw this.unavailable(e);
    }
  }

  async set(name: string, value: string): Promise<void> {
    const entry = await this.entry(name);
    try {
      await entry.setPassword(value);
    } catch (e) {
      throw this.unavailable(e);
    }
  }

  async delete(name: string): Promise<boolean> {
    const entry = await this.entry(name);
    try {
      return await entry.deleteCredential();
    } catch (e) {
      if (/no (matching )?entry|NoEntry/i.test((e as Error).message)) return false;
      throw this.unavailable(e);
    }
  }
}
