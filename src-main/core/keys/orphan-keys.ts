import type { DeviceKeyStore } from '../../platform/keystore.js';
import { CredentialFiles } from '../certificates/credentials.js';
import { anotherPassRunning } from '../state/temp-sweep.js';

/**
 * Keys the agent made in a key store carry this label prefix and the time they were made. A pass killed between
 * generating a key and recording it (key-ref.json), or between recording it and filing its certificate and then
 * forgotten (remove-certificate), leaves a key no one will use: every pass and `remove-certificate` removes them.
 */
export const KEY_LABEL_PREFIX = 'device-trust-key';
/** While another live process holds the pass lock, a key younger than this may be its key in the making. */
const BUSY_MIN_AGE_MS = 10 * 60_000;

export function newKeyLabel(now: number): string {
  return `${KEY_LABEL_PREFIX} ${Math.floor(now / 1000)}`;
}

/** When the key was made, from its label; undefined for keys of earlier versions (labelled without a time). */
export function keyCreatedAt(label: string): number | undefined {
  const m = new RegExp(`^${KEY_LABEL_PREFIX} (\\d{9,11})$`).exec(label);
  return m ? Number(m[1]) * 1000 : undefined;
}

export interface OrphanSweepResult {
  removed: string[];
  /** Orphans kept because another pass is running and they are recent. */
  kept: string[];
}

/**
 * Removes our keys that have no certificate and no reference in the state directory (a pending SCEP request's key
 * has one). Never throws: a sweep must not fail a pass.
 */
export async function sweepOrphanKeys(keys: DeviceKeyStore | undefined, stateDir: string, now: number = Date.now()): Promise<OrphanSweepResult> {
  const out: OrphanSweepResult = { removed: [], kept: [] };
  if (!keys?.listOwnKeys) return out;
  try {
    const creds = new CredentialFiles(stateDir);
    const referenced = new Set(creds.list().map((tp) => creds.readKeyRef(tp)).filter((r): r is string => r !== undefined));
    const busy = anotherPassRunning(stateDir);
    // Keys without any id (earlier versions set it only after generation) are ours by label alone.
    if (!busy && keys.removeUnidentifiedKeys) {
      const n = await keys.removeUnidentifiedKeys(KEY_LABEL_PREFIX).catch(() => 0);
      for (let i = 0; i < n; i++) out.removed.push('(no id)');
    }
    for (const k of await keys.listOwnKeys(KEY_LABEL_PREFIX)) {
      if (k.hasCertificate || referenced.has(k.id)) continue;
      const made = keyCreatedAt(k.label);
      if (busy && (made === undefined || now - made < BUSY_MIN_AGE_MS)) {
        out.kept.push(k.id);
        continue;
      }
      try {
        await keys.remove(k.id);
        out.removed.push(k.id);
      } catch {
        /* next time */
      }
    }
  } catch {
    /* the store could not be read: next time */
  }
  return out;
}

export function orphanSweepMessage(removed: string[], where: string): string {
  return `Removed ${removed.length} device key${removed.length === 1 ? '' : 's'} without a certificate (${removed.map((id) => id.slice(0, 12)).join(', ')}) from the ${where}, left by an interrupted run.`;
}
