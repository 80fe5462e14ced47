/**
 * RFC 5424 syslog messages for SIEMs: the event ID as MSGID and in structured data, with the agent's named
 * state, the device ID, the outcome and the correlation ID, so a SIEM can count, alert and join on fields
 * instead of parsing sentences. Everything passes through `redact` and is made one printable line.
 *
 * SD-ID `dta@32473`: 32473 is the private enterprise number RFC 5612 reserves for examples and documentation;
 * a deployment that registers its own PEN changes SD_ID (one place).
 */
import fs from 'node:fs';
import os from 'node:os';
import { AGENT_VERSION } from '../../base/version.js';
import { redact } from '../../base/safe-text.js';
import { stateFile } from '../state/state.js';

export const SD_ID = 'dta@32473';
export const APP_NAME = 'device-trust-agent';
const FACILITY_USER = 1;
const SEVERITY = { info: 6, warning: 4, error: 3 } as const;

export interface SyslogEvent {
  time: string;
  id: number;
  level: 'info' | 'warning' | 'error';
  title: string;
  message: string;
  task?: string | undefined;
  data?: Record<string, unknown> | undefined;
}

/** Which outcome an event reports (the SIEM's `outcome` field). */
const OUTCOMES: Record<number, string> = {
  1000: 'enrolled', 1001: 'renewed', 1002: 'nothing-to-do', 1003: 'configured',
  2000: 'retry-later', 2001: 'retry-later', 2002: 'rejected', 2003: 'bad-answer', 2004: 'local', 2005: 'config', 2099: 'internal',
};

/** The device ID and the last recorded named state, read from state.json without side effects. */
export function deviceContext(stateDir: string): { deviceId?: string; state?: string } {
  try {
    const raw = JSON.parse(fs.readFileSync(stateFile(stateDir), 'utf8')) as { deviceId?: unknown; schedule?: { state?: unknown } };
    return {
      ...(typeof raw.deviceId === 'string' ? { deviceId: raw.deviceId } : {}),
      ...(typeof raw.schedule?.state === 'string' ? { state: raw.schedule.state } : {}),
    };
  } catch {
    return {};
  }
}

/** The structured-data parameters of an event (strings, redacted, bounded). */
export function structuredData(e: SyslogEvent, ctx: { deviceId?: string | undefined; state?: string | undefined }): Record<string, string> {
  const d = e.data ?? {};
  const str = (v: unknown) => (typeof v === 'string' || typeof v === 'number' ? String(v) : undefined);
  const state = e.id === 1300 || e.id === 1301 ? str(d.to) : ctx.state;
  const out: Record<string, string> = { eventId: String(e.id), level: e.level };
  if (e.task) out.task = e.task;
  if (state) out.state = state;
  if (ctx.deviceId) out.deviceId = ctx.deviceId;
  const outcome = OUTCOMES[e.id];
  if (outcome) out.outcome = outcome;
  const code = str(d.code);
  if (code) out.code = code;
  for (const k of ['correlationId', 'requestId', 'phase', 'serverCode'] as const) {
    const v = str(d[k]);
    if (v) out[k] = v;
  }
  for (const k of Object.keys(out)) out[k] = printable(redact(out[k]!), 256);
  return out;
}

/** One line of printable text (control characters become spaces), at most `max` characters. */
function printable(s: string, max: number): string {
  // eslint-disable-next-line no-control-regex
  const t = s.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]+/g, ' ');
  return t.length > max ? `${t.slice(0, max - 1)}…` : t;
}

/** PARAM-VALUE escaping (RFC 5424 §6.3.3): `"`, `\` and `]` are escaped with a backslash. */
export function escapeParamValue(v: string): string {
  return v.replace(/[\\"\]]/g, (c) => `\\${c}`);
}

/** A header field: PRINTUSASCII without spaces, at most `max` characters, "-" when empty. */
function headerField(s: string | undefined, max: number): string {
  const t = (s ?? '').replace(/[^\x21-\x7e]/g, '').slice(0, max);
  return t || '-';
}

export function formatRfc5424(e: SyslogEvent, ctx: { deviceId?: string | undefined; state?: string | undefined; hostname?: string; pid?: number } = {}): string {
  const pri = FACILITY_USER * 8 + SEVERITY[e.level];
  const time = Number.isFinite(Date.parse(e.time)) ? new Date(e.time).toISOString() : new Date().toISOString();
  const sd = structuredData(e, ctx);
  const params = Object.entries(sd).map(([k, v]) => `${k}="${escapeParamValue(v)}"`).join(' ');
  const msg = printable(redact(`${e.title}: ${e.message}`), 4000);
  return `<${pri}>1 ${time} ${headerField(ctx.hostname ?? os.hostname(), 255)} ${APP_NAME} ${headerField(String(ctx.pid ?? process.pid), 128)} ${headerField(String(e.id), 32)} [${SD_ID} ${params}][origin software="${APP_NAME}" swVersion="${escapeParamValue(AGENT_VERSION)}"] ${msg}`;
}

/** RFC 5425 / RFC 6587 octet counting: `MSG-LEN SP SYSLOG-MSG`, the length in bytes. */
export function octetFrame(message: string): string {
  return `${Buffer.byteLength(message, 'utf8')} ${message}`;
}
