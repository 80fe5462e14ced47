import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import type { EventSink } from '../platform/types.js';
import { ensurePrivateDir, fsyncDir } from '../base/fsutil.js';
import { deviceContext, structuredData } from './fleet/syslog.js';
import { safeJson, safeText } from '../base/safe-text.js';
import { EventSinks } from './context.js';

/**
 * The event catalogue: one stable ID per kind of event. IDs never change meaning; new ones are added.
 * 1000–1099 success, 1100–1199 findings about the certificate, 1200–1299 diagnostics and health,
 * 1300–1399 scheduler states, 2000–2099 failures. The event table in docs/OPERATORS.md is checked against the same list
 * (keep them in step).
 */
export const EVENTS = {
  ENROLLED: { id: 1000, level: 'info', title: 'Certificate enrolled' },
  RENEWED: { id: 1001, level: 'info', title: 'Certificate renewed' },
  NOTHING_TO_DO: { id: 1002, level: 'info', title: 'Valid certificate present; nothing to do' },
  BROWSERS_CONFIGURED: { id: 1003, level: 'info', title: 'Browsers configured to present the certificate' },
  FORCED_RENEWAL: { id: 1004, level: 'info', title: 'Forced renewal requested' },
  CERT_REMOVED: { id: 1005, level: 'info', title: 'Certificate removed on request (uninstall)' },
  BROWSER_SETUP_REMOVED: { id: 1006, level: 'info', title: 'Browser setup removed (uninstall)' },
  REVOKED_FOUND: { id: 1100, level: 'error', title: 'Installed certificate is revoked' },
  EXPIRED_FOUND: { id: 1101, level: 'warning', title: 'Installed certificate has expired' },
  DUPLICATES_REMOVED: { id: 1102, level: 'warning', title: 'Extra device-trust certificates removed' },
  KEY_MISSING: { id: 1103, level: 'error', title: 'Private key of the installed certificate is missing' },
  STATE_RECOVERED: { id: 1104, level: 'warning', title: 'Corrupt state file moved aside and rebuilt' },
  BROWSER_SETUP_SKIPPED: { id: 1105, level: 'warning', title: 'Browser policy could not be written' },
  REVOCATION_UNCHECKED: { id: 1106, level: 'warning', title: 'Revocation could not be checked' },
  CERT_REINSTALLED: { id: 1107, level: 'warning', title: 'Missing certificate reinstalled from the agent\'s copy' },
  KEY_UNUSABLE: { id: 1108, level: 'error', title: 'Device key failed the signing test; re-enrolling' },
  METRICS_UNWRITABLE: { id: 1250, level: 'warning', title: 'Metrics file could not be written' },
  SYSLOG_SPOOL_DROPPED: { id: 1251, level: 'warning', title: 'Syslog spool full: oldest messages dropped' },
  HOST_PATTERNS_REFUSED: { id: 1150, level: 'warning', title: 'Host patterns from the server refused (not written to browser policy)' },
  CA_CHANGED: { id: 1151, level: 'error', title: 'The org\'s CA changed without a rollover the old CA vouches for' },
  TPM_NOT_THIS_ONE: { id: 1112, level: 'error', title: 'The device key is in a TPM token this machine\'s TPM cannot open (another TPM, or cleared)' },
  KEY_PROTECTION_CHANGED: { id: 1111, level: 'warning', title: 'Device key protection changed (TPM, software token, key file)' },
  DIAGNOSE_OK: { id: 1200, level: 'info', title: 'Diagnostics: no problem found' },
  DIAGNOSE_WARNINGS: { id: 1201, level: 'warning', title: 'Diagnostics: warnings found' },
  DIAGNOSE_ERRORS: { id: 1202, level: 'error', title: 'Diagnostics: problems found' },
  TARGET_ONLINE: { id: 1210, level: 'info', title: 'Monitored target is ONLINE' },
  TARGET_DEGRADED: { id: 1211, level: 'warning', title: 'Monitored target is DEGRADED' },
  TARGET_OFFLINE: { id: 1212, level: 'error', title: 'Monitored target is OFFLINE' },
  SIGN_IN_SEEN: { id: 1220, level: 'info', title: 'Successful user sign-in seen (IWA Negotiate)' },
  SUPPORT_BUNDLE_WRITTEN: { id: 1230, level: 'info', title: 'Support bundle written' },
  ADMIN_TOKEN_STORED: { id: 1240, level: 'info', title: 'Admin API token stored in the OS keyring' },
  ADMIN_TOKEN_REMOVED: { id: 1241, level: 'info', title: 'Admin API token removed from the OS keyring' },
  POSTURE_PASSING: { id: 1260, level: 'info', title: 'Posture check passes' },
  POSTURE_FAILING: { id: 1261, level: 'warning', title: 'Posture check fails' },
  POSTURE_UNKNOWN: { id: 1262, level: 'warning', title: 'Posture check cannot decide' },
  POSTURE_REPORTED: { id: 1263, level: 'info', title: 'Signed posture report accepted by the org' },
  POSTURE_NON_COMPLIANT: { id: 1264, level: 'warning', title: 'The org finds this device non-compliant' },
  STATE_CHANGED: { id: 1300, level: 'info', title: 'Agent state changed' },
  AGENT_STUCK: { id: 1301, level: 'error', title: 'Agent stuck: a person must act' },
  CLOCK_ANOMALY: { id: 1302, level: 'warning', title: 'Clock anomaly: a recorded time lies in the future; schedule recomputed' },
  CLOCK_SKEW_FOUND: { id: 1303, level: 'error', title: 'A server refused a request because of this device\'s clock' },
  RENEWAL_WINDOW_CLAMPED: { id: 1109, level: 'warning', title: 'Renewal window longer than the certificate\'s validity: clamped' },
  TEMP_SWEPT: { id: 1110, level: 'warning', title: 'Temporary files left by an interrupted run removed' },
  ORPHAN_KEYS_REMOVED: { id: 1120, level: 'warning', title: 'Device keys left without a certificate by an interrupted run removed from the key store' },
  RETRY_LATER: { id: 2000, level: 'warning', title: 'Enrollment postponed; will retry' },
  ORG_READ_ONLY: { id: 2001, level: 'warning', title: 'Org is read-only; will retry' },
  REJECTED: { id: 2002, level: 'error', title: 'Enrollment rejected' },
  BAD_ANSWER: { id: 2003, level: 'error', title: 'Server answer refused' },
  LOCAL_FAILURE: { id: 2004, level: 'error', title: 'Local failure (store, disk, Kerberos)' },
  CONFIG_ERROR: { id: 2005, level: 'error', title: 'Configuration error' },
  POSTURE_REPORT_FAILED: { id: 2030, level: 'warning', title: 'Posture report not delivered to the org' },
  TLS_INTERCEPTED: { id: 2020, level: 'error', title: 'TLS interception detected between this device and a server' },
  KEYRING_UNAVAILABLE: { id: 2006, level: 'warning', title: 'OS keyring unavailable' },
  ADMIN_TOKEN_REJECTED: { id: 2007, level: 'error', title: 'Admin API token refused by the org' },
  INTERNAL_ERROR: { id: 2099, level: 'error', title: 'Internal error' },
} as const;
export type EventKind = keyof typeof EVENTS;

