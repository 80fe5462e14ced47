import type { Config } from '../config.js';
import { rootCertificates } from '../net/tls-roots.js';
import type { EventSinks } from '../context.js';
import { SyslogForwarder } from './syslog-forwarder.js';
import fs from 'node:fs';

interface Active { key: string; forwarder: SyslogForwarder; remove: () => void }
/** The forwarder of each context's sinks (a context's, not the process's: two contexts forward apart). */
const activeFor = new WeakMap<EventSinks, Active>();

/**
 * Sends every event of a context (its sinks) to the configured remote collector (syslogRemote), through the
 * spool. Called by the composition roots once the configuration is loaded; a second call with the same settings
 * is a no-op, with other settings it replaces the forwarder. Returns the forwarder (tests flush it).
 */
export function configureEventForwarding(sinks: EventSinks, config: Pick<Config, 'syslogRemote' | 'syslogCaFile' | 'tlsCaFile' | 'stateDir'>): SyslogForwarder | undefined {
  const key = `${config.syslogRemote ?? ''}|${config.stateDir}|${config.syslogCaFile ?? ''}`;
  const active = activeFor.get(sinks);
  if (active?.key === key) return active.forwarder;
  active?.remove();
  activeFor.delete(sinks);
  if (!config.syslogRemote) return undefined;
  let ca: string[] | undefined;
  try {
    ca = [...rootCertificates(config.tlsCaFile), ...(config.syslogCaFile ? [fs.readFileSync(config.syslogCaFile, 'utf8')] : [])];
  } catch {
    ca = undefined; // the TLS handshake then fails verification and the spool keeps the messages
  }
  const forwarder = new SyslogForwarder({ url: config.syslogRemote, stateDir: config.stateDir, ...(ca ? { ca } : {}) });
  const remove = sinks.add((e) => forwarder.enqueue({ time: e.time ?? new Date().toISOString(), id: e.id, level: e.level, title: e.title, message: e.message, task: e.task, data: e.data }));
  activeFor.set(sinks, { key, forwarder, remove });
  // Whatever an earlier process left in the spool goes out now, not only with the next event.
  void forwarder.flush();
  return forwarder;
}
