import { AgentError, isAgentError } from '../../base/errors.js';
import { serverClockOffsetOf } from './server-time.js';

/**
 * A refusal the server attributes to time — a renewal token's `nbf`/`iat`/`exp`, SCEP `badTime`, a TLS
 * certificate "not yet valid" or "expired" — is about this device's clock, not about the device. It becomes
 * one named finding, CLOCK_SKEW, with the offset measured from the server's Date header (and the domain
 * controller's SNTP when the caller knows it), and is retried with backoff. It is never answered by enrolling
 * afresh: a new enrollment with the same clock fails the same way and costs the user an IWA sign-in each time.
 */

export const CLOCK_SKEW_CODE = 'CLOCK_SKEW';
/** Below this, the measured offset does not explain a time refusal on its own. */
const SIGNIFICANT_MS = 60_000;

const TIME_WORDS = /"(nbf|iat|exp)" claim|claim timestamp check failed|\bbadTime\b|not yet valid|token (is )?expired|jwt expired/i;
const TLS_TIME_CODES = /CERT_NOT_YET_VALID|CERT_HAS_EXPIRED|certificate is not yet valid|certificate has expired/i;

function chainText(e: unknown): string {
  const parts: string[] = [];
  let cur: unknown = e;
  for (let i = 0; i < 5 && cur; i++) {
    const c = cur as { code?: unknown; message?: unknown; cause?: unknown };
    parts.push(`${String(c.code ?? '')} ${String(c.message ?? '')}`);
    cur = c.cause;
  }
  return parts.join(' | ');
}

export function isTimeRefusal(e: unknown): boolean {
  if (!isAgentError(e)) return false;
  if (e.code === CLOCK_SKEW_CODE) return true;
  if (e.code === 'TLS_UNTRUSTED') return TLS_TIME_CODES.test(chainText(e));
  return (e.failure === 'rejected' || e.failure === 'bad-answer') && TIME_WORDS.test(e.message);
}

export function describeOffset(ms: number): string {
  const s = Math.abs(ms) / 1000;
  const amount = s < 120 ? `${Math.round(s)} s` : s < 7200 ? `${Math.round(s / 60)} min` : s < 172_800 ? `${(s / 3600).toFixed(1)} h` : `${Math.round(s / 86_400)} days`;
  return `${amount} ${ms < 0 ? 'ahead of' : 'behind'}`;
}

/**
 * The clock finding for `e`, or undefined when the refusal is not about time. `what` names the server
 * ("the org", "the SCEP CA"); `sntpOffsetMs` is the domain controller's clock minus ours, when measured.
 */
export function clockFinding(e: unknown, what: string, opts: { sntpOffsetMs?: number; localNow?: number } = {}): AgentError | undefined {
  if (!isTimeRefusal(e)) return undefined;
  const err = e as AgentError;
  if (err.code === CLOCK_SKEW_CODE) return err;
  const offset = serverClockOffsetOf(err);
  const local = new Date(opts.localNow ?? Date.now()).toISOString();
  const measured: string[] = [];
  if (offset !== undefined) measured.push(`this device's clock (${local}) is ${describeOffset(offset)} ${what}'s (its Date header)`);
  if (opts.sntpOffsetMs !== undefined) measured.push(`${describeOffset(opts.sntpOffsetMs)} the domain controller's (SNTP)`);
  const off = [offset, opts.sntpOffsetMs].filter((x): x is number => x !== undefined);
  const significant = off.some((x) => Math.abs(x) >= SIGNIFICANT_MS);
  const verdict = measured.length === 0
    ? `${what}'s clock could not be measured (no Date header)`
    : significant ? measured.join('; ') : `${measured.join('; ')} — within a minute, so the server's clock may be the one that is wrong`;
  const finding = new AgentError('retry-later', CLOCK_SKEW_CODE,
    `${cap(what)} refused the request because of time (${err.message.replace(/\s+$/, '')}). Clock check: ${verdict}. Nothing was changed on this device; the current certificate stays.`,
    "Fix this device's clock (turn on time synchronisation: timedatectl set-ntp true, w32tm /resync, or System Settings > Date & Time). The agent retries with backoff and renews once the clocks agree; it does not enroll afresh.",
    { cause: e });
  if (err.retryAfterMs) finding.retryAfterMs = err.retryAfterMs;
  if (offset !== undefined) (finding as AgentError & { serverClockOffsetMs?: number }).serverClockOffsetMs = offset;
  return finding;
}

function cap(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}