export const LEVELS = ['info', 'warning', 'error'] as const;
export type EventLevel = (typeof LEVELS)[number];

/** One line of the log; lines are validated when read back (the file is a boundary: it may be torn or edited). */
export const AgentEventSchema = z.object({
  time: z.string(),
  id: z.number().int(),
  level: z.enum(LEVELS),
  title: z.string(),
  message: z.string(),
  task: z.string().optional(),
  data: z.record(z.string(), z.unknown()).optional(),
  truncated: z.boolean().optional(),
});
export type AgentEvent = z.infer<typeof AgentEventSchema>;

export interface EventQuery {
  since?: Date;
  until?: Date;
  /** Only these IDs. */
  ids?: number[];
  /** This level and worse (warning → warning and error). */
  minLevel?: EventLevel;
  /** Case-insensitive text searched in the title, message and data. */
  text?: string;
  /** The newest `limit` matches (still returned oldest first). */
  limit?: number;
}

export interface EventLogOptions {
  /** Size at which the current file is rotated (bytes). */
  maxFileBytes?: number;
  /** Rotated files kept besides the current one (events.1.jsonl is the newest of them). */
  keepFiles?: number;
  /**
   * Outside logs that get every event too: the context's (core/context.ts, the platform log and the forwarder,
   * read at each event), or a fixed list (`[]` for a reader of the log). Required: an event that should reach
   * the platform log must not silently miss it because a caller forgot.
   */
  sinks: EventSinks | readonly EventSink[];
  now?: () => Date;
}

