import fs from 'node:fs';
import { DEVICE_STATE_DIRS } from '../../base/paths.js';
import os from 'node:os';
import path from 'node:path';
import { SHARED_PRIMARY_HANDLE } from '../linux-keys.js';
import { NSSDB_MODULE_FILE, NSSDB_TOKEN_URI } from '../p11kit-bridge.js';
import { deviceStateArgs, type InstallPlan, type PlannedCommand, type RemovalPlan, type TaskRegistrar, type TaskRequest } from './types.js';

/** Unit and file names: one place, so install and uninstall cannot drift apart. */
export const LINUX_NAMES = {
  userDaemon: 'device-trust-agent.service',
  userCheck: 'device-trust-agent-check.service',
  userCheckTimer: 'device-trust-agent-check.timer',
  userP11Kit: 'device-trust-agent-p11-kit.service',
  deviceService: 'device-trust-agent-device.service',
  deviceTimer: 'device-trust-agent-device.timer',
  autostart: 'device-trust-agent.desktop',
} as const;

export const DEVICE_STATE_DIR = DEVICE_STATE_DIRS.linux!;
export const SYSTEM_UNIT_DIR = '/etc/systemd/system';

/** One ExecStart= argument, quoted by systemd's rules (specifiers `%` and variables `$` escaped). */
export function systemdArg(a: string): string {
  const s = a.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/%/g, '%%').replace(/\$/g, '$$$$');
  return a === '' || /[\s"'\\;]/.test(a) ? `"${s}"` : s;
}

