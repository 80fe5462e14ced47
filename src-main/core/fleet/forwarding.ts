import type { Config } from '../config.js';
import { addEventSink } from '../events.js';
import { rootCertificates } from '../net/tls-roots.js';
import { SyslogForwarder } from './syslog-forwarder.js';
import fs from 'node:fs';

let active: { key: string; forwarder: SyslogForwarder; remove: () => void } | undefined;

/**
 * Sends every event of this process to the configured remote collector (syslogRemote), through the spool.
 * Called by the composition roots once the configuration is loaded; a second call with the same settings is
 * a no-op, with other settings it replaces the forwarder. Returns the forwarder (tests flush it).
 */
export function configureEventForwarding(config: Pick<Config, 'syslogRemote' | 'syslogCaFile' | 'tlsCaFile' | 'stateDir'>): SyslogForwarder | undefined {
  const key = `${config.syslogRemote ?? ''}|${config.stateDir}|${config.syslogCaFile ?? ''}`;
  if (active?.key === key) return active.forwarder;
  active?.remove();
  active = undefined;
  if (!config.syslogRemote) return undefined;
  let ca: string[] | undefined;
  try {
    ca = [...rootCertificates(config.tlsCaFile), ...(config.syslogCaFile ? [fs.readFileSync(config.syslogCaFile, 'utf8')] : [])];
  } catch {
    ca = undefined; // the TLS handshake then fails verification and the spool keeps the messages
  }
  const forwarder = new SyslogForwarder({ url: config.syslogRemote, stateDir: config.stateDir, ...(ca ? { ca } : {}) });
  const remove = addEventSink((e) => forwarder.enqueue({ time: e.time ?? new Date().toISOString(), id: e.id, level: e.level, title: e.title, message: e.message, task: e.task, data: e.data }));
  active = { key, forwarder, remove };
  // Whatever an earlier process left in the spool goes out now, not only with the next event.
  void forwarder.flush();
  return forwarder;
}

/** The active forwarder's pending flush (the CLI waits for it, bounded by the forwarder's deadline). */
export function pendingForwarding(): Promise<unknown> {
  return active ? active.forwarder.flush() : Promise.resolve();
}