export const EVENT_LOG_DEFAULTS = { maxFileBytes: 1024 * 1024, keepFiles: 3, maxLineBytes: 8 * 1024 } as const;

/** `5m`, `2h`, `7d` ago, or an ISO date/time. */
export function parseSince(text: string, now = new Date()): Date | undefined {
  const m = /^(\d+)\s*([smhdw])$/i.exec(text.trim());
  if (m) {
    const unit = { s: 1, m: 60, h: 3600, d: 86_400, w: 604_800 }[m[2]!.toLowerCase() as 's']!;
    return new Date(now.getTime() - Number(m[1]) * unit * 1000);
  }
  const t = Date.parse(text);
  return Number.isNaN(t) ? undefined : new Date(t);
}

/** `1000`, `1000,2001`, `2000-2099`. */
export function parseIds(text: string): number[] | undefined {
  const out: number[] = [];
  for (const part of text.split(',').map((p) => p.trim()).filter(Boolean)) {
    const range = /^(\d+)-(\d+)$/.exec(part);
    if (range) {
      const [a, b] = [Number(range[1]), Number(range[2])];
      if (b < a || b - a > 10_000) return undefined;
      for (let i = a; i <= b; i++) out.push(i);
    } else if (/^\d+$/.test(part)) out.push(Number(part));
    else return undefined;
  }
  return out.length ? out : undefined;
}

/**
 * The agent's own event log: JSON lines in the state directory, redacted before they touch the disk.
 *
 * Bounded and rotated: `events.jsonl` is rotated at `maxFileBytes` into `events.1.jsonl` … `events.N.jsonl`
 * (oldest dropped), so the log never takes more than (N + 1) × (maxFileBytes + one line).
 * Crash-safe: each event is one `write` of one line in append mode, then fsync. A line torn by a crash or a
 * full disk is skipped when reading, and the next write starts on a fresh line so it never merges with it.
 * Rotation between processes is not coordinated: a race can drop one rotated file, never the bound.
 */
export class EventLog {
  readonly file: string;
  private readonly maxFileBytes: number;
  private readonly keepFiles: number;
  private readonly sinks: EventSinks | readonly EventSink[];
  private readonly now: () => Date;

  constructor(readonly stateDir: string, private readonly task: string | undefined, opts: EventLogOptions) {
    this.file = path.join(stateDir, 'events.jsonl');
    this.maxFileBytes = opts.maxFileBytes ?? EVENT_LOG_DEFAULTS.maxFileBytes;
    this.keepFiles = opts.keepFiles ?? EVENT_LOG_DEFAULTS.keepFiles;
    this.sinks = opts.sinks;
    this.now = opts.now ?? (() => new Date());
  }

  /** Most bytes the log's files take together. */
  get boundBytes(): number {
    return (this.keepFiles + 1) * (this.maxFileBytes + EVENT_LOG_DEFAULTS.maxLineBytes);
  }

  /** Current file first, then rotated ones newest to oldest. */
  files(): string[] {
    return [this.file, ...Array.from({ length: this.keepFiles }, (_, i) => this.rotated(i + 1))];
  }

  private rotated(n: number): string {
    return path.join(this.stateDir, `events.${n}.jsonl`);
  }

