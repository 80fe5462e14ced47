import type { AgentError } from '../../base/errors.js';

/**
 * What a server's answer says about time: how long it asks us to stay away (Retry-After on 429/503, RFC 9110
 * §10.2.3: seconds or an HTTP date) and what its clock reads (the Date header), from which the offset of this
 * device's clock is measured when a refusal is about time.
 */

type Headers = Record<string, string | string[] | undefined>;

const first = (v: string | string[] | undefined) => (Array.isArray(v) ? v[0] : v);

/** Milliseconds the server asks us to wait, or undefined when absent, unreadable or not in the future. */
export function parseRetryAfter(value: string | undefined, now: number = Date.now()): number | undefined {
  if (!value) return undefined;
  const v = value.trim();
  if (/^\d{1,9}$/.test(v)) {
    const s = Number(v);
    return s > 0 ? s * 1000 : undefined;
  }
  const at = Date.parse(v);
  if (!Number.isFinite(at) || !/GMT$/i.test(v)) return undefined;
  return at > now ? at - now : undefined;
}

/** The server's clock minus ours, in ms, from its Date header (second resolution); undefined without one. */
export function serverClockOffset(headers: Headers, localNow: number = Date.now()): number | undefined {
  const d = first(headers['date']);
  if (!d) return undefined;
  const at = Date.parse(d);
  return Number.isFinite(at) ? at - localNow : undefined;
}

/** Carries the server's Retry-After (for retry-later answers) and its clock offset on the error. */
export function withServerTime(err: AgentError, status: number, headers: Headers, localNow: number = Date.now()): AgentError {
  if (err.failure === 'retry-later' && (status === 429 || status === 503)) {
    const ms = parseRetryAfter(first(headers['retry-after']), localNow);
    if (ms !== undefined) err.retryAfterMs = ms;
  }
  const offset = serverClockOffset(headers, localNow);
  if (offset !== undefined) (err as AgentError & { serverClockOffsetMs?: number }).serverClockOffsetMs = offset;
  return err;
}

export function serverClockOffsetOf(e: unknown): number | undefined {
  const v = (e as { serverClockOffsetMs?: unknown } | undefined)?.serverClockOffsetMs;
  return typeof v === 'number' ? v : undefined;
}
