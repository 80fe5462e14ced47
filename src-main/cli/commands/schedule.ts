import { ExitCode } from '../../base/errors.js';
import { scheduleView, describeScheduleView } from '../../core/scheduler/view.js';
import { loadState } from '../../core/state/state.js';
import type { Command } from '../command.js';

export const scheduleCommand: Command = {
  name: 'schedule',
  summary: 'the agent\'s named state and its next passes, and why (--json for tools)',
  usage: `device-trust-agent schedule [--json]
  Lists the next passes (daily check, renewal moment, retry, expiry) with the reason for each, the named
  state (with what to do when it is stuck), the last pass, and whether a pass or the daemon is running.`,
  async run(ctx) {
    const loaded = ctx.config();
    const { state } = loadState(loaded.config.stateDir);
    const view = scheduleView(loaded, state);
    if (ctx.json) {
      ctx.io.out(JSON.stringify({ stateDir: loaded.config.stateDir, ...view }, null, 2));
    } else {
      const lines = [`${view.state}${view.stuck ? ' (stuck)' : ''}: ${view.why}`, ...describeScheduleView(view).slice(1)];
      if (view.lastPass) lines.push(`  last pass:   ${view.lastPass.at} ${view.lastPass.trigger}: ${view.lastPass.outcome}${view.lastPass.code ? ` (${view.lastPass.code})` : ''}`);
      lines.push('  upcoming:');
      for (const u of view.upcoming) lines.push(`    ${u.at}  ${u.reason.padEnd(9)} ${u.why}${u.projected ? ' (projected)' : ''}`);
      if (!view.upcoming.length) lines.push('    (none)');
      ctx.io.out(lines.join('\n'));
    }
    return view.stuck ? ExitCode.NEEDS_ATTENTION : ExitCode.OK;
  },
};
