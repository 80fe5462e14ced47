import { AgentError } from '../base/errors.js';
import { defaultPaths } from '../base/paths.js';
import type { Side } from '../core/enrollment/side.js';
import type { CommandContext } from './command.js';

/** `--user` (the default) or `--device`: which side a command acts for (core/enrollment/side.ts). */
export function sideOf(ctx: CommandContext): Side {
  if (ctx.values.user && ctx.values.device) throw new AgentError('config', 'USAGE', '--user and --device cannot be used together.');
  return ctx.values.device ? 'device' : 'user';
}

/** The state directory even when the configuration does not load (the daemon then waits for a fix). */
export function stateDirOf(ctx: CommandContext): string {
  try {
    return ctx.config().config.stateDir;
  } catch {
    const given = ctx.values['state-dir'];
    return typeof given === 'string' ? given : ctx.io.env.DTA_STATE_DIR || defaultPaths(ctx.io.env).stateDir;
  }
}
