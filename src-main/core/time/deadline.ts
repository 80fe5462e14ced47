/**
 * Deadlines for the whole of an exchange (docs/ADMINS.md "Deadlines"): one AbortSignal per exchange, and the error
 * a user sees when it fires.
 */
import { AgentError } from '../../base/errors.js';
import type { HttpClient } from '../net/http.js';

/** Rejects with the signal's reason when it aborts before `p` settles (`p` is left to its own timeouts). */
export function withDeadline<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

function cap(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

/** The error of an exchange that missed its deadline; `stage` says where it was stuck, when known. */
export function deadlineError(what: string, host: string, ms: number, stage: string | undefined, code = 'REQUEST_TIMEOUT'): AgentError {
  return new AgentError('retry-later', code,
    `${cap(what)} at ${host} did not complete its answer within the ${ms} ms deadline (connect, TLS, headers and body together)${stage ? `: ${stage}` : ''}; the request was abandoned and nothing was changed.`,
    'A slow or overloaded server, proxy or network link: the agent tries again later. If it persists, check the proxy and the network path to this server (device-trust-agent proxy-check).');
}

/** The overall deadline of one enrollment/renewal pass: it never holds the pass lock longer than this. */
export function passDeadlineError(ms: number): AgentError {
  return new AgentError('retry-later', 'PASS_TIMEOUT',
    `This pass did not finish within its ${Math.round(ms / 1000)} s deadline; it was stopped and nothing was changed by its unfinished steps.`,
    'The agent tries again later. If it persists, run device-trust-agent diagnose to see which server or proxy is slow.');
}

/** A pass may make this many requests' worth of deadlines (discovery, IWA tokens, enrollment, CRL, retries)… */
const PASS_REQUEST_BUDGET = 20;
/** …and never less than this, nor more than this plus the SCEP approval wait. */
const PASS_MIN_MS = 2 * 60_000;
const PASS_MAX_MS = 15 * 60_000;
/** Local steps (store, browser policy) get this long after the cut-off to finish before the pass is ended anyway. */
const PASS_GRACE_MS = 30_000;

export function passDeadlineMs(requestTimeoutMs: number, scepPendingWaitSeconds: number): number {
  return Math.min(PASS_MAX_MS, Math.max(PASS_MIN_MS, PASS_REQUEST_BUDGET * requestTimeoutMs)) + scepPendingWaitSeconds * 1000;
}

/**
 * The overall deadline of one pass, which runs under the pass lock: at the deadline every request under way is
 * ended and no new one starts (the pass then fails at its next network step, with nothing half-installed);
 * if local steps still have not returned after a grace period, the pass is ended so the lock is released.
 */
export function passDeadline(requestTimeoutMs: number, scepPendingWaitSeconds: number, http: HttpClient): { bound<T>(p: Promise<T>): Promise<T>; clear(): void } {
  const ms = passDeadlineMs(requestTimeoutMs, scepPendingWaitSeconds);
  const error = passDeadlineError(ms);
  const cut = setTimeout(() => http.cutOff(error), ms);
  let hard: NodeJS.Timeout | undefined;
  return {
    bound: <T>(p: Promise<T>) => Promise.race([p, new Promise<never>((_r, reject) => (hard = setTimeout(() => reject(error), ms + PASS_GRACE_MS)))]),
    clear: () => {
      clearTimeout(cut);
      clearTimeout(hard);
    },
  };
}
