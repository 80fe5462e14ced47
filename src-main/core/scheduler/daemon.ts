import type { Side } from '../enrollment/side.js';
import type { LoadedConfig } from '../config.js';
import { ExitCode, exitCodeFor } from '../../base/errors.js';
import { daemonLockFile, describeHolder, tryAcquireLock, type HeldLock } from '../state/lock.js';
import { Trace } from '../../base/trace.js';
import type { createPassEngine as CreatePassEngine } from './create-pass-engine.js';
import { fileLock, recordStateChange, scheduleStore } from './engine-parts.js';
import { isolatedEngine, type AttemptEngine, type PassIsolation } from './isolated.js';
import type { AgentContext } from '../context.js';
import { systemClock, type Clock } from './clock.js';
import { PassEngine, type AttemptResult, type ScheduleStore } from './pass-engine.js';
import { NetworkWatcher } from './network.js';
import { PostureMonitor, postureInProcess, postureOnce } from '../posture/monitor.js';

/** The posture monitor's first pass comes a minute after the daemon starts, behind its logon pass. */
export const POSTURE_START_DELAY_MS = 60_000;
import { DEFAULT_POLICY, type SchedulePolicy } from './policy.js';
import type { Trigger } from './record.js';
import { Scheduler } from './scheduler.js';
import { writeMetricsAfterPass } from '../fleet/metrics-writer.js';

export interface DaemonOptions {
  loadConfig: () => LoadedConfig;
  /** What the composition root wired (platform, event sinks, proxy source). */
  context: AgentContext;
  stateDir: string;
  side: Side;
  /** Why the process was started: logon (a session's service or autostart), install, or a timer. */
  initial: Trigger;
  /** One pass if one is due, then exit (systemd timer, Task Scheduler, launchd interval). */
  once: boolean;
  watchNetwork: boolean;
  out: (line: string) => void;
  /** The --debug trace of each pass goes here. */
  debug?: (line: string) => void;
  policy?: SchedulePolicy;
  clock?: Clock;
  /** Resolves when the daemon should stop (SIGTERM); the CLI wires signals to it. */
  stopSignal: Promise<string>;
  /** Runs each pass and posture run of the long-running daemon in a child process (not with --once). */
  isolate?: PassIsolation;
}

export function describeAttempt(r: AttemptResult, now = Date.now()): string {
  const t = new Date(now).toISOString();
  if (!r.ran) return r.why === 'busy' ? `${t} ${r.trigger}: another pass is running (${describeHolder(r.holder)}); looking again shortly` : `${t} ${r.trigger}: skipped (${r.detail})`;
  const next = r.state.next ? `; next ${r.state.next.reason} at ${new Date(r.state.next.at).toISOString()}` : r.state.stuck ? '; no further attempt until a person acts' : '';
  return `${t} ${r.trigger} pass: ${r.report.outcome}${r.report.code ? ` (${r.report.code})` : ''} — ${r.state.state}${next}. ${r.report.message}${r.state.action ? ` What to do: ${r.state.action}` : ''}${r.saveError ? ` (The schedule could not be saved: ${r.saveError}.)` : ''}`;
}

/**
 * The long-running, headless agent (what the tray app hosts): one per state directory, idle between
 * deadlines (a timer that fires at most once a minute to compare the wall clock), a network watcher, and
 * a clean stop on SIGTERM that lets a pass in progress finish.
 */
export async function runDaemon(opts: DaemonOptions): Promise<number> {
  const clock = opts.clock ?? systemClock;
  const policy = opts.policy ?? DEFAULT_POLICY;
  const daemonLock = tryAcquireLock(daemonLockFile(opts.stateDir), `${opts.side} daemon`);
  let held: HeldLock | undefined;
  if (!daemonLock.ok) {
    opts.out(`The ${opts.side} daemon is already running (${describeHolder(daemonLock.holder)}); ${opts.once ? 'it does the scheduled passes' : 'this one exits'}.`);
    return opts.once ? ExitCode.NOTHING_TO_DO : ExitCode.OK;
  }
  held = daemonLock.lock;
  const engineOptions = engineOptionsOf(opts, policy, clock);
  const isolate = opts.once ? undefined : opts.isolate;
  // With passes in children, this process only plans: the pass itself (and what it loads) is never imported here.
  const { engine, store } = isolate ? isolatedParts(isolate, opts, policy, clock) : (await import('./create-pass-engine.js')).createPassEngine(engineOptions);
  try {
    if (opts.once) {
      const r = await engine.attempt(opts.initial);
      opts.out(describeAttempt(r, clock.now()));
      await postureOnce({ loadConfig: opts.loadConfig, side: opts.side, out: opts.out, context: opts.context });
      if (!r.ran) return r.why === 'busy' ? ExitCode.RETRY_LATER : ExitCode.NOTHING_TO_DO;
      if (r.error) return exitCodeFor(r.error);
      return r.report.ok ? (r.report.outcome === 'nothing-to-do' ? ExitCode.NOTHING_TO_DO : ExitCode.OK) : ExitCode.RETRY_LATER;
    }
    // The metrics file exists from the daemon's start, before its first pass (then every pass rewrites it).
    if (opts.side === 'user') writeMetricsAfterPass(opts.loadConfig, opts.stateDir, opts.context.events);
    const posture = new PostureMonitor({ loadConfig: opts.loadConfig, side: opts.side, out: opts.out, context: opts.context, ...(isolate ? { isolated: (why: string) => isolate.posture(why) } : {}) });
    const hosted = hostScheduler({ engine, store, clock, policy, watchNetwork: opts.watchNetwork, out: opts.out, onAttempt: (r) => opts.out(describeAttempt(r, clock.now())), onNetworkChange: () => posture.trigger('network') });
    const { scheduler, watcher } = hosted;
    watcher?.start();
    posture.start(POSTURE_START_DELAY_MS);
    opts.out(`${new Date(clock.now()).toISOString()} ${opts.side} daemon started (pid ${process.pid}, state ${opts.stateDir}, network watch: ${watcher?.mode ?? 'off'}).`);
    scheduler.start(opts.initial);
    const signal = await opts.stopSignal;
    isolate?.stop(signal);
    await hosted.stop();
    await posture.stop();
    opts.out(`${new Date(clock.now()).toISOString()} ${opts.side} daemon stopped (${signal}).`);
    return ExitCode.OK;
  } finally {
    held.release();
  }
}

