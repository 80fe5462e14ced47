/**
 * Windows: the device side and its channel, as data (docs/PROTOCOL.md §13.3). Not wired at run time yet: on
 * Windows the user side still gets its device token itself (Platform.deviceChannel is absent).
 *
 * Decision. A named pipe per user with an ACL is the textbook channel, but Node cannot give a pipe it creates a
 * security descriptor (libuv uses the default DACL: Everyone may read), and asking the pipe for its client
 * (GetNamedPipeClientProcessId, ImpersonateNamedPipeClient) needs Win32 calls that ConstrainedLanguage PowerShell
 * forbids. So Windows uses what Linux and macOS use: a directory per user whose ACL, set by the OS's own `icacls`,
 * admits only SYSTEM, Administrators and that user's SID — the file system authenticates the caller. The user
 * side drops `<nonce>.req.json` into its directory; the device side (a SYSTEM task, the only holder of the
 * computer account's Kerberos credentials) answers with `<nonce>.ans.json` beside it and deletes both. The knock
 * directory lets Users add a file (named by their SID) and read nothing.
 */
import { taskActionXml, taskSettingsXml, WINDOWS_TASKS, windowsArg } from './tasks/win32.js';

export const WIN_CHANNEL_DIR = 'C:\\ProgramData\\device-trust-agent\\channel';
export const WIN_DEVICE_SERVICE_TASK = `${WINDOWS_TASKS.folder}\\Device service`;
export const WIN_START_COMMAND = `schtasks /Run /TN "${WIN_DEVICE_SERVICE_TASK}" (as an administrator)`;

const SYSTEM = 'S-1-5-18';
const ADMINISTRATORS = 'S-1-5-32-544';
const USERS = 'S-1-5-32-545';
/** FILE_GENERIC_READ | FILE_GENERIC_WRITE | FILE_GENERIC_EXECUTE | DELETE: "Modify", without WRITE_DAC or WRITE_OWNER. */
const MODIFY = '0x1301bf';
/** FILE_ADD_FILE | SYNCHRONIZE: create a file in the directory, list and read nothing. */
const ADD_FILE_ONLY = '0x100002';

/** Local and domain accounts (S-1-5-21-…) and Entra ID accounts (S-1-12-1-…); anything else is refused. */
const USER_SID = /^S-1-(?:5-21(?:-\d{1,10}){4}|12-1(?:-\d{1,10}){4})$/;

export function isUserSid(sid: string): boolean {
  return USER_SID.test(sid);
}

function requireSid(sid: string): string {
  if (!isUserSid(sid)) throw new Error(`not a user SID: ${JSON.stringify(sid)}`);
  return sid;
}

export const winUserDir = (sid: string) => `${WIN_CHANNEL_DIR}\\users\\${requireSid(sid)}`;
export const winKnockDir = `${WIN_CHANNEL_DIR}\\knock`;

/**
 * The security descriptor a user's directory must have: owner SYSTEM, protected (nothing inherited from
 * ProgramData, where Users may create folders), SYSTEM and Administrators full control, the user Modify, all
 * inherited by the request and answer files. The device side reads it back (Get-Acl …).Sddl and compares.
 */
export function winUserDirSddl(sid: string): string {
  return `O:SYG:SYD:PAI(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)(A;OICI;${MODIFY};;;${requireSid(sid)})`;
}

export const WIN_KNOCK_DIR_SDDL = `O:SYG:SYD:PAI(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)(A;;${ADD_FILE_ONLY};;;BU)`;
export const WIN_CHANNEL_ROOT_SDDL = 'O:SYG:SYD:PAI(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)(A;;0x1200a9;;;BU)';

interface Cmd {
  file: string;
  args: string[];
}

/** icacls command lines that give a directory exactly the SDDL above (icacls takes SIDs as *S-1-…). */
export function winUserDirCommands(sid: string): Cmd[] {
  const dir = winUserDir(sid);
  return [
    { file: 'icacls', args: [dir, '/inheritance:r', '/grant:r', `*${SYSTEM}:(OI)(CI)F`, `*${ADMINISTRATORS}:(OI)(CI)F`, `*${sid}:(OI)(CI)M`] },
    { file: 'icacls', args: [dir, '/setowner', `*${SYSTEM}`] },
  ];
}

