import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { ensurePrivateDir, writeFileAtomic } from '../../base/fsutil.js';

/** The per-install random key of the settings hash, owner-only in the state directory (never in the bundle). */
export const SETTINGS_KEY_FILE = 'settings-hash.key';
const PREFIX = 'hmac-sha256:';

function installKey(stateDir: string): Buffer {
  const file = path.join(stateDir, SETTINGS_KEY_FILE);
  try {
    const k = fs.readFileSync(file);
    if (k.length >= 32) return k;
  } catch {
    /* first use: made below */
  }
  ensurePrivateDir(stateDir);
  const key = crypto.randomBytes(32);
  writeFileAtomic(file, key, 0o600);
  return key;
}

/**
 * A hash over settings that include a secret (the SCEP challenge), kept in state.json so a changed setting is
 * noticed without the secret being stored: keyed (HMAC-SHA-256) with a per-install random key, so the secret
 * cannot be guessed offline from a copy of state.json or a support bundle. `legacy` is the unkeyed SHA-256
 * earlier versions stored, recognised once so an upgrade neither loses a pending request nor lifts a hold.
 */
export function keyedSettingsHash(stateDir: string, parts: string[]): { current: string; legacy: string } {
  const text = parts.join('\n');
  return {
    current: PREFIX + crypto.createHmac('sha256', installKey(stateDir)).update(text).digest('hex'),
    legacy: crypto.createHash('sha256').update(text).digest('hex'),
  };
}
