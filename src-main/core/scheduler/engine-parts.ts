import type { Side } from '../enrollment/side.js';
import type { LoadedConfig } from '../config.js';
import { AgentError } from '../../base/errors.js';
import { EventLog } from '../events.js';
import { passLockFile, tryAcquireLock } from '../state/lock.js';
import type { AgentContext } from '../context.js';
import type { PassLock } from './pass-engine.js';
import type { NamedState } from './plan.js';
import type { SchedulePolicy } from './policy.js';
import { probeConfig, StateFileStore } from './store.js';

/*
 * The parts of the pass engine that do not run a pass (lock, schedule store, state events): kept apart from
 * create-pass-engine.ts, which imports the whole pass (HTTP, PKCS#11, PAC), so that the daemon's parent process,
 * which runs its passes in child processes, can plan and record without loading any of it.
 */

/** The lock of one state directory, as the engine wants it. */
export function fileLock(stateDir: string): PassLock {
  const file = passLockFile(stateDir);
  return {
    tryAcquire(purpose) {
      let r: ReturnType<typeof tryAcquireLock>;
      try {
        r = tryAcquireLock(file, purpose);
      } catch (e) {
        throw new AgentError('local', 'STATE_DIR_UNWRITABLE', `The state directory ${stateDir} cannot be used (${(e as Error).message}), so no pass can run.`,
          'Check that the directory exists, belongs to this user and the disk is not full, or choose another with --state-dir.', { cause: e });
      }
      return r.ok ? { ok: true, release: () => r.lock.release() } : { ok: false, holder: r.holder };
    },
  };
}

export function stateEventMessage(from: string | undefined, to: NamedState): string {
  const next = to.next ? ` Next attempt: ${new Date(to.next.at).toISOString()} (${to.next.reason}).` : to.stuck ? ' No further attempt until a person acts.' : '';
  return `${from ?? 'START'} → ${to.state}: ${to.why}.${next}${to.action ? ` What to do: ${to.action}` : ''}`;
}

/** The event a change of named state records (STATE_CHANGED, or AGENT_STUCK). */
export function recordStateChange(events: EventLog): (from: string | undefined, to: NamedState) => void {
  return (from, to) => {
    const data = { from: from ?? null, to: to.state, stuck: to.stuck, ...(to.next ? { nextAttempt: new Date(to.next.at).toISOString(), nextReason: to.next.reason } : {}) };
    events.record(to.stuck ? 'AGENT_STUCK' : 'STATE_CHANGED', stateEventMessage(from, to), data);
  };
}

/** The schedule as state.json holds it, and the event log its recoveries are written to. */
export function scheduleStore(opts: { loadConfig: () => LoadedConfig; stateDir: string; side: Side; context: AgentContext; policy: SchedulePolicy; now?: () => number }): { events: EventLog; store: StateFileStore } {
  const events = new EventLog(opts.stateDir, opts.side, { sinks: opts.context.events });
  const store = new StateFileStore(opts.stateDir, () => probeConfig(opts.loadConfig), (aside) =>
    events.record('STATE_RECOVERED', `The state file was unreadable and was moved to ${aside}; it is rebuilt from the certificate store.`),
  opts.policy.configCheckMs, opts.now ?? Date.now, opts.policy);
  return { events, store };
}
