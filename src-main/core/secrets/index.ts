import { KeyringSecretStore } from './keyring.js';
import type { SecretStore } from './types.js';

export { adminTokenName, keyringUnavailable, type SecretStore } from './types.js';

let override: SecretStore | undefined;

/**
 * The Electron shell calls this once at start-up with a store built on `safeStorage`; plain Node (the CLI)
 * uses the OS keyring. There is deliberately no file-backed fallback.
 */
export function useSecretStore(store: SecretStore | undefined): void {
  override = store;
}

export function openSecretStore(): SecretStore {
  return override ?? new KeyringSecretStore();
}
