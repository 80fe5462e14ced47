/**
 * macOS: the device side is a LaunchDaemon (root, kept alive) serving the same Unix-socket channel as Linux
 * (device-channel-unix.ts) under /var/run/device-trust-agent: a root 0755 directory, a knock socket, and one
 * directory per user owned by that uid, mode 0700, holding device.sock. macOS has getpeereid(3), but Node does not
 * expose it; the directory permission authenticates the caller, as on Linux. The user side finds its endpoint by
 * its own uid (no /run/user on macOS: it knocks). Data only here; installers (pkg scripts) are issue 25's.
 */
import { renderPlist } from './policy-model.js';

export const MAC_DEVICE_SERVICE_LABEL = 'com.example.devicetrustagent.device-service';
export const MAC_DEVICE_SERVICE_PLIST = `/Library/LaunchDaemons/${MAC_DEVICE_SERVICE_LABEL}.plist`;
export const MAC_CHANNEL_DIR = '/var/run/device-trust-agent';
export const MAC_DEVICE_SERVICE_LOG = '/Library/Logs/device-trust-agent/device-service.log';

/** What the user side tells a person to run when the device service is not running. */
export const MAC_START_COMMAND = `sudo launchctl bootstrap system ${MAC_DEVICE_SERVICE_PLIST}`;

/**
 * The LaunchDaemon: root, started at boot and kept running (it is the only holder of the machine credentials, and
 * user sides ask it at any time). `agent` is the agent's command (binary, or node + script).
 */
export function macDeviceServicePlist(agent: string[], stateDir: string): string {
  return renderPlist({
    Label: MAC_DEVICE_SERVICE_LABEL,
    ProgramArguments: [...agent, 'daemon', '--device', '--trigger', 'logon', '--state-dir', stateDir],
    RunAtLoad: true,
    KeepAlive: true,
    // launchd would otherwise restart a crash loop every 10 s.
    ThrottleInterval: 60,
    UserName: 'root',
    GroupName: 'wheel',
    // A fixed environment: nothing from a user's session reaches the device side.
    EnvironmentVariables: { PATH: '/usr/bin:/bin:/usr/sbin:/sbin', DTA_DEVICE_CHANNEL_DIR: MAC_CHANNEL_DIR },
    StandardOutPath: MAC_DEVICE_SERVICE_LOG,
    StandardErrorPath: MAC_DEVICE_SERVICE_LOG,
    ProcessType: 'Standard',
  });
}

/** launchctl command lines (file, args) that load, restart and unload the device service. */
export const macDeviceServiceCommands = {
  load: { file: 'launchctl', args: ['bootstrap', 'system', MAC_DEVICE_SERVICE_PLIST] },
  restart: { file: 'launchctl', args: ['kickstart', '-k', `system/${MAC_DEVICE_SERVICE_LABEL}`] },
  unload: { file: 'launchctl', args: ['bootout', `system/${MAC_DEVICE_SERVICE_LABEL}`] },
} as const;

/** The channel's layout for one uid: what the device side makes and the user side opens (same as Linux's). */
export function macChannelLayout(uid: number): { dir: string; owner: number; mode: number }[] {
  if (!Number.isInteger(uid) || uid <= 0) throw new Error(`not a user id: ${uid}`);
  return [
    { dir: MAC_CHANNEL_DIR, owner: 0, mode: 0o755 },
    { dir: `${MAC_CHANNEL_DIR}/users`, owner: 0, mode: 0o755 },
    { dir: `${MAC_CHANNEL_DIR}/users/${uid}`, owner: uid, mode: 0o700 },
  ];
}