function engineOptionsOf(opts: DaemonOptions, policy: SchedulePolicy, clock: Clock): Parameters<typeof CreatePassEngine>[0] {
  return {
    loadConfig: opts.loadConfig,
    context: opts.context,
    stateDir: opts.stateDir,
    side: opts.side,
    trace: () => new Trace(opts.debug),
    respectRenewalMoment: true,
    policy,
    now: () => clock.now(),
    onClockAnomaly: (m) => opts.out(`${new Date(clock.now()).toISOString()} clock anomaly: ${m}`),
  };
}

/**
 * The child's side of an isolated pass (PassIsolation): one scheduled pass, exactly as the daemon would run it in
 * its own process (under the pass lock, recorded in state.json), or one posture run and its log line.
 */
export async function runIsolatedInChild(opts: Omit<DaemonOptions, 'initial' | 'once' | 'watchNetwork' | 'stopSignal' | 'isolate'>, job: { attempt: Trigger } | { posture: string }): Promise<AttemptResult | string> {
  const clock = opts.clock ?? systemClock;
  if ('posture' in job) return postureInProcess(opts, job.posture, () => clock.now());
  const { createPassEngine } = await import('./create-pass-engine.js');
  const full = { ...opts, initial: job.attempt, once: false, watchNetwork: false, stopSignal: new Promise<string>(() => {}) };
  return createPassEngine(engineOptionsOf(full, opts.policy ?? DEFAULT_POLICY, clock)).engine.attempt(job.attempt);
}

/** The parent's side of isolated passes: the schedule store, and the engine that sends each pass to a child. */
function isolatedParts(isolate: PassIsolation, opts: DaemonOptions, policy: SchedulePolicy, clock: Clock): { engine: AttemptEngine; store: ScheduleStore } {
  const { events, store } = scheduleStore({ ...opts, policy, now: () => clock.now() });
  const recorder = (failure: Error) => new PassEngine({
    store, lock: fileLock(opts.stateDir), policy, now: () => clock.now(),
    pass: () => Promise.reject(failure),
    onStateChange: recordStateChange(events),
    ...(opts.side === 'user' ? { afterRecord: () => writeMetricsAfterPass(opts.loadConfig, opts.stateDir, opts.context.events) } : {}),
  });
  return { engine: isolatedEngine(isolate, recorder), store };
}

export interface HostedScheduler {
  scheduler: Scheduler;
  watcher: NetworkWatcher | undefined;
  stop(): Promise<void>;
}

/** A scheduler with its network watcher, as the daemon and the tray app both host it (not yet started). */
export function hostScheduler(opts: {
  engine: AttemptEngine;
  store: ScheduleStore;
  clock: Clock;
  policy: SchedulePolicy;
  watchNetwork: boolean;
  out: (line: string) => void;
  onAttempt?: (r: AttemptResult) => void;
  /** Also told of network changes (the posture monitor re-checks then). */
  onNetworkChange?: () => void;
}): HostedScheduler {
  const { clock, policy } = opts;
  const scheduler = new Scheduler({ engine: opts.engine, store: opts.store, clock, policy, log: opts.out, ...(opts.onAttempt ? { onAttempt: opts.onAttempt } : {}) });
  const watcher = opts.watchNetwork
    ? new NetworkWatcher({ clock, debounceMs: policy.networkDebounceMs, log: opts.out, onChange: (summary) => {
      opts.out(`${new Date(clock.now()).toISOString()} network changed (${summary.join('; ') || 'no default route'}): checking whether a pass is wanted`);
      scheduler.trigger('network');
      opts.onNetworkChange?.();
    } })
    : undefined;
  return {
    scheduler,
    watcher,
    stop: async () => {
      watcher?.stop();
      await scheduler.stop();
    },
  };
}
