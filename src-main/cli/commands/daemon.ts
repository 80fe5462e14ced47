import { AgentError } from '../../base/errors.js';
import { runDaemon, runIsolatedInChild } from '../../core/scheduler/daemon.js';
import { attemptToWire } from '../../core/scheduler/isolated.js';
import { passDeadlineMs } from '../../core/time/deadline.js';
import { CHILD_OPTION, childPasses, type ChildMessage } from '../pass-child.js';
import { TRIGGERS, type Trigger } from '../../core/scheduler/record.js';
import type { Command, CommandContext } from '../command.js';
import { sideOf, stateDirOf } from '../side-option.js';

const START_TRIGGERS: Trigger[] = ['logon', 'install', 'timer', 'network', 'manual'];

export const daemonCommand: Command = {
  name: 'daemon',
  summary: 'the long-running agent: passes at logon, daily, at the renewal moment, on retry and on network change',
  usage: `device-trust-agent daemon [--user | --device] [--once] [--trigger WHY] [--no-network-watch] [--debug]
  --once              one pass if one is due (or the trigger calls for it), then exit: what systemd timers,
                      Task Scheduler and launchd start
  --trigger WHY       why the process was started: logon (default), install, timer (default with --once),
                      network, manual
  --no-network-watch  do not watch for network changes
  Stops cleanly on SIGTERM or SIGINT (a pass in progress finishes first). One daemon per state directory.
  Each pass and posture run of the long-running daemon is a short-lived child process (the idle daemon stays small).`,
  options: {
    user: { type: 'boolean' },
    device: { type: 'boolean' },
    once: { type: 'boolean' },
    trigger: { type: 'string' },
    'no-network-watch': { type: 'boolean' },
    // Hidden: this process is one of a daemon's isolated passes (cli/pass-child.ts).
    [CHILD_OPTION]: { type: 'string' },
  },
  async run(ctx) {
    const side = sideOf(ctx);
    const job = ctx.values[CHILD_OPTION];
    if (typeof job === 'string') return runChild(ctx, job);
    const once = Boolean(ctx.values.once);
    const given = ctx.values.trigger;
    const initial = (typeof given === 'string' ? given : once ? 'timer' : 'logon') as Trigger;
    if (!TRIGGERS.includes(initial) || !START_TRIGGERS.includes(initial)) {
      throw new AgentError('config', 'USAGE', `--trigger must be one of ${START_TRIGGERS.join(', ')}, not "${String(given)}".`);
    }
    const stopSignal = new Promise<string>((resolve) => {
      if (once) return;
      for (const sig of ['SIGTERM', 'SIGINT'] as const) process.once(sig, () => resolve(sig));
    });
    // The long-running device task is the device service: it alone uses the machine keytab, for the user sides.
    const channel = side === 'device' && !once ? await startDeviceChannel(ctx) : undefined;
    try {
      return await runDaemon({
        context: ctx.context,
        loadConfig: () => ctx.freshConfig(),
        stateDir: stateDirOf(ctx),
        side,
        initial,
        once,
        watchNetwork: !ctx.values['no-network-watch'],
        out: ctx.io.out,
        ...(ctx.debug ? { debug: ctx.io.err } : {}),
        stopSignal,
        // Each pass and posture run in a child of this program: what a pass loads leaves with it (issue 27).
        isolate: childPasses({ argv: ctx.argv, deadlineMs: () => childDeadlineMs(ctx), ...(ctx.debug ? { debug: ctx.io.err } : {}) }),
      });
    } finally {
      await channel?.close();
    }
  },
};

/** A pass's own deadline and grace (core/time/deadline.ts), and a minute for the process to start and record. */
function childDeadlineMs(ctx: CommandContext): number {
  try {
    const c = ctx.freshConfig().config;
    return passDeadlineMs(c.requestTimeoutMs, c.scepPendingWaitSeconds) + 30_000 + 60_000;
  } catch {
    return 16 * 60_000;
  }
}

/** The child's side: one pass (or posture run) as the daemon would do it, its result sent back to the daemon. */
async function runChild(ctx: CommandContext, job: string): Promise<number> {
  const m = /^(attempt|posture):(.+)$/.exec(job);
  if (!m || !process.send || (m[1] === 'attempt' && !TRIGGERS.includes(m[2] as Trigger))) {
    throw new AgentError('config', 'USAGE', `--${CHILD_OPTION} is the daemon's own (not for use by hand).`);
  }
  // A stop (the service manager signals the whole group) lets the pass finish, as the daemon itself does.
  for (const sig of ['SIGTERM', 'SIGINT'] as const) process.on(sig, () => {});
  const opts = { context: ctx.context, loadConfig: () => ctx.freshConfig(), stateDir: stateDirOf(ctx), side: sideOf(ctx), out: ctx.io.out, ...(ctx.debug ? { debug: ctx.io.err } : {}) };
  const r = await runIsolatedInChild(opts, m[1] === 'attempt' ? { attempt: m[2] as Trigger } : { posture: m[2]! });
  const message: ChildMessage = typeof r === 'string' ? { posture: r } : { attempt: attemptToWire(r) };
  await new Promise<void>((resolve) => process.send!(message, () => resolve()));
  process.disconnect?.();
  // Whatever a pass left open (a keep-alive socket) must not keep this process, or its memory, alive.
  setTimeout(() => process.exit(0), 5000).unref();
  return 0;
}

async function startDeviceChannel(ctx: CommandContext): Promise<{ close(): Promise<void> } | undefined> {
  const { DeviceTokenService } = await import('../../core/enrollment/device-service.js');
  const { deviceChannelServer } = await import('../../platform/device-channel-unix.js');
  const say = (line: string) => ctx.io.out(`device channel: ${line}`);
  const service = new DeviceTokenService({ loadConfig: () => ctx.freshConfig().config, log: say });
  const server = deviceChannelServer(process.platform, ctx.io.env, (uid, req) => service.handle(uid, req), say);
  if (typeof server === 'string') {
    say(`not started: ${server}.`);
    return undefined;
  }
  try {
    await server.start();
  } catch (e) {
    say(`not started: ${(e as Error).message}.`);
    return undefined;
  }
  return server;
}