  record(kind: EventKind, message: string, data?: Record<string, unknown>): AgentEvent {
    const def = EVENTS[kind];
    const event: AgentEvent = {
      time: this.now().toISOString(),
      id: def.id,
      level: def.level,
      title: def.title,
      message: safeText(message),
      ...(this.task ? { task: this.task } : {}),
      ...(data ? { data: safeJson(data) } : {}),
    };
    let line = JSON.stringify(event) + '\n';
    if (Buffer.byteLength(line) > EVENT_LOG_DEFAULTS.maxLineBytes) {
      // One runaway message must not push the log past its bound: keep the head, drop the data.
      const { data: _dropped, ...rest } = event;
      const short = { ...rest, message: event.message.slice(0, EVENT_LOG_DEFAULTS.maxLineBytes / 2), truncated: true };
      line = JSON.stringify(short) + '\n';
    }
    try {
      this.append(line);
    } catch {
      // The event log must never fail the task (a full disk is reported by the step that hit it).
    }
    // Outside logs get the structured fields too (RFC 5424 structured data: state, device ID, outcome, correlation).
    const sinks = this.sinks instanceof EventSinks ? this.sinks.list() : this.sinks;
    let sinkEvent: AgentEvent & { sd?: Record<string, string> } = event;
    try {
      if (sinks.length) sinkEvent = { ...event, sd: structuredData(event, deviceContext(this.stateDir)) };
    } catch {
      /* plain event */
    }
    for (const sink of sinks) {
      try {
        sink(sinkEvent);
      } catch {
        /* a missing platform log is not the task's problem */
      }
    }
    return event;
  }

  private append(line: string): void {
    ensurePrivateDir(this.stateDir);
    let fd = fs.openSync(this.file, 'a+', 0o600);
    try {
      let size = fs.fstatSync(fd).size;
      if (size > 0 && size + Buffer.byteLength(line) > this.maxFileBytes) {
        fs.closeSync(fd);
        fd = -1;
        this.rotate();
        fd = fs.openSync(this.file, 'a+', 0o600);
        size = fs.fstatSync(fd).size;
      }
      if (size > 0) {
        const last = Buffer.alloc(1);
        fs.readSync(fd, last, 0, 1, size - 1);
        if (last[0] !== 0x0a) line = '\n' + line; // the previous writer died mid-line
      }
      fs.writeSync(fd, line);
      fs.fsyncSync(fd);
    } finally {
      if (fd >= 0) fs.closeSync(fd);
    }
  }

  private rotate(): void {
    fs.rmSync(this.rotated(this.keepFiles), { force: true });
    for (let n = this.keepFiles - 1; n >= 1; n--) {
      try {
        fs.renameSync(this.rotated(n), this.rotated(n + 1));
      } catch {
        /* a generation that does not exist (yet, or taken by a concurrent rotation) */
      }
    }
    try {
      if (this.keepFiles > 0) fs.renameSync(this.file, this.rotated(1));
      else fs.rmSync(this.file, { force: true });
    } catch {
      /* another process rotated it first */
    }
    fsyncDir(this.stateDir);
  }

  /** Every readable event, oldest first; torn or foreign lines are skipped. */
  read(): AgentEvent[] {
    const out: AgentEvent[] = [];
    for (const file of [...this.files()].reverse()) {
      let text: string;
      try {
        text = fs.readFileSync(file, 'utf8');
      } catch {
        continue;
      }
      for (const line of text.split('\n')) {
        if (!line.trim()) continue;
        try {
          const parsed = AgentEventSchema.safeParse(JSON.parse(line));
          if (parsed.success) out.push(parsed.data);
        } catch {
          /* a torn line after a crash is skipped */
        }
      }
    }
    return out;
  }

  query(q: EventQuery = {}): AgentEvent[] {
    const minRank = q.minLevel ? LEVELS.indexOf(q.minLevel) : 0;
    const ids = q.ids ? new Set(q.ids) : undefined;
    const needle = q.text?.toLowerCase();
    const matches = this.read().filter((e) => {
      const t = Date.parse(e.time);
      if (q.since && !(t >= q.since.getTime())) return false;
      if (q.until && !(t <= q.until.getTime())) return false;
      if (ids && !ids.has(e.id)) return false;
      if (LEVELS.indexOf(e.level) < minRank) return false;
      if (needle && !`${e.title}\n${e.message}\n${e.data ? JSON.stringify(e.data) : ''}`.toLowerCase().includes(needle)) return false;
      return true;
    });
    return q.limit !== undefined ? matches.slice(Math.max(0, matches.length - q.limit)) : matches;
  }

  /** The newest event with one of these IDs. */
  latest(kinds: EventKind[]): AgentEvent | undefined {
    const ids = new Set<number>(kinds.map((k) => EVENTS[k].id));
    const all = this.read().filter((e) => ids.has(e.id));
    return all.sort((a, b) => Date.parse(a.time) - Date.parse(b.time)).at(-1);
  }
}