/** One Exec= argument of a desktop entry, quoted by the Desktop Entry Specification. */
export function desktopArg(a: string): string {
  const s = a.replace(/%/g, '%%');
  const quoted = /[\s"'\\><~|&;$*?#()`]/.test(s) || s === '' ? `"${s.replace(/(["`$\\])/g, '\\$1')}"` : s;
  // The value is itself a desktop-entry string, in which a backslash is written twice.
  return quoted.replace(/\\/g, '\\\\');
}

function configHome(env: NodeJS.ProcessEnv): string {
  return env.XDG_CONFIG_HOME || path.join(env.HOME || os.homedir(), '.config');
}

export function userUnitDir(env: NodeJS.ProcessEnv): string {
  return path.join(configHome(env), 'systemd', 'user');
}

export function autostartDir(env: NodeJS.ProcessEnv): string {
  return path.join(configHome(env), 'autostart');
}

/** systemd is the init system (sd_booted(3)): then a user manager runs in every session. */
export function systemdBooted(): boolean {
  return fs.existsSync('/run/systemd/system');
}

const execLine = (req: TaskRequest, args: string[]) => [...req.agent, ...args, ...req.extraArgs].map(systemdArg).join(' ');

export function userUnits(req: TaskRequest): Record<string, string> {
  return {
    [LINUX_NAMES.userDaemon]: `# Written by device-trust-agent install; removed by device-trust-agent uninstall.
[Unit]
Description=Device Trust Agent (user task): keeps this device's trust certificate current

[Service]
Type=simple
# Started with the user's session: that is the logon trigger. The daemon then runs the daily passes,
# the renewal moment, retries and network-change passes itself, idle in between.
ExecStart=${execLine(req, ['daemon', '--trigger', 'logon'])}
Restart=on-failure
RestartSec=60
Nice=10

[Install]
WantedBy=default.target
`,
    [LINUX_NAMES.userCheck]: `# Written by device-trust-agent install; removed by device-trust-agent uninstall.
[Unit]
Description=Device Trust Agent (user task): run a due pass when the daemon is not running

[Service]
Type=oneshot
ExecStart=${execLine(req, ['daemon', '--once', '--trigger', 'timer'])}
# 10: nothing was due; 20: the org or IWA could not be reached (retried later) — neither is a unit failure.
SuccessExitStatus=10 20
Nice=10
`,
    [LINUX_NAMES.userP11Kit]: `# Written by device-trust-agent install; removed by device-trust-agent uninstall.
[Unit]
Description=Device Trust Agent (user task): serves the device key's NSS token to Firefox (p11-kit server)
# Only when the key is in the NSS software token and Firefox is set up: the agent then writes this module file.
ConditionPathExists=%E/pkcs11/modules/${NSSDB_MODULE_FILE}

[Service]
Type=simple
# The socket p11-kit's client module (loaded by each Firefox profile) finds by default; owner-only.
RuntimeDirectory=p11-kit
RuntimeDirectoryMode=0700
ExecStart=/usr/bin/p11-kit server --foreground --name %t/p11-kit/pkcs11 ${systemdArg(NSSDB_TOKEN_URI)}
Restart=on-failure
RestartSec=10

[Install]
WantedBy=default.target
`,
    [LINUX_NAMES.userCheckTimer]: `# Written by device-trust-agent install; removed by device-trust-agent uninstall.
[Unit]
Description=Device Trust Agent (user task): hourly check for a due pass

[Timer]
OnStartupSec=5min
OnCalendar=hourly
# A check missed while the machine was off or asleep runs once on wake.
Persistent=true
RandomizedDelaySec=5min

[Install]
WantedBy=timers.target
`,
  };
}

export function deviceUnits(req: TaskRequest): Record<string, string> {
  return {
    [LINUX_NAMES.deviceService]: `# Written by device-trust-agent install --device; removed by device-trust-agent uninstall --device.
[Unit]
Description=Device Trust Agent (device service): the only user of the machine keytab; machine-wide browser policy
Wants=network-online.target
After=network-online.target

[Service]
Type=simple
StateDirectory=device-trust-agent
StateDirectoryMode=0700
# The channel the user tasks ask for device tokens (docs/PROTOCOL.md §13): this directory root-owned 0755; one
# directory per user inside, owned by that user, 0700, made by the service.
RuntimeDirectory=device-trust-agent
RuntimeDirectoryMode=0755
ExecStart=${execLine(req, ['daemon', '--device', ...deviceStateArgs(req, DEVICE_STATE_DIR)])}
Restart=on-failure
RestartSec=30

[Install]
WantedBy=multi-user.target
`,
    [LINUX_NAMES.deviceTimer]: `# Written by device-trust-agent install --device; removed by device-trust-agent uninstall --device.
[Unit]
Description=Device Trust Agent (device service): hourly, start it if it is not running

[Timer]
OnBootSec=2min
OnCalendar=hourly
Persistent=true
RandomizedDelaySec=5min

[Install]
WantedBy=timers.target
`,
  };
}

export function autostartEntry(req: TaskRequest): string {
  const exec = [...req.agent, 'daemon', '--trigger', 'logon', ...req.extraArgs].map(desktopArg).join(' ');
  return `[Desktop Entry]
Type=Application
Name=Device Trust Agent
Comment=Keeps this device's trust certificate current (user task)
Exec=${exec}
Terminal=false
NoDisplay=true
X-GNOME-Autostart-enabled=true
`;
}

const systemctl = (user: boolean, args: string[], what: string, optional?: string): PlannedCommand => ({
  file: 'systemctl', args: [...(user ? ['--user'] : []), ...args], what, ...(optional ? { optional } : {}),
});

const NO_MANAGER = 'no systemd manager is running here (a container, or no session)';
const NO_MANAGER_YET = `${NO_MANAGER}: the units take effect at the next login or boot`;

export const linuxTasks: TaskRegistrar = {
  platform: 'linux',
  deviceStateDir: DEVICE_STATE_DIR,

  install(req: TaskRequest): InstallPlan {
    if (req.scope === 'device') {
      const units = deviceUnits(req);
      return {
        platform: 'linux', scope: 'device', mode: 'systemd', cleanup: [], notes: [],
        files: Object.entries(units).map(([name, content]) => ({ path: path.join(SYSTEM_UNIT_DIR, name), content, mode: 0o644, what: `system unit ${name}` })),
        commands: [
          systemctl(false, ['daemon-reload'], 'reload systemd', NO_MANAGER),
          // `enable` works without a running manager (it only makes the symlinks), so it is not optional.
          systemctl(false, ['enable', LINUX_NAMES.deviceService, LINUX_NAMES.deviceTimer], 'enable the device service (at boot) and its hourly timer'),
          systemctl(false, ['restart', LINUX_NAMES.deviceService], 'start the device service now (the user tasks need it for enrollment)', NO_MANAGER_YET),
          systemctl(false, ['start', LINUX_NAMES.deviceTimer], 'start the device timer', NO_MANAGER_YET),
        ],
      };
    }
    if ((req.linuxMode ?? (systemdBooted() ? 'systemd' : 'autostart')) === 'autostart') {
      const dir = autostartDir(req.env);
      return {
        platform: 'linux', scope: 'user', mode: 'autostart', cleanup: [], commands: [],
        files: [{ path: path.join(dir, LINUX_NAMES.autostart), content: autostartEntry(req), mode: 0o644, what: 'XDG autostart entry (starts the daemon at login)' }],
        notes: ['No systemd: the daemon starts at each graphical login from the XDG autostart entry; it runs its own daily timer.'],
      };
    }
    const dir = userUnitDir(req.env);
    return {
      platform: 'linux', scope: 'user', mode: 'systemd', cleanup: [], notes: [],
      files: Object.entries(userUnits(req)).map(([name, content]) => ({ path: path.join(dir, name), content, mode: 0o644, what: `user unit ${name}` })),
      commands: [
        systemctl(true, ['daemon-reload'], 'reload the user manager', NO_MANAGER),
        systemctl(true, ['enable', LINUX_NAMES.userDaemon, LINUX_NAMES.userCheckTimer, LINUX_NAMES.userP11Kit], 'enable the daemon (at login), the hourly check and the Firefox token server'),
        systemctl(true, ['start', LINUX_NAMES.userDaemon, LINUX_NAMES.userCheckTimer], 'start them now', NO_MANAGER_YET),
      ],
    };
  },

  uninstall(req: TaskRequest): RemovalPlan {
    if (req.scope === 'device') {
      return {
        platform: 'linux', scope: 'device', dirs: [],
        // Evicting it would make every user's TPM token (and device key) on this machine unusable.
        notes: [`The TPM's shared storage primary key (persistent handle ${SHARED_PRIMARY_HANDLE}, made by install --device or a user's first TPM enrollment) is kept: users' TPM tokens are under it. Once no user's token needs it, an administrator may remove it: tpm2_evictcontrol -C o -c ${SHARED_PRIMARY_HANDLE}`],
        commands: [
          systemctl(false, ['stop', LINUX_NAMES.deviceTimer, LINUX_NAMES.deviceService], 'stop the device task', NO_MANAGER),
          systemctl(false, ['disable', LINUX_NAMES.deviceService, LINUX_NAMES.deviceTimer], 'disable the device service and timer', 'they were not enabled'),
        ],
        files: Object.keys(deviceUnits(req)).map((n) => path.join(SYSTEM_UNIT_DIR, n)),
        after: [systemctl(false, ['daemon-reload'], 'reload systemd', NO_MANAGER)],
      };
    }
    // Both modes are removed whichever was installed: nothing is left behind after a mode change either.
    const unitDir = userUnitDir(req.env);
    const units = Object.keys(userUnits(req));
    const present = units.filter((n) => fs.existsSync(path.join(unitDir, n)));
    return {
      platform: 'linux', scope: 'user', notes: [],
      commands: present.length ? [
        systemctl(true, ['stop', LINUX_NAMES.userDaemon, LINUX_NAMES.userCheckTimer, LINUX_NAMES.userCheck, LINUX_NAMES.userP11Kit], 'stop the daemon, the hourly check and the Firefox token server', NO_MANAGER),
        systemctl(true, ['disable', LINUX_NAMES.userDaemon, LINUX_NAMES.userCheckTimer, LINUX_NAMES.userP11Kit], 'disable them', 'they were not enabled'),
      ] : [],
      files: [...units.map((n) => path.join(unitDir, n)), path.join(autostartDir(req.env), LINUX_NAMES.autostart)],
      dirs: [unitDir, path.dirname(unitDir), autostartDir(req.env)],
      after: present.length ? [systemctl(true, ['daemon-reload'], 'reload the user manager', NO_MANAGER)] : [],
    };
  },
};
