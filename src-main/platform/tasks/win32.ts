import os from 'node:os';
import { DEVICE_STATE_DIRS } from '../../base/paths.js';
import path from 'node:path';
import { WINDOWS_EVENT_SOURCE } from '../event-sinks.js';
import { deviceStateArgs, type InstallPlan, type PlannedCommand, type RemovalPlan, type TaskRegistrar, type TaskRequest } from './types.js';

/**
 * Windows Task Scheduler: one task per scope, created from task XML with `schtasks /Create /XML`.
 * - User task (any member of BUILTIN\Users, as the logged-on user): at logon, hourly, and when a network
 *   connects (NetworkProfile event 10000, after 1 minute) it starts the daemon; "IgnoreNew" makes the
 *   hourly and network starts no-ops while the daemon runs, and restarts it if it died.
 * - Device task (SYSTEM, S-1-5-18): at boot, hourly, and on network connect, one due pass (`--once`). SYSTEM and
 *   not Network Service, which the original sources use (issue 25.3, decided here): the device pass writes the
 *   machine-wide browser policy under HKLM\SOFTWARE\Policies, which only SYSTEM and administrators may write
 *   (Users and Network Service can only read it). On the network both accounts act as the computer account
 *   (learn.microsoft.com/windows/win32/services/networkservice-account: NetworkService "presents the computer's
 *   credentials to remote servers"; localsystem-account: LocalSystem likewise), so nothing the device side needs is
 *   lost by SYSTEM; the user side (issue 22) never runs as either.
 * - The Event Log source (HKLM\SYSTEM\…\EventLog\Application\<source>) is registered with the device task, by
 *   the administrator who installs it, so every installer that runs `install --device` (NSIS, MSI) has it; the
 *   user task only writes events (Write-EventLog needs a registered source, and only administrators may register one).
 * Missed starts run when the machine is next available (StartWhenAvailable): the catch-up after sleep.
 */
export const WINDOWS_TASKS = {
  folder: '\\Device Trust Agent',
  user: '\\Device Trust Agent\\User task',
  device: '\\Device Trust Agent\\Device task',
} as const;

export const WINDOWS_DEVICE_STATE_DIR = DEVICE_STATE_DIRS.win32!;
const USERS_GROUP_SID = 'S-1-5-32-545';
const LOCAL_SYSTEM_SID = 'S-1-5-18';
const NETWORK_CONNECTED_QUERY = '<QueryList><Query Id="0" Path="Microsoft-Windows-NetworkProfile/Operational"><Select Path="Microsoft-Windows-NetworkProfile/Operational">*[System[Provider[@Name=\'Microsoft-Windows-NetworkProfile\'] and EventID=10000]]</Select></Query></QueryList>';

export function xmlEscape(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&apos;');
}

