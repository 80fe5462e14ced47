import type { Platform } from '../../platform/types.js';
import type { PolicyResult } from '../../platform/types.js';
import type { LoadedConfig } from '../config.js';
import { CredentialFiles } from './credentials.js';
import { EventLog } from '../events.js';
import { orphanSweepMessage, sweepOrphanKeys } from '../keys/orphan-keys.js';
import { loadState, saveState } from '../state/state.js';
import type { EventSinks } from '../context.js';

export interface CertificateRemoval {
  removed: { id: string; serialNumber: string }[];
  /** Keys of ours left without a certificate (an interrupted enrollment, a pending request) removed from the key store. */
  keysRemoved: string[];
  store: string;
  copies: PolicyResult;
}

/**
 * Uninstall "on request": this user's device-trust certificates and keys leave the store, the agent's own key
 * files and the per-user copies (Firefox profiles); the state forgets them. Other certificates are not touched.
 */
export async function removeCertificates(loaded: LoadedConfig, platform: Platform, sinks: EventSinks): Promise<CertificateRemoval> {
  const { config } = loaded;
  const ours = (await platform.store.list()).filter((c) => c.info.issuerCN === config.issuerCN);
  for (const id of new Set(ours.map((c) => c.id))) await platform.store.remove(id);
  const creds = new CredentialFiles(config.stateDir);
  for (const tp of creds.list()) creds.remove(tp);
  // With the references gone, every key of ours without a certificate is an orphan (a pending request's included).
  const keysRemoved = (await sweepOrphanKeys(platform.keys, config.stateDir)).removed;
  if (keysRemoved.length) new EventLog(config.stateDir, 'user', { sinks }).record('ORPHAN_KEYS_REMOVED', orphanSweepMessage(keysRemoved, (await platform.keys!.info()).description));
  const { state } = loadState(config.stateDir);
  if (state.current) {
    const { current: _dropped, ...rest } = state;
    saveState(config.stateDir, rest);
  }
  const copies = await platform.syncCertificateCopies(config.issuerCN);
  const removed = ours.map((c) => ({ id: c.id, serialNumber: c.info.serialNumber }));
  new EventLog(config.stateDir, 'user', { sinks }).record('CERT_REMOVED',
    removed.length ? `Removed ${removed.map((r) => r.serialNumber).join(', ')} from ${platform.store.description}.` : `No device-trust certificate was in ${platform.store.description}.`,
    { removed: removed.map((r) => r.serialNumber) });
  return { removed, keysRemoved, store: platform.store.description, copies };
}

/** Uninstall: our browser policy entries go (machine-wide ones need root/administrator), others' stay. */
export async function removeBrowserSetup(loaded: LoadedConfig, platform: Platform, sinks: EventSinks): Promise<PolicyResult> {
  const res = await platform.removeBrowserSetup(loaded.config.issuerCN);
  try {
    new EventLog(loaded.config.stateDir, 'device', { sinks }).record('BROWSER_SETUP_REMOVED', `Browser setup removed from ${res.written.join(', ') || 'nowhere'}${res.skipped.length ? `; not removed: ${res.skipped.map((s) => `${s.dir} (${s.reason})`).join(', ')}` : ''}.`);
  } catch {
    /* an uninstall must not fail on the event log (e.g. a read-only state directory) */
  }
  return res;
}
