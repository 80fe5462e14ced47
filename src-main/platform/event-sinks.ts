import { spawn } from 'node:child_process';
import type { Command } from '../base/exec.js';
import { safeText } from '../base/safe-text.js';

/** What a platform log needs of an event (a subset of AgentEvent, so this file does not depend on the log). */
export interface SinkEvent {
  id: number;
  level: 'info' | 'warning' | 'error';
  title: string;
  message: string;
}

/** The Windows Event Log source the agent writes as (registered by the installer with New-EventLog). */
export const WINDOWS_EVENT_SOURCE = 'Okta Device Trust';
export const SYSLOG_TAG = 'device-trust-agent';

/** One line, bounded: platform logs are line-oriented and some (eventcreate) limit the length. */
function oneLine(e: SinkEvent, max = 2000): string {
  const text = safeText(`[${e.id}] ${e.title}: ${e.message}`, { max: Number.MAX_SAFE_INTEGER });
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

const SYSLOG_PRIORITY = { info: 'user.info', warning: 'user.warning', error: 'user.err' } as const;
const JOURNAL_PRIORITY = { info: 'info', warning: 'warning', error: 'err' } as const;
const WINDOWS_TYPE = { info: 'Information', warning: 'Warning', error: 'Error' } as const;
const EVENTCREATE_TYPE = { info: 'INFORMATION', warning: 'WARNING', error: 'ERROR' } as const;

/**
 * Command lines for each platform's log, as data (unit-tested; nothing here runs them). The message goes in
 * as one argv element (or, for PowerShell, through the environment), never through a shell.
 */
export const eventSinkCommands = {
  /** Linux/macOS syslog (journald picks it up from /dev/log; on macOS it lands in the unified log). */
  logger: (e: SinkEvent): Command => ({ file: 'logger', args: ['-t', SYSLOG_TAG, '-p', SYSLOG_PRIORITY[e.level], '--', oneLine(e)] }),
  /** Linux with systemd: straight into the journal with a priority (used where `logger` is missing). */
  systemdCat: (e: SinkEvent): Command => ({ file: 'systemd-cat', args: ['-t', SYSLOG_TAG, '-p', JOURNAL_PRIORITY[e.level], '--', 'printf', '%s\n', oneLine(e)] }),
  /**
   * Windows PowerShell 5.1's Write-EventLog (PowerShell 7 has no such cmdlet, hence powershell.exe). Values
   * come from the environment so that no quoting of the message is ever needed.
   */
  writeEventLog: (e: SinkEvent): Command => ({
    file: 'powershell.exe',
    args: ['-NoProfile', '-NonInteractive', '-Command',
      'Write-EventLog -LogName Application -Source $env:DTA_EVENT_SOURCE -EventId ([int]$env:DTA_EVENT_ID) -EntryType $env:DTA_EVENT_TYPE -Message $env:DTA_EVENT_MESSAGE'],
    env: { DTA_EVENT_SOURCE: WINDOWS_EVENT_SOURCE, DTA_EVENT_ID: String(e.id), DTA_EVENT_TYPE: WINDOWS_TYPE[e.level], DTA_EVENT_MESSAGE: oneLine(e, 31_000) },
  }),
  /** Fallback where PowerShell is unavailable. eventcreate accepts IDs 1–1000 only, so it carries just those. */
  eventcreate: (e: SinkEvent): Command | undefined =>
    e.id >= 1 && e.id <= 1000
      ? { file: 'eventcreate', args: ['/L', 'APPLICATION', '/SO', WINDOWS_EVENT_SOURCE, '/T', EVENTCREATE_TYPE[e.level], '/ID', String(e.id), '/D', oneLine(e)] }
      : undefined,
};

/** The commands to try for `platform`, first one that runs wins. Empty where the platform has no log we know. */
export function platformLogCommands(e: SinkEvent, platform: NodeJS.Platform = process.platform): Command[] {
  switch (platform) {
    case 'linux':
      return [eventSinkCommands.logger(e), eventSinkCommands.systemdCat(e)];
    case 'darwin':
      return [eventSinkCommands.logger(e)];
    case 'win32':
      return [eventSinkCommands.writeEventLog(e), eventSinkCommands.eventcreate(e)].filter((c): c is Command => c !== undefined);
    default:
      return [];
  }
}

/** Delivers an event to a log outside the agent; must never throw or block the task. */
export type EventSink = (e: SinkEvent) => void;

/**
 * Fire-and-forget delivery to the platform log: the child is detached and not waited for, so a missing or
 * hanging `logger` costs the task nothing. If the first command cannot start (ENOENT), the next is tried.
 */
export function platformSink(platform: NodeJS.Platform = process.platform): EventSink {
  return (e) => {
    const tryNext = (cmds: Command[]): void => {
      const [cmd, ...rest] = cmds;
      if (!cmd) return;
      try {
        const child = spawn(cmd.file, cmd.args, { env: { ...process.env, ...cmd.env }, stdio: 'ignore', detached: true, windowsHide: true });
        child.on('error', () => tryNext(rest));
        child.unref();
      } catch {
        tryNext(rest);
      }
    };
    tryNext(platformLogCommands(e, platform));
  };
}
