/**
 * The agent's scheduler (src-main/core/scheduler) as the tray app hosts it. Electron-free so it is tested
 * under plain Node. It holds the per-state-directory daemon lock: where a systemd/launchd daemon already
 * schedules for this user, the app leaves it to that daemon instead of running a second schedule.
 */
import type { LoadedConfig } from '../core/config.js';
import type { HostedScheduler } from '../core/scheduler/daemon.js';
import { startHostedAgentScheduler } from '../core/scheduler/hosted.js';
import type { AgentContext } from '../core/context.js';
import type { SchedulerPort } from '../ipc/host.js';

export interface AgentSchedulerOptions {
  loadConfig: () => LoadedConfig;
  /** What the shell wired: the scheduler's passes use its platform, sinks and proxy source. */
  context: AgentContext;
  log: (line: string) => void;
  /** After every attempt (the dashboard and tray refresh their state). */
  onPass?: () => void;
}

export class AgentSchedulerPort implements SchedulerPort {
  private hosted: (HostedScheduler & { release(): void }) | undefined;
  /** Who else schedules for this state directory, when it is not us. */
  busyWith: string | undefined;

  constructor(private readonly opts: AgentSchedulerOptions) {}

  start(): void {
    if (this.hosted) return;
    const r = startHostedAgentScheduler({
      loadConfig: this.opts.loadConfig,
      context: this.opts.context,
      stateDir: this.opts.loadConfig().config.stateDir,
      side: 'user',
      initial: 'logon',
      out: this.opts.log,
      ...(this.opts.onPass ? { onAttempt: () => this.opts.onPass?.() } : {}),
    });
    if ('busy' in r) {
      this.busyWith = r.busy;
      this.opts.log(`Another scheduler runs for this user (${r.busy}); the app leaves the schedule to it.`);
      return;
    }
    this.busyWith = undefined;
    this.hosted = r;
  }

  /** Resolves when a pass in progress has finished and the lock is released. */
  async stopped(): Promise<void> {
    const h = this.hosted;
    this.hosted = undefined;
    if (!h) return;
    try {
      await h.stop();
    } finally {
      h.release();
    }
  }

  stop(): void {
    void this.stopped();
  }

  /** On resume from sleep: an overdue deadline runs now rather than at the next tick. */
  wake(): void {
    this.hosted?.scheduler.wake();
  }

  next(): { at: string; why: string } | undefined {
    const next = this.hosted?.scheduler.state().next;
    return next ? { at: new Date(next.at).toISOString(), why: next.reason } : undefined;
  }
}