/** One argument as the Microsoft C runtime parses a command line (quotes, and backslashes before quotes). */
export function windowsArg(a: string): string {
  if (a !== '' && !/[\s"]/.test(a)) return a;
  let out = '"';
  let slashes = 0;
  for (const ch of a) {
    if (ch === '\\') {
      slashes++;
      continue;
    }
    out += ch === '"' ? '\\'.repeat(slashes * 2 + 1) + '"' : '\\'.repeat(slashes) + ch;
    slashes = 0;
  }
  return `${out}${'\\'.repeat(slashes * 2)}"`;
}

/** Task Scheduler wants local time without a zone for StartBoundary ("run at this wall-clock time"). */
function localDateTime(d: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

export function taskXml(req: TaskRequest): string {
  const [command, ...lead] = req.agent;
  const device = req.scope === 'device';
  const args = [...lead, 'daemon', ...(device ? ['--once', '--device', '--trigger', 'timer', ...deviceStateArgs(req, WINDOWS_DEVICE_STATE_DIR)] : ['--trigger', 'logon']), ...req.extraArgs].map(windowsArg).join(' ');
  const start = localDateTime(req.now ?? new Date());
  const first = device
    ? `    <BootTrigger>
      <Enabled>true</Enabled>
      <Delay>PT2M</Delay>
    </BootTrigger>`
    : `    <LogonTrigger>
      <Enabled>true</Enabled>
    </LogonTrigger>`;
  const principal = device
    ? `<UserId>${LOCAL_SYSTEM_SID}</UserId>
      <RunLevel>HighestAvailable</RunLevel>`
    : `<GroupId>${USERS_GROUP_SID}</GroupId>
      <RunLevel>LeastPrivilege</RunLevel>`;
  return `<?xml version="1.0" encoding="UTF-16"?>
<Task version="1.2" xmlns="http://schemas.microsoft.com/windows/2004/02/mit/task">
  <RegistrationInfo>
    <Author>Device Trust Agent</Author>
    <Description>${xmlEscape(device ? 'Device Trust Agent device task: machine-wide browser policy.' : 'Device Trust Agent user task: enrolls and renews this device\'s trust certificate.')}</Description>
    <URI>${xmlEscape(device ? WINDOWS_TASKS.device : WINDOWS_TASKS.user)}</URI>
  </RegistrationInfo>
  <Triggers>
${first}
    <CalendarTrigger>
      <Enabled>true</Enabled>
      <StartBoundary>${start}</StartBoundary>
      <Repetition>
        <Interval>PT1H</Interval>
        <Duration>P1D</Duration>
        <StopAtDurationEnd>false</StopAtDurationEnd>
      </Repetition>
      <ScheduleByDay>
        <DaysInterval>1</DaysInterval>
      </ScheduleByDay>
    </CalendarTrigger>
    <EventTrigger>
      <Enabled>true</Enabled>
      <Subscription>${xmlEscape(NETWORK_CONNECTED_QUERY)}</Subscription>
      <Delay>PT1M</Delay>
    </EventTrigger>
  </Triggers>
  <Principals>
    <Principal id="Author">
      ${principal}
    </Principal>
  </Principals>
${taskSettingsXml(device ? 'PT30M' : 'PT0S', `    <RunOnlyIfNetworkAvailable>false</RunOnlyIfNetworkAvailable>
    <AllowStartOnDemand>true</AllowStartOnDemand>
    <Enabled>true</Enabled>
    <Hidden>false</Hidden>
    <Priority>7</Priority>
`)}
${taskActionXml(command, args)}`;
}

/**
 * The <Settings> of every task of ours: one instance at a time, on battery as on mains, a missed start run when
 * the machine is next available, `limit` as the run-time limit (PT0S: none); `more` is further elements, each
 * line indented and ended.
 */
export function taskSettingsXml(limit: string, more = ''): string {
  return `  <Settings>
    <MultipleInstancesPolicy>IgnoreNew</MultipleInstancesPolicy>
    <DisallowStartIfOnBatteries>false</DisallowStartIfOnBatteries>
    <StopIfGoingOnBatteries>false</StopIfGoingOnBatteries>
    <StartWhenAvailable>true</StartWhenAvailable>
    <ExecutionTimeLimit>${limit}</ExecutionTimeLimit>
${more}  </Settings>`;
}

/** The one action of our tasks, and the end of the task XML: the program and its arguments. */
export function taskActionXml(command: string | undefined, args: string): string {
  return `  <Actions Context="Author">
    <Exec>
      <Command>${xmlEscape(command ?? '')}</Command>
      <Arguments>${xmlEscape(args)}</Arguments>
    </Exec>
  </Actions>
</Task>
`;
}

/** Task Scheduler's own exports are UTF-16 with a byte-order mark; schtasks reads them reliably. */
export function utf16le(text: string): Buffer {
  return Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(text.replace(/\r?\n/g, '\r\n'), 'utf16le')]);
}

const schtasks = (args: string[], what: string, optional?: string): PlannedCommand => ({ file: 'schtasks', args, what, ...(optional ? { optional } : {}) });

/**
 * The Event Log source, as New-EventLog makes it (the key, EventMessageFile = the .NET message file that formats any
 * event ID as its message text, TypesSupported 7); /reg:64 so a 32-bit caller writes the 64-bit view. reg.exe gets
 * %SystemRoot% unexpanded (no shell), which REG_EXPAND_SZ keeps as written.
 */
export const WINDOWS_EVENT_SOURCE_KEY = `HKLM\\SYSTEM\\CurrentControlSet\\Services\\EventLog\\Application\\${WINDOWS_EVENT_SOURCE}`;
export const WINDOWS_EVENT_MESSAGE_FILE = '%SystemRoot%\\Microsoft.NET\\Framework64\\v4.0.30319\\EventLogMessages.dll';
const reg = (args: string[], what: string, optional?: string): PlannedCommand => ({ file: 'reg', args: [...args, '/reg:64'], what, ...(optional ? { optional } : {}) });
const registerEventSource = (): PlannedCommand[] => [
  reg(['add', WINDOWS_EVENT_SOURCE_KEY, '/v', 'EventMessageFile', '/t', 'REG_EXPAND_SZ', '/d', WINDOWS_EVENT_MESSAGE_FILE, '/f'], `register the Event Log source "${WINDOWS_EVENT_SOURCE}"`),
  reg(['add', WINDOWS_EVENT_SOURCE_KEY, '/v', 'TypesSupported', '/t', 'REG_DWORD', '/d', '7', '/f'], 'register the Event Log source\'s event types'),
];

export const win32Tasks: TaskRegistrar = {
  platform: 'win32',
  deviceStateDir: WINDOWS_DEVICE_STATE_DIR,

  install(req: TaskRequest): InstallPlan {
    const name = req.scope === 'device' ? WINDOWS_TASKS.device : WINDOWS_TASKS.user;
    const xmlFile = path.join(req.tmpDir ?? os.tmpdir(), `device-trust-agent-${req.scope}-task.xml`);
    return {
      platform: 'win32', scope: req.scope, mode: 'task-scheduler',
      files: [{ path: xmlFile, content: utf16le(taskXml(req)), mode: 0o600, what: `task XML for ${name}` }],
      commands: [
        schtasks(['/Create', '/TN', name, '/XML', xmlFile, '/F'], `register ${name}`),
        // The user task starts as its principal (each signed-in member of Users), never as whoever runs this
        // (SYSTEM under SCCM/Intune): the install's first user pass is this start, not a pass of the installer's.
        ...(req.scope === 'user' ? [schtasks(['/Run', '/TN', name], `start ${name} now`, 'it starts at the next logon')] : []),
        ...(req.scope === 'device' ? registerEventSource() : []),
      ],
      cleanup: [xmlFile],
      notes: req.scope === 'device' ? ['The device task is registered by an administrator (the installer runs elevated).'] : [],
    };
  },

  uninstall(req: TaskRequest): RemovalPlan {
    const name = req.scope === 'device' ? WINDOWS_TASKS.device : WINDOWS_TASKS.user;
    return {
      platform: 'win32', scope: req.scope, files: [], dirs: [], after: [],
      commands: [
        schtasks(['/End', '/TN', name], `stop ${name}`, 'it was not running'),
        schtasks(['/Delete', '/TN', name, '/F'], `delete ${name}`, 'it was not registered'),
        ...(req.scope === 'device' ? [reg(['delete', WINDOWS_EVENT_SOURCE_KEY, '/f'], 'remove the Event Log source', 'it was not registered')] : []),
      ],
      notes: [`Task Scheduler keeps the empty folder ${WINDOWS_TASKS.folder}; schtasks cannot remove folders.`],
    };
  },
};
