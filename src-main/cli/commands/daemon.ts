import { AgentError } from '../../base/errors.js';
import { runDaemon } from '../../core/scheduler/daemon.js';
import { DeviceTokenService } from '../../core/enrollment/device-service.js';
import { deviceChannelServer } from '../../platform/device-channel-unix.js';
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
  Stops cleanly on SIGTERM or SIGINT (a pass in progress finishes first). One daemon per state directory.`,
  options: {
    user: { type: 'boolean' },
    device: { type: 'boolean' },
    once: { type: 'boolean' },
    trigger: { type: 'string' },
    'no-network-watch': { type: 'boolean' },
  },
  async run(ctx) {
    const side = sideOf(ctx);
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
      });
    } finally {
      await channel?.close();
    }
  },
};

async function startDeviceChannel(ctx: CommandContext): Promise<{ close(): Promise<void> } | undefined> {
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
