import type { LoadedConfig } from '../config.js';
import { daemonLockFile, holderAlive, passLockFile, readLock, type LockInfo } from '../state/lock.js';
import type { AgentState } from '../state/state.js';
import { deadlines, namedState, type DeadlineReason } from './plan.js';
import { DEFAULT_POLICY, type SchedulePolicy } from './policy.js';
import { emptyRecord, type ScheduleRecord, type Trigger } from './record.js';
import type { AgentStateName } from './states.js';
import { certFacts, probeConfig } from './store.js';
import { describeAnomalies, findClockAnomalies, repairRecord } from './anomaly.js';

export interface UpcomingRun {
  at: string;
  reason: DeadlineReason;
  why: string;
  /** A later daily pass, assuming the ones before it succeed. */
  projected?: boolean;
}

/** What `status` and `schedule` show about the scheduler: the named state, why, and what comes next. */
export interface ScheduleView {
  state: AgentStateName;
  stuck: boolean;
  why: string;
  /** For a stuck state: what a person must do. */
  action?: string;
  nextAttempt?: UpcomingRun;
  upcoming: UpcomingRun[];
  renewAt?: string;
  failures: number;
  lastPass?: ScheduleRecord['lastPass'];
  lastSuccessAt?: string;
  /** A pass in progress (holder of the state directory's lock). */
  passRunning?: Pick<LockInfo, 'pid' | 'since' | 'purpose'>;
  /** The long-running daemon for this state directory, when one is running. */
  daemon?: Pick<LockInfo, 'pid' | 'since'>;
  /**
   * Times in the record lie in the future (the clock was ahead when they were written): what is shown was
   * recomputed from now, as the next pass will do, and this says what was found.
   */
  clockAnomaly?: string;
}

function liveHolder(file: string): LockInfo | undefined {
  const l = readLock(file);
  return l?.info && holderAlive(l.info, l.ageMs) ? l.info : undefined;
}

export function scheduleView(loaded: LoadedConfig, state: AgentState, now = Date.now(), policy: SchedulePolicy = DEFAULT_POLICY): ScheduleView {
  const stateDir = loaded.config.stateDir;
  const probe = probeConfig(() => loaded);
  // What is shown is computed from the present: a record written under a clock that was ahead (a retry or a
  // last pass 340 days from now) is recomputed as the next pass will recompute it, not read back as it is.
  const persisted = state.schedule ?? emptyRecord();
  const anomalies = findClockAnomalies(policy, persisted, now, state);
  const record = repairRecord(persisted, anomalies, now);
  const snapshot = { record, cert: certFacts(state, policy.defaultWindowMs), configured: probe.configured, configFingerprint: probe.fingerprint };
  const pass = liveHolder(passLockFile(stateDir));
  const daemon = liveHolder(daemonLockFile(stateDir));
  const running = pass ? ((pass.purpose.split(' ')[0] ?? 'manual') as Trigger) : undefined;
  const named = namedState(policy, snapshot, now, running);
  const iso = (ms: number) => new Date(ms).toISOString();
  const upcoming: UpcomingRun[] = deadlines(policy, snapshot, now).map((d) => ({ at: iso(d.at), reason: d.reason, why: d.why }));
  const daily = upcoming.find((u) => u.reason === 'daily');
  if (daily) {
    for (let i = 1; i <= 2; i++) upcoming.push({ at: iso(Date.parse(daily.at) + i * policy.dailyMs), reason: 'daily', why: 'daily check', projected: true });
  }
  upcoming.sort((a, b) => Date.parse(a.at) - Date.parse(b.at));
  return {
    state: named.state,
    stuck: named.stuck,
    why: named.why,
    ...(named.action ? { action: named.action } : {}),
    ...(named.next ? { nextAttempt: { at: iso(named.next.at), reason: named.next.reason, why: named.next.why } } : {}),
    upcoming,
    ...(named.renewAt !== undefined ? { renewAt: iso(named.renewAt) } : {}),
    failures: named.failures,
    ...(persisted.lastPass ? { lastPass: persisted.lastPass } : {}),
    ...(record.lastSuccessAt ? { lastSuccessAt: record.lastSuccessAt } : {}),
    ...(pass ? { passRunning: { pid: pass.pid, since: pass.since, purpose: pass.purpose } } : {}),
    ...(daemon ? { daemon: { pid: daemon.pid, since: daemon.since } } : {}),
    ...(anomalies.length ? { clockAnomaly: describeAnomalies(anomalies) } : {}),
  };
}

export function describeScheduleView(v: ScheduleView): string[] {
  const lines = [`  agent state: ${v.state}${v.stuck ? ' (stuck)' : ''} — ${v.why}`];
  if (v.action) lines.push(`  what to do:  ${v.action}`);
  if (v.clockAnomaly) lines.push(`  clock:       ${v.clockAnomaly}`);
  if (v.passRunning) lines.push(`  running:     pid ${v.passRunning.pid} since ${v.passRunning.since} (${v.passRunning.purpose})`);
  if (v.nextAttempt) lines.push(`  next pass:   ${v.nextAttempt.at} (${v.nextAttempt.reason}: ${v.nextAttempt.why})`);
  else if (v.stuck) lines.push('  next pass:   none until a person acts (or the configuration changes, or at the next logon)');
  if (v.renewAt) lines.push(`  renews at:   ${v.renewAt}`);
  if (v.failures) lines.push(`  failures:    ${v.failures} in a row`);
  lines.push(`  daemon:      ${v.daemon ? `running (pid ${v.daemon.pid} since ${v.daemon.since})` : 'not running'}`);
  return lines;
}
