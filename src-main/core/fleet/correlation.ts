import crypto from 'node:crypto';

/**
 * Request IDs that let an admin find the server side of a device's failure. Every pass (one HttpClient) has a
 * W3C trace ID; every request has its own span ID. Each request carries both forms:
 *   traceparent: 00-<trace-id>-<span-id>-01        (W3C Trace Context)
 *   X-Request-ID: <trace-id>-<span-id>              (for servers and proxies that log only this header)
 * so a search for the trace ID (the "correlation ID" in status, events and the bundle) finds every request of
 * the pass, and a search for the full request ID finds the one that failed.
 */
export interface RequestIds {
  traceId: string;
  spanId: string;
  requestId: string;
  traceparent: string;
}

export function newTraceId(): string {
  // The all-zero ID is invalid in W3C Trace Context; 16 random bytes are never that in practice, but be exact.
  let id = crypto.randomBytes(16).toString('hex');
  while (/^0+$/.test(id)) id = crypto.randomBytes(16).toString('hex');
  return id;
}

export function requestIdsFor(traceId: string): RequestIds {
  let spanId = crypto.randomBytes(8).toString('hex');
  while (/^0+$/.test(spanId)) spanId = crypto.randomBytes(8).toString('hex');
  return { traceId, spanId, requestId: `${traceId}-${spanId}`, traceparent: `00-${traceId}-${spanId}-01` };
}

/** What the last request of a client was: recorded with a failure (status, events, support bundle). */
export interface LastExchange {
  requestId: string;
  /** "the org", "the IWA web app", "the CA". */
  what: string;
  host: string;
  method: string;
  /** HTTP status, when an answer came. */
  status?: number;
  /** The server's own error code (`errorCode` of an error answer), when it sent one. */
  serverCode?: string;
}

/** The server's error code from an error answer body, if it is the protocol's JSON error shape. */
export function serverErrorCode(body: Buffer): string | undefined {
  if (body.length === 0 || body.length > 64 * 1024) return undefined;
  try {
    const v = JSON.parse(body.toString('utf8')) as { errorCode?: unknown };
    return typeof v.errorCode === 'string' && /^[\w.:-]{1,64}$/.test(v.errorCode) ? v.errorCode : undefined;
  } catch {
    return undefined;
  }
}
