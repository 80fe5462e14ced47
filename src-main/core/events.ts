import fs from 'node:fs';
import path from 'node:path';
import { ensurePrivateDir } from './fsutil.js';
import { redact } from './redact.js';

/**
 * The event catalogue: one stable ID per kind of event. IDs never change meaning; new ones are added.
 * 1000–1099 success, 1100–1199 findings about the certificate, 1200–1299 scheduler states, 2000–2099 failures.
 */
export const EVENTS = {
  ENROLLED: { id: 1000, level: 'info', title: 'Certificate enrolled' },
  RENEWED: { id: 1001, level: 'info', title: 'Certificate renewed' },
  NOTHING_TO_DO: { id: 1002, level: 'info', title: 'Valid certificate present; nothing to do' },
  BROWSERS_CONFIGURED: { id: 1003, level: 'info', title: 'Browsers configured to present the certificate' },
  FORCED_RENEWAL: { id: 1004, level: 'info', title: 'Forced renewal requested' },
  REVOKED_FOUND: { id: 1100, level: 'error', title: 'Installed certificate is revoked' },
  EXPIRED_FOUND: { id: 1101, level: 'warning', title: 'Installed certificate has expired' },
  DUPLICATES_REMOVED: { id: 1102, level: 'warning', title: 'Extra device-trust certificates removed' },
  KEY_MISSING: { id: 1103, level: 'error', title: 'Private key of the installed certificate is missing' },
  STATE_RECOVERED: { id: 1104, level: 'warning', title: 'Corrupt state file moved aside and rebuilt' },
  BROWSER_SETUP_SKIPPED: { id: 1105, level: 'warning', title: 'Browser policy could not be written' },
  REVOCATION_UNCHECKED: { id: 1106, level: 'warning', title: 'Revocation could not be checked' },
  CERT_REINSTALLED: { id: 1107, level: 'warning', title: 'Missing certificate reinstalled from the agent\'s copy' },
  STATE_CHANGED: { id: 1200, level: 'info', title: 'Agent state changed' },
  AGENT_STUCK: { id: 1201, level: 'error', title: 'Agent stuck: a person must act' },
  RETRY_LATER: { id: 2000, level: 'warning', title: 'Enrollment postponed; will retry' },
  ORG_READ_ONLY: { id: 2001, level: 'warning', title: 'Org is read-only; will retry' },
  REJECTED: { id: 2002, level: 'error', title: 'Enrollment rejected' },
  BAD_ANSWER: { id: 2003, level: 'error', title: 'Server answer refused' },
  LOCAL_FAILURE: { id: 2004, level: 'error', title: 'Local failure (store, disk, Kerberos)' },
  CONFIG_ERROR: { id: 2005, level: 'error', title: 'Configuration error' },
  INTERNAL_ERROR: { id: 2099, level: 'error', title: 'Internal error' },
} as const;
export type EventKind = keyof typeof EVENTS;

export interface AgentEvent {
  time: string;
  id: number;
  level: 'info' | 'warning' | 'error';
  title: string;
  message: string;
  task?: string;
  data?: Record<string, unknown>;
}

/** The agent's own event log: JSON lines, appended with fsync, redacted before they touch the disk. */
export class EventLog {
  readonly file: string;

  constructor(stateDir: string, private readonly task?: string) {
    this.file = path.join(stateDir, 'events.jsonl');
  }

  record(kind: EventKind, message: string, data?: Record<string, unknown>): AgentEvent {
    const def = EVENTS[kind];
    const event: AgentEvent = {
      time: new Date().toISOString(),
      id: def.id,
      level: def.level,
      title: def.title,
      message: redact(message),
      ...(this.task ? { task: this.task } : {}),
      ...(data ? { data: JSON.parse(redact(JSON.stringify(data))) as Record<string, unknown> } : {}),
    };
    try {
      ensurePrivateDir(path.dirname(this.file));
      const fd = fs.openSync(this.file, 'a', 0o600);
      try {
        fs.writeSync(fd, JSON.stringify(event) + '\n');
        fs.fsyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
    } catch {
      // The event log must never fail the task (a full disk is reported by the step that hit it).
    }
    return event;
  }

  read(): AgentEvent[] {
    let text: string;
    try {
      text = fs.readFileSync(this.file, 'utf8');
    } catch {
      return [];
    }
    const out: AgentEvent[] = [];
    for (const line of text.split('\n')) {
      if (!line.trim()) continue;
      try {
        out.push(JSON.parse(line) as AgentEvent);
      } catch {
        /* a torn last line after a crash is skipped */
      }
    }
    return out;
  }
}
