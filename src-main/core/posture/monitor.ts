import type { Side } from '../enrollment/side.js';
import type { LoadedConfig } from '../config.js';
import type { PosturePassResult } from './pass.js';
import type { AgentContext } from '../context.js';
import { resolvePostureSettings } from './settings.js';

export interface PostureMonitorOptions {
  loadConfig: () => LoadedConfig;
  side: Side;
  out: (line: string) => void;
  /** What the root wired. Its platform's key store (TPM, NSS, CNG, keychain) signs the posture report. Required:
   * without it only a legacy key file could sign, and the report would silently never be sent. */
  context: AgentContext;
  now?: () => number;
  /** Runs one pass elsewhere (the daemon: in a child process) and gives its log line; in this process otherwise. */
  isolated?: (why: string) => Promise<string>;
}

/** The log line of one posture pass (the daemon's output). */
export function postureLine(why: string, r: Pick<PosturePassResult, 'file' | 'changes' | 'reported'>, now: number): string {
  const c = { PASS: 0, FAIL: 0, UNKNOWN: 0 };
  for (const x of r.file.results) c[x.status]++;
  return `${new Date(now).toISOString()} posture (${why}): ${c.PASS} pass, ${c.FAIL} fail, ${c.UNKNOWN} unknown${r.changes.length ? `; changed: ${r.changes.map((x) => `${x.check} → ${x.to}`).join(', ')}` : ''}${r.reported ? `; report ${r.reported.ok ? 'sent' : `not sent (${r.reported.error})`}` : ''}`;
}

/** One posture pass in this process (the posture modules load on first use, never in an isolating daemon). */
export async function postureInProcess(opts: Pick<PostureMonitorOptions, 'loadConfig' | 'side' | 'context'>, why: string, now: () => number): Promise<string> {
  const { runPosturePass } = await import('./pass.js');
  const r = await runPosturePass({ loaded: opts.loadConfig(), side: opts.side, context: opts.context });
  return postureLine(why, r, now());
}

/**
 * Re-checks posture on an interval (posture.intervalMinutes, default 15), on network change and on resume
 * (a tick that comes far later than asked means the machine slept). Passes never overlap; a failing pass is
 * logged and the next one runs on time. Reports go to the org when a confirmed result changed.
 */
export class PostureMonitor {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;
  private expectedAt = 0;

  constructor(private readonly opts: PostureMonitorOptions) {}

  private get now(): number {
    return (this.opts.now ?? Date.now)();
  }

  /** The first pass waits `delayMs` (the daemon's own logon pass goes first; posture is not urgent at start). */
  start(delayMs = 0): void {
    if (delayMs <= 0) {
      this.trigger('start');
      return;
    }
    this.expectedAt = this.now + delayMs;
    this.timer = setTimeout(() => this.trigger('start'), delayMs);
    this.timer.unref?.();
  }

  trigger(why: string): void {
    if (this.stopped || this.running) return;
    this.running = this.pass(why).finally(() => {
      this.running = undefined;
      this.schedule();
    });
  }

  private interval(): number {
    try {
      return resolvePostureSettings(this.opts.loadConfig().config.posture).intervalMs;
    } catch {
      return 15 * 60_000;
    }
  }

  private schedule(): void {
    if (this.stopped) return;
    clearTimeout(this.timer);
    const ms = this.interval();
    this.expectedAt = this.now + ms;
    this.timer = setTimeout(() => this.trigger(this.now - this.expectedAt > 60_000 ? 'resume' : 'interval'), ms);
    this.timer.unref?.();
  }

  private async pass(why: string): Promise<void> {
    try {
      this.opts.out(await (this.opts.isolated ? this.opts.isolated(why) : postureInProcess(this.opts, why, () => this.now)));
    } catch (e) {
      this.opts.out(`${new Date(this.now).toISOString()} posture (${why}) failed: ${(e as Error).message}`);
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }
}

/** One pass for the one-shot tasks (the device timer): errors are printed, never fail the task. */
export async function postureOnce(opts: PostureMonitorOptions): Promise<void> {
  const m = new PostureMonitor(opts);
  m.trigger('timer');
  await m.stop();
}
