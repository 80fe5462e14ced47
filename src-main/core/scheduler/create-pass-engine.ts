import { runPass } from '../enrollment/pass.js';
import type { Side } from '../enrollment/side.js';
import type { LoadedConfig } from '../config.js';
import { AgentError } from '../../base/errors.js';
import type { EventLog } from '../events.js';
import { describeHolder } from '../state/lock.js';
import type { Trace } from '../../base/trace.js';
import { PassEngine, type AttemptResult } from './pass-engine.js';
import type { AgentContext } from '../context.js';
import { DEFAULT_POLICY, type SchedulePolicy } from './policy.js';
import type { Trigger } from './record.js';
import type { StateFileStore } from './store.js';
import { fileLock, recordStateChange, scheduleStore } from './engine-parts.js';
import { writeMetricsAfterPass } from '../fleet/metrics-writer.js';
import { describeAnomalies } from './anomaly.js';

export interface PassEngineOptions {
  /** Loads the configuration afresh (a long-running daemon picks up changes at every pass). */
  loadConfig: () => LoadedConfig;
  /** The state directory is fixed for the life of the process: it holds the lock and the schedule. */
  stateDir: string;
  side: Side;
  /** What the composition root wired: the platform for each pass's configuration, the event sinks, the proxy source. */
  context: AgentContext;
  /** A trace per pass (the daemon makes a fresh one each time). */
  trace: () => Trace;
  force?: boolean;
  /** Renew a valid certificate now, before its window (the dashboard's "Renew now"). */
  renewNow?: boolean;
  /** Scheduled passes wait for the certificate's renewal moment; a pass a person asked for does not. */
  respectRenewalMoment: boolean;
  policy?: SchedulePolicy;
  now?: () => number;
  /** A clock anomaly was found and the schedule recomputed (the daemon logs it). */
  onClockAnomaly?: (message: string) => void;
}

/**
 * The real thing: the agent's pass (`runPass`) under the state directory's lock, recorded in state.json.
 * The one way a pass runs — CLI `run`, `install`, the daemon, the tray's scheduler and the dashboard.
 */
export function createPassEngine(opts: PassEngineOptions): { engine: PassEngine; store: StateFileStore; events: EventLog; policy: SchedulePolicy } {
  const policy = opts.policy ?? DEFAULT_POLICY;
  const { events, store } = scheduleStore({ ...opts, policy });
  const engine = new PassEngine({
    store,
    lock: fileLock(opts.stateDir),
    policy,
    now: opts.now ?? Date.now,
    pass: (ctx) => { const loaded = opts.loadConfig(); return runPass({
      loaded,
      platform: opts.context.platform(loaded.config),
      context: opts.context,
      side: opts.side,
      force: Boolean(opts.force),
      ...(opts.renewNow ? { renewNow: true } : {}),
      trace: opts.trace(),
      ...(opts.respectRenewalMoment ? { renewAt: ctx.renewAt } : {}),
    }); },
    onClockAnomaly: (found) => {
      events.record('CLOCK_ANOMALY', describeAnomalies(found), { anomalies: found });
      opts.onClockAnomaly?.(describeAnomalies(found));
    },
    onStateChange: recordStateChange(events),
    // Every pass refreshes node_exporter's textfile (the user side's: it holds the certificate).
    ...(opts.side === 'user' ? { afterRecord: () => writeMetricsAfterPass(opts.loadConfig, opts.stateDir, opts.context.events) } : {}),
  });
  return { engine, store, events, policy };
}

/** The error a pass that could not start reports: another process holds the lock. */
export function passRunningError(res: Extract<AttemptResult, { why: 'busy' }>): AgentError {
  return new AgentError('retry-later', 'PASS_RUNNING', `Another pass is running (${describeHolder(res.holder)}); this one was not started.`,
    'Nothing to do: the running pass does the work. Run again when it has finished to see its result.');
}

export type { Trigger };
export { fileLock, stateEventMessage } from './engine-parts.js';
