/**
 * Secrets at rest through Electron's safeStorage (DPAPI on Windows, the Keychain on macOS, the Secret
 * Service or KWallet on Linux): encrypted blobs in an owner-only directory of the state directory. The shell
 * puts it in the context it hands the core (core/context.ts), so diagnostics read the admin API token from here. The
 * plain-text fallback Chromium uses on Linux without a keyring is refused (secret-policy.ts).
 */
import fs from 'node:fs';
import path from 'node:path';
import { safeStorage } from 'electron';
import { AgentError } from '../base/errors.js';
import { ensurePrivateDir, writeFileAtomic } from '../base/fsutil.js';
import { keyringUnavailable, type SecretStore } from '../core/secrets/index.js';
import { safeStorageProblem } from './secret-policy.js';

/** Entry names are file names here: the core's `admin-api-token@host:port` and the like, nothing that climbs. */
const NAME = /^[A-Za-z0-9][A-Za-z0-9._@:+-]{0,200}$/;

export class SafeStorageSecretStore implements SecretStore {
  readonly description: string;
  private readonly dir: string;

  constructor(stateDir: string) {
    this.dir = path.join(stateDir, 'secrets');
    const backend = process.platform === 'linux' ? safeStorage.getSelectedStorageBackend() : undefined;
    this.description = `Electron safeStorage${backend ? ` (${backend})` : ''}`;
  }

  private file(name: string): string {
    if (!NAME.test(name) || name.includes('..')) throw new AgentError('internal', 'SECRET_NAME', `"${name}" is not a valid secret name.`);
    const problem = safeStorageProblem(process.platform, safeStorage.isEncryptionAvailable(), process.platform === 'linux' ? safeStorage.getSelectedStorageBackend() : undefined);
    if (problem) throw keyringUnavailable(this.description, problem);
    // ':' is not allowed in Windows file names.
    return path.join(this.dir, `${name.replace(/:/g, '_')}.bin`);
  }

  async get(name: string): Promise<string | undefined> {
    const file = this.file(name);
    let blob: Buffer;
    try {
      blob = fs.readFileSync(file);
    } catch {
      return undefined;
    }
    return safeStorage.decryptString(blob);
  }

  async set(name: string, value: string): Promise<void> {
    const file = this.file(name);
    ensurePrivateDir(this.dir);
    writeFileAtomic(file, safeStorage.encryptString(value), 0o600);
  }

  async delete(name: string): Promise<boolean> {
    const file = this.file(name);
    const existed = fs.existsSync(file);
    fs.rmSync(file, { force: true });
    return existed;
  }
}
