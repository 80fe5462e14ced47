import { z } from 'zod';
import { AgentError, isAgentError } from '../../base/errors.js';
import type { AttemptResult, PassEngine } from './pass-engine.js';
import type { Trigger } from './record.js';

/**
 * How the long-running daemon runs each scheduled pass and posture run: in a short-lived child process of the
 * same program (the CLI wires it), so that what a pass loads (schemas, HTTP, PKCS#11/NSS, the PAC engine, the
 * posture checks) leaves with the child and the idle daemon stays small. The child takes the pass lock and
 * records the pass in state.json exactly as an in-process pass does.
 */
export interface PassIsolation {
  /** The pass `trigger` asks for, in a child; rejects (with an AgentError when known) when no result came back. */
  attempt(trigger: Trigger): Promise<AttemptResult>;
  /** One posture run in a child: its log line. */
  posture(why: string): Promise<string>;
  /** Stops: children still running are sent SIGTERM (they finish their pass, as the daemon does). */
  stop(signal: string): void;
}

/** What the scheduler needs of an engine. */
export type AttemptEngine = Pick<PassEngine, 'attempt'>;

/**
 * The scheduler's engine when passes run in children. A child that ended without a result (killed at the pass
 * deadline, crashed) is recorded here as a failed pass, under the lock like any pass, so the schedule backs off
 * and always has a next deadline; `recorder` is an engine whose pass throws the error it is handed.
 */
export function isolatedEngine(isolation: PassIsolation, recorder: (failure: AgentError) => AttemptEngine): AttemptEngine {
  return {
    async attempt(trigger) {
      try {
        return await isolation.attempt(trigger);
      } catch (e) {
        const failure = isAgentError(e) ? e : new AgentError('internal', 'PASS_CRASHED', `The pass process ended without a result (${(e as Error).message}).`,
          'The agent tries again later. If it persists, run device-trust-agent run --debug to see where the pass stops.', { cause: e });
        return recorder(failure).attempt(trigger);
      }
    },
  };
}

/** An AttemptResult as it crosses the process boundary (JSON): the error as its plain fields. */
export interface WireError { failure: AgentError['failure']; code: string; message: string; remedy?: string; retryAfterMs?: number }

export function attemptToWire(r: AttemptResult): unknown {
  if (!r.ran || !r.error) return JSON.parse(JSON.stringify(r));
  const e = r.error;
  const error: WireError = { failure: e.failure, code: e.code, message: e.message, ...(e.remedy ? { remedy: e.remedy } : {}), ...(e.retryAfterMs ? { retryAfterMs: e.retryAfterMs } : {}) };
  return JSON.parse(JSON.stringify({ ...r, error }));
}

/** The envelope checked at the boundary (the rest is the same program's own record, as state.json holds it). */
const WireAttempt = z.looseObject({
  ran: z.boolean(),
  trigger: z.string(),
  error: z.object({ failure: z.string(), code: z.string(), message: z.string(), remedy: z.string().optional(), retryAfterMs: z.number().optional() }).optional(),
});

export function attemptFromWire(x: unknown): AttemptResult {
  const parsed = WireAttempt.safeParse(x);
  if (!parsed.success) throw new Error('the pass process sent a malformed result');
  const r = parsed.data as unknown as AttemptResult & { error?: WireError };
  if (!r.ran || !r.error) return r as AttemptResult;
  const w = r.error;
  const error = new AgentError(w.failure, w.code, w.message, w.remedy);
  if (w.retryAfterMs) error.retryAfterMs = w.retryAfterMs;
  return { ...r, error };
}
