import { AgentError } from '../../base/errors.js';

/**
 * Where the agent keeps secrets it must reuse (today: the org admin API token that reads agent status).
 * Always the operating system's protected store — never a plain file. Under plain Node that is the OS keyring
 * (keyring.ts); the Electron shell hands in its own (safeStorage). The root picks: core/context.ts.
 */
export interface SecretStore {
  /** For messages: "the OS keyring (Secret Service)". */
  readonly description: string;
  /** The secret, or undefined when none is stored. Throws KEYRING_UNAVAILABLE when the store cannot be used. */
  get(name: string): Promise<string | undefined>;
  set(name: string, value: string): Promise<void>;
  /** True when something was removed. */
  delete(name: string): Promise<boolean>;
}

export const KEYRING_REMEDY_LINUX =
  'Start a Secret Service (GNOME Keyring or KeePassXC) in the desktop session and unlock it. The agent never keeps the token in a plain file instead.';

export function keyringUnavailable(description: string, why: string): AgentError {
  return new AgentError('local', 'KEYRING_UNAVAILABLE', `The OS keyring (${description}) cannot be used: ${why}.`,
    process.platform === 'linux' ? KEYRING_REMEDY_LINUX : 'Sign in to a desktop session whose keychain/credential store is unlocked, then try again.');
}

/** The keyring entry name of the admin API token for one org (several orgs can be diagnosed from one machine). */
export function adminTokenName(orgUrl: string): string {
  let host = orgUrl;
  try {
    host = new URL(orgUrl).host;
  } catch {
    /* keep the raw string */
  }
  return `admin-api-token@${host}`;
}
