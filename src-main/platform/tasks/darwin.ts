import os from 'node:os';
import { DEVICE_STATE_DIRS } from '../../base/paths.js';
import path from 'node:path';
import { renderPlist } from '../policy-model.js';
import { deviceStateArgs, type InstallPlan, type PlannedCommand, type RemovalPlan, type TaskRegistrar, type TaskRequest } from './types.js';

/**
 * launchd: a LaunchAgent for the user task (loaded in the user's GUI session: the logon trigger; it keeps
 * the daemon running) and a LaunchDaemon for the device task (at load, hourly — launchd runs an interval
 * missed during sleep once on wake — and when the network configuration changes).
 */
export const MAC_LABELS = {
  user: 'com.example.devicetrustagent.user',
  device: 'com.example.devicetrustagent.device',
} as const;

export const MAC_DEVICE_STATE_DIR = DEVICE_STATE_DIRS.darwin!;
/** Rewritten by configd whenever the network (and so DNS) configuration changes, VPN included. */
export const MAC_NETWORK_WATCH_PATH = '/private/var/run/resolv.conf';

function home(env: NodeJS.ProcessEnv): string {
  return env.HOME || os.homedir();
}

export function launchAgentPath(env: NodeJS.ProcessEnv): string {
  return path.join(home(env), 'Library', 'LaunchAgents', `${MAC_LABELS.user}.plist`);
}

export function macLogDir(env: NodeJS.ProcessEnv): string {
  return path.join(home(env), 'Library', 'Logs', 'device-trust-agent');
}

export const LAUNCH_DAEMON_PATH = `/Library/LaunchDaemons/${MAC_LABELS.device}.plist`;
/**
 * Installed by root (the package's postinstall): the LaunchAgent goes to /Library/LaunchAgents, which launchd
 * loads into EVERY user's GUI session at login, and is bootstrapped now into the console user's domain
 * (gui/<their uid>) — never gui/0 with a plist under /var/root.
 */
export const GLOBAL_LAUNCH_AGENT_PATH = `/Library/LaunchAgents/${MAC_LABELS.user}.plist`;

/** Whether this process is root (tests replace it). */
export const darwinProcess = { isRoot: (): boolean => typeof process.getuid === 'function' && process.getuid() === 0 };

/** The console user's uid when root installs: TaskRequest.uid, or DTA_CONSOLE_UID from the postinstall. */
function consoleUid(req: TaskRequest): number | undefined {
  const n = req.uid ?? Number(req.env.DTA_CONSOLE_UID ?? NaN);
  return Number.isInteger(n) && n > 0 ? n : undefined;
}

export function launchAgentPlist(req: TaskRequest, global = false): string {
  const log = path.join(macLogDir(req.env), 'daemon.log');
  return renderPlist({
    Label: MAC_LABELS.user,
    ProgramArguments: [...req.agent, 'daemon', '--trigger', 'logon', ...req.extraArgs],
    RunAtLoad: true,
    // Restarted if it crashes; a clean exit (a second daemon that found the first running) is left alone.
    KeepAlive: { SuccessfulExit: false },
    ProcessType: 'Background',
    // One file for every user (global) can name no per-user log path (the agent keeps its own log), and is for GUI sessions.
    ...(global ? { LimitLoadToSessionType: 'Aqua' } : { StandardOutPath: log, StandardErrorPath: log }),
  });
}

export function launchDaemonPlist(req: TaskRequest): string {
  return renderPlist({
    Label: MAC_LABELS.device,
    ProgramArguments: [...req.agent, 'daemon', '--once', '--device', '--trigger', 'timer', ...deviceStateArgs(req, MAC_DEVICE_STATE_DIR), ...req.extraArgs],
    RunAtLoad: true,
    StartInterval: 3600,
    WatchPaths: [MAC_NETWORK_WATCH_PATH],
    ProcessType: 'Background',
  });
}

const launchctl = (args: string[], what: string, optional?: string): PlannedCommand => ({ file: 'launchctl', args, what, ...(optional ? { optional } : {}) });

/**
 * `bootout` returns while launchd is still stopping the job (SIGTERM, then SIGKILL after its ExitTimeOut, 20 s by
 * default: launchd.plist(5)); a `bootstrap` in that window fails with "Bootstrap failed: 5: Input/output error"
 * (issue 25.10; public reports of the same race: openclaw/openclaw#136453 "bootstrap follows bootout too quickly",
 * chenhg5/cc-connect#35, tomcounsell/ai#2013, DeterminateSystems/nix-installer#1157 on `bootstrap system`). So the
 * install waits until `launchctl print <service>` no longer finds the job (it then exits 113, "Could not find
 * service") before loading the new file. The deadline covers ExitTimeOut with room to spare.
 */
