/**
 * The flags a launch of the tray app may carry. A second launch's command line reaches the running
 * instance from another process, so it is untrusted input: only these exact flags are understood, the rest
 * is ignored, sizes are bounded, and nothing runs from it without the user: --forceRenewal only opens the
 * dashboard's confirmation, and --show-tokens is never honoured from here.
 */
import { z } from 'zod';

export interface LaunchRequest {
  /** Open the dashboard. */
  show: boolean;
  /** Ask the user to confirm a forced renewal (never runs it directly). */
  forceRenewal: boolean;
  /** Step-by-step account of runs on the app's log, and open the event log. */
  debug: boolean;
  /** Started at login: stay in the tray. */
  hidden: boolean;
}

const ArgvSchema = z.array(z.string().max(4096)).max(256);

const FLAGS: Record<string, keyof LaunchRequest> = {
  '--show': 'show',
  '--forcerenewal': 'forceRenewal',
  '--force-renewal': 'forceRenewal',
  '--debug': 'debug',
  '--hidden': 'hidden',
};

export function parseLaunchArgs(argv: unknown): LaunchRequest {
  const out: LaunchRequest = { show: false, forceRenewal: false, debug: false, hidden: false };
  const parsed = ArgvSchema.safeParse(argv);
  if (!parsed.success) return out;
  for (const arg of parsed.data) {
    const key = FLAGS[arg.toLowerCase()];
    if (key) out[key] = true;
  }
  return out;
}

export type LaunchAction = { kind: 'open-dashboard'; view: 'overview' | 'events' } | { kind: 'confirm-force-renewal' } | { kind: 'debug-on' };

/**
 * What the running instance does for a launch (its own, or a second one forwarded to it): a launch by a
 * person brings the dashboard up; the login item's --hidden launch stays in the tray.
 */
export function launchActions(req: LaunchRequest): LaunchAction[] {
  const actions: LaunchAction[] = [];
  if (req.debug) actions.push({ kind: 'debug-on' });
  const wantsWindow = req.show || req.forceRenewal || req.debug || !req.hidden;
  if (wantsWindow) actions.push({ kind: 'open-dashboard', view: req.debug && !req.forceRenewal ? 'events' : 'overview' });
  if (req.forceRenewal) actions.push({ kind: 'confirm-force-renewal' });
  return actions;
}
