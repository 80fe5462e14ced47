/**
 * Deadlines for the whole of an exchange (README "Deadlines"): one AbortSignal per exchange, and the error
 * a user sees when it fires.
 */
import { AgentError } from '../base/errors.js';

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
export function deadlineError(what: string, host: string, ms: number, stage: string | undefined): AgentError {
  return new AgentError('retry-later', 'REQUEST_TIMEOUT',
    `${cap(what)} at ${host} did not complete its answer within the ${ms} ms deadline (connect, TLS, headers and body together)${stage ? `: ${stage}` : ''}; the request was abandoned and nothing was changed.`,
    'A slow or overloaded server, proxy or network link: the agent tries again later. If it persists, check the proxy and the network path to this server (device-trust-agent proxy-check).');
}

/** The overall deadline of one enrollment/renewal pass: it never holds the pass lock longer than this. */
export function passDeadlineError(ms: number): AgentError {
  return new AgentError('retry-later', 'PASS_TIMEOUT',
    `This pass did not finish within its ${Math.round(ms / 1000)} s deadline; it was stopped and nothing was changed by its unfinished steps.`,
    'The agent tries again later. If it persists, run device-trust-agent diagnose to see which server or proxy is slow.');
}