export const LAUNCHD_GONE_DEADLINE_MS = 30_000;
export const LAUNCHD_GONE_INTERVAL_MS = 250;
const untilGone = (service: string, what: string): PlannedCommand => ({
  file: 'launchctl', args: ['print', service], what, untilGone: { deadlineMs: LAUNCHD_GONE_DEADLINE_MS, intervalMs: LAUNCHD_GONE_INTERVAL_MS }, timeoutMs: 10_000,
});

function uidOf(req: TaskRequest): number {
  return req.uid ?? (typeof process.getuid === 'function' ? process.getuid() : 501);
}

export const darwinTasks: TaskRegistrar = {
  platform: 'darwin',
  deviceStateDir: MAC_DEVICE_STATE_DIR,

  install(req: TaskRequest): InstallPlan {
    if (req.scope === 'device') {
      return {
        platform: 'darwin', scope: 'device', mode: 'launchd', cleanup: [], notes: [],
        files: [{ path: LAUNCH_DAEMON_PATH, content: launchDaemonPlist(req), mode: 0o644, what: 'LaunchDaemon (device task)' }],
        commands: [
          // A previous version may be loaded: unload it first so bootstrap loads the new file.
          launchctl(['bootout', `system/${MAC_LABELS.device}`], 'unload a previous device task', 'none was loaded'),
          untilGone(`system/${MAC_LABELS.device}`, 'wait until launchd has let go of the previous device task'),
          // Not optional: a device task that did not load is a failed install (the package's postinstall fails).
          launchctl(['bootstrap', 'system', LAUNCH_DAEMON_PATH], 'load the device task'),
        ],
      };
    }
    if (darwinProcess.isRoot()) {
      const uid = consoleUid(req);
      return {
        platform: 'darwin', scope: 'user', mode: 'launchd', cleanup: [],
        notes: uid ? [] : ['No user is logged in at the console: the user task loads at the next login.'],
        files: [{ path: GLOBAL_LAUNCH_AGENT_PATH, content: launchAgentPlist(req, true), mode: 0o644, what: 'LaunchAgent for every user (user task)' }],
        commands: uid
          ? [
              launchctl(['bootout', `gui/${uid}/${MAC_LABELS.user}`], 'unload a previous user task', 'none was loaded'),
              untilGone(`gui/${uid}/${MAC_LABELS.user}`, 'wait until launchd has let go of the previous user task'),
              launchctl(['bootstrap', `gui/${uid}`, GLOBAL_LAUNCH_AGENT_PATH], `load the user task for the console user (uid ${uid})`, 'the user is not in a GUI session now: it loads at the next login'),
            ]
          : [],
      };
    }
    const domain = `gui/${uidOf(req)}`;
    const file = launchAgentPath(req.env);
    return {
      platform: 'darwin', scope: 'user', mode: 'launchd', cleanup: [], notes: [],
      files: [{ path: file, content: launchAgentPlist(req), mode: 0o644, what: 'LaunchAgent (user task)' }],
      commands: [
        launchctl(['bootout', `${domain}/${MAC_LABELS.user}`], 'unload a previous user task', 'none was loaded'),
        untilGone(`${domain}/${MAC_LABELS.user}`, 'wait until launchd has let go of the previous user task'),
        launchctl(['bootstrap', domain, file], 'load the user task', 'no GUI session for this user now: it loads at the next login'),
      ],
    };
  },

  uninstall(req: TaskRequest): RemovalPlan {
    if (req.scope === 'device') {
      return {
        platform: 'darwin', scope: 'device', dirs: [], notes: [], after: [],
        commands: [launchctl(['bootout', `system/${MAC_LABELS.device}`], 'unload the device task', 'it was not loaded')],
        files: [LAUNCH_DAEMON_PATH],
      };
    }
    if (darwinProcess.isRoot()) {
      const uid = consoleUid(req);
      return {
        platform: 'darwin', scope: 'user', notes: [], after: [], dirs: [],
        commands: uid ? [launchctl(['bootout', `gui/${uid}/${MAC_LABELS.user}`], 'unload the user task', 'it was not loaded')] : [],
        files: [GLOBAL_LAUNCH_AGENT_PATH],
      };
    }
    return {
      platform: 'darwin', scope: 'user', notes: [], after: [],
      commands: [launchctl(['bootout', `gui/${uidOf(req)}/${MAC_LABELS.user}`], 'unload the user task', 'it was not loaded')],
      files: [launchAgentPath(req.env), path.join(macLogDir(req.env), 'daemon.log')],
      dirs: [macLogDir(req.env)],
    };
  },
};
