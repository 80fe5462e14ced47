import type { Side } from '../enrollment/side.js';
import type { LoadedConfig } from '../config.js';
import { daemonLockFile, describeHolder, tryAcquireLock } from '../state/lock.js';
import { Trace } from '../../base/trace.js';
import { createPassEngine } from './create-pass-engine.js';
import type { AgentContext } from '../context.js';
import { systemClock } from './clock.js';
import type { AttemptResult } from './pass-engine.js';
import { PostureMonitor } from '../posture/monitor.js';
import { DEFAULT_POLICY } from './policy.js';
import type { Trigger } from './record.js';
import { hostScheduler, POSTURE_START_DELAY_MS, type HostedScheduler } from './daemon.js';

// Apart from daemon.ts: the tray app runs its passes in its own process, so this module imports the pass itself.

/**
 * The agent's scheduler inside a long-running host (the tray app): takes the per-state-directory daemon lock,
 * so a systemd/launchd daemon and the app never both schedule; undefined when another process holds it.
 */
export function startHostedAgentScheduler(opts: {
  loadConfig: () => LoadedConfig;
  context: AgentContext;
  stateDir: string;
  side: Side;
  initial: Trigger;
  out: (line: string) => void;
  onAttempt?: (r: AttemptResult) => void;
}): (HostedScheduler & { release(): void }) | { busy: string } {
  const lock = tryAcquireLock(daemonLockFile(opts.stateDir), `${opts.side} scheduler (tray app)`);
  if (!lock.ok) return { busy: describeHolder(lock.holder) };
  const clock = systemClock;
  const policy = DEFAULT_POLICY;
  const { engine, store } = createPassEngine({
    loadConfig: opts.loadConfig, context: opts.context, stateDir: opts.stateDir, side: opts.side, trace: () => new Trace(undefined), respectRenewalMoment: true, policy, now: () => clock.now(),
  });
  // The tray app hosting the scheduler re-checks posture too, as the daemon would.
  const posture = new PostureMonitor({ loadConfig: opts.loadConfig, side: opts.side, out: opts.out, context: opts.context });
  const hosted = hostScheduler({ engine, store, clock, policy, watchNetwork: true, out: opts.out, ...(opts.onAttempt ? { onAttempt: opts.onAttempt } : {}), onNetworkChange: () => posture.trigger('network') });
  hosted.watcher?.start();
  hosted.scheduler.start(opts.initial);
  posture.start(POSTURE_START_DELAY_MS);
  return { ...hosted, stop: async () => { await hosted.stop(); await posture.stop(); }, release: () => lock.lock.release() };
}
