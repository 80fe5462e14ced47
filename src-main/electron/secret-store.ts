/**
 * Secrets at rest through Electron's safeStorage (DPAPI on Windows, the Keychain on macOS, the Secret
 * Service or KWallet on Linux), encrypted blobs in an owner-only directory of the state directory. The
 * plain-text fallback Chromium uses on Linux without a keyring is refused (secret-policy.ts).
 */
import fs from 'node:fs';
import path from 'node:path';
import { safeStorage } from 'electron';
import { AgentError } from '../core/errors.js';
import { ensurePrivateDir, writeFileAtomic } from '../core/fsutil.js';
import type { SecretStore } from '../ipc/host.js';
import { safeStorageProblem } from './secret-policy.js';

const NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;

export class SafeStorageSecretStore implements SecretStore {
  readonly description: string;
  private readonly dir: string;

  constructor(stateDir: string) {
    this.dir = path.join(stateDir, 'secrets');
    const backend = process.platform === 'linux' ? safeStorage.getSelectedStorageBackend() : undefined;
    this.description = `Electron safeStorage${backend ? ` (${backend})` : ''}`;
  }

  private check(name: string): string {
    if (!NAME.test(name)) throw new AgentError('internal', 'SECRET_NAME', `"${name}" is not a valid secret name.`);
    const problem = safeStorageProblem(process.platform, safeStorage.isEncryptionAvailable(), process.platform === 'linux' ? safeStorage.getSelectedStorageBackend() : undefined);
    if (problem) throw new AgentError('local', 'KEYRING_UNAVAILABLE', problem, 'On Linux: install and start gnome-keyring (or KWallet) in the desktop session.');
    return path.join(this.dir, `${name}.bin`);
  }

  async get(name: string): Promise<string | undefined> {
    const file = this.check(name);
    let blob: Buffer;
    try {
      blob = fs.readFileSync(file);
    } catch {
      return undefined;
    }
    return safeStorage.decryptString(blob);
  }

  async set(name: string, value: string): Promise<void> {
    const file = this.check(name);
    ensurePrivateDir(this.dir);
    writeFileAtomic(file, safeStorage.encryptString(value), 0o600);
  }

  async delete(name: string): Promise<void> {
    fs.rmSync(this.check(name), { force: true });
  }
}