export function winKnockDirCommands(): Cmd[] {
  return [
    // (AD) is "append data / add subdirectory" for files; for a directory icacls' (WD) is add-file: the knock needs only that.
    { file: 'icacls', args: [winKnockDir, '/inheritance:r', '/grant:r', `*${SYSTEM}:(OI)(CI)F`, `*${ADMINISTRATORS}:(OI)(CI)F`, `*${USERS}:(WD,S)`] },
    { file: 'icacls', args: [winKnockDir, '/setowner', `*${SYSTEM}`] },
  ];
}

/** The ACEs of an SDDL string's DACL, as [type, flags, rights, trustee]. */
export function sddlAces(sddl: string): string[][] {
  const dacl = /D:[A-Z]*((?:\([^)]*\))*)/.exec(sddl)?.[1] ?? '';
  return [...dacl.matchAll(/\(([^)]*)\)/g)].map((m) => m[1]!.split(';')).map((f) => [f[0]!, f[1]!, f[2]!, f[5]!]);
}

/**
 * Whether a directory's SDDL (read back from the OS) admits only what the channel allows: protected, owned by
 * SYSTEM, allow-ACEs only, and no trustee but SYSTEM, Administrators and `sid` (or, for the knock, Users adding files).
 */
export function winDirIsPrivateTo(sddl: string, sid: string): boolean {
  if (!/^O:(SY|S-1-5-18)/.test(sddl) || !/D:P/.test(sddl)) return false;
  const allowed = new Set(['SY', SYSTEM, 'BA', ADMINISTRATORS, requireSid(sid)]);
  const aces = sddlAces(sddl);
  return aces.length > 0 && aces.every(([type, , , trustee]) => type === 'A' && allowed.has(trustee!));
}

/** The user side's SID: `whoami /user /fo csv /nh` answers `"domain\\name","S-1-5-21-…"` (any display language). */
export function parseWhoamiUser(stdout: string): string {
  const m = /"[^"]*","(S-1-[\d-]+)"/.exec(stdout.replace(/^\uFEFF/, ''));
  if (!m || !isUserSid(m[1]!)) throw new Error(`whoami /user did not name a user SID: ${JSON.stringify(stdout.slice(0, 200))}`);
  return m[1]!;
}
export const WHOAMI_USER: Cmd = { file: 'whoami', args: ['/user', '/fo', 'csv', '/nh'] };

/**
 * The device service: a Task Scheduler task as SYSTEM, started at boot and restarted on failure, running the
 * long-lived `daemon --device` (a Node process is not an SCM service, so `sc create` would fail with 1053).
 */
export function winDeviceServiceTaskXml(agent: string[], stateDir: string): string {
  const [command, ...lead] = agent;
  const args = [...lead, 'daemon', '--device', '--trigger', 'logon', '--state-dir', stateDir].map(windowsArg).join(' ');
  return `<?xml version="1.0" encoding="UTF-16"?>
<Task version="1.3" xmlns="http://schemas.microsoft.com/windows/2004/02/mit/task">
  <RegistrationInfo>
    <Description>Device Trust Agent device service: the only holder of the computer account's credentials; answers the user tasks.</Description>
  </RegistrationInfo>
  <Triggers>
    <BootTrigger>
      <Enabled>true</Enabled>
    </BootTrigger>
  </Triggers>
  <Principals>
    <Principal id="Author">
      <UserId>${SYSTEM}</UserId>
      <RunLevel>HighestAvailable</RunLevel>
    </Principal>
  </Principals>
${taskSettingsXml('PT0S', `    <RestartOnFailure>
      <Interval>PT1M</Interval>
      <Count>999</Count>
    </RestartOnFailure>
`)}
${taskActionXml(command, args)}`;
}

/** schtasks command lines that register, start and remove the device service task. */
export function winDeviceServiceCommands(xmlFile: string): { register: Cmd; start: Cmd; stop: Cmd; remove: Cmd } {
  return {
    register: { file: 'schtasks', args: ['/Create', '/TN', WIN_DEVICE_SERVICE_TASK, '/XML', xmlFile, '/F'] },
    start: { file: 'schtasks', args: ['/Run', '/TN', WIN_DEVICE_SERVICE_TASK] },
    stop: { file: 'schtasks', args: ['/End', '/TN', WIN_DEVICE_SERVICE_TASK] },
    remove: { file: 'schtasks', args: ['/Delete', '/TN', WIN_DEVICE_SERVICE_TASK, '/F'] },
  };
}
