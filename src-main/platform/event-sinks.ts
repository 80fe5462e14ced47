import { spawn } from 'node:child_process';
import { childEnv, type Command } from '../base/exec.js';
import { envelope, powershell } from './win32-powershell.js';
import { safeText } from '../base/safe-text.js';
import type { EventSink, SinkEvent } from './types.js';
export type { EventSink, SinkEvent } from './types.js';

/** SD-ID of the agent's structured data (core/fleet/syslog.ts explains the number). */
export const SYSLOG_SD_ID = 'dta@32473';

/**
 * The Windows Event Log source the agent writes as. Registering a source needs administrator rights, so it is
 * registered with the device task (`install --device`, run elevated by every installer: platform/tasks/win32.ts
 * writes the EventLog\Application\<source> key as New-EventLog does); the user task only writes.
 */
export const WINDOWS_EVENT_SOURCE = 'Okta Device Trust';
export const SYSLOG_TAG = 'device-trust-agent';

/** One line, bounded: platform logs are line-oriented. */
function oneLine(e: SinkEvent, max = 2000): string {
  const text = safeText(`[${e.id}] ${e.title}: ${e.message}`, { max: Number.MAX_SAFE_INTEGER });
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

const SYSLOG_PRIORITY = { info: 'user.info', warning: 'user.warning', error: 'user.err' } as const;
const JOURNAL_PRIORITY = { info: 'info', warning: 'warning', error: 'err' } as const;
const WINDOWS_TYPE = { info: 'Information', warning: 'Warning', error: 'Error' } as const;

export const WRITE_EVENT_LOG_SCRIPT = envelope([
  'Write-EventLog -LogName Application -Source $env:DTA_EVENT_SOURCE -EventId $env:DTA_EVENT_ID -EntryType $env:DTA_EVENT_TYPE -Message $env:DTA_EVENT_MESSAGE',
  "$result = 'written'",
].join('\n'));

/**
 * Command lines for each platform's log, as data (unit-tested; nothing here runs them). The message goes in
 * on standard input (for PowerShell, through its environment), never on argv where every local user reads it
 * in `ps`, and never through a shell.
 */
export const eventSinkCommands = {
  /** Linux/macOS syslog (journald picks it up from /dev/log; on macOS it lands in the unified log). */
  logger: (e: SinkEvent): Command => ({ file: 'logger', args: ['-t', SYSLOG_TAG, '-p', SYSLOG_PRIORITY[e.level]], input: `${oneLine(e)}\n` }),
  /**
   * Linux: util-linux logger in RFC 5424 mode, the event ID as MSGID and the structured data as SD params
   * (the local syslog daemon or journald keeps them; a SIEM pipeline reads them as fields). DTA_SYSLOG_SOCKET
   * points it at another socket than /dev/log.
   */
  loggerRfc5424: (e: SinkEvent, socket: string | undefined = process.env.DTA_SYSLOG_SOCKET || undefined): Command => ({
    file: 'logger',
    args: ['-t', SYSLOG_TAG, '-p', SYSLOG_PRIORITY[e.level], '--rfc5424', '--msgid', String(e.id), ...(socket ? ['-u', socket] : []),
      ...(e.sd && Object.keys(e.sd).length ? ['--sd-id', SYSLOG_SD_ID, ...Object.entries(e.sd).flatMap(([k, v]) => ['--sd-param', `${k}="${v.replace(/[\\"\]]/g, (c) => `\\${c}`)}"`])] : [])],
    input: `${oneLine(e)}\n`,
  }),
  /** Linux with systemd: straight into the journal with a priority (used where `logger` is missing). */
  systemdCat: (e: SinkEvent): Command => ({ file: 'systemd-cat', args: ['-t', SYSLOG_TAG, '-p', JOURNAL_PRIORITY[e.level]], input: `${oneLine(e)}\n` }),
  /**
   * Windows PowerShell 5.1's Write-EventLog (PowerShell 7 has no such cmdlet, hence powershell.exe), in the JSON
   * envelope and ConstrainedLanguage-safe; a failure (source not registered, access denied) exits 1, which sends
   * the event on to the next command. Values come from the environment so no quoting of the message is needed.
   */
  writeEventLog: (e: SinkEvent): Command =>
    powershell(WRITE_EVENT_LOG_SCRIPT, { DTA_EVENT_SOURCE: WINDOWS_EVENT_SOURCE, DTA_EVENT_ID: String(e.id), DTA_EVENT_TYPE: WINDOWS_TYPE[e.level], DTA_EVENT_MESSAGE: oneLine(e, 31_000) }),
  // No eventcreate fallback (issue 25.4): eventcreate writes only under sources it registered itself (its own
  // EventMessageFile); for the source the installer registered it refuses ("Source parameter is used to identify
  // custom applications/scripts only"), and it cannot carry IDs above 1000. An event Write-EventLog cannot take is
  // reported as undelivered (the agent's own log keeps it).
};

/** The commands to try for `platform`, first one that runs wins. Empty where the platform has no log we know. */
export function platformLogCommands(e: SinkEvent, platform: NodeJS.Platform = process.platform): Command[] {
  switch (platform) {
    case 'linux':
      return [eventSinkCommands.loggerRfc5424(e), eventSinkCommands.systemdCat(e)];
    case 'darwin':
      return [eventSinkCommands.logger(e)];
    case 'win32':
      return [eventSinkCommands.writeEventLog(e)];
    default:
      return [];
  }
}

/** Called once per event that no platform command could write (the agent's own log has it regardless). */
export type UndeliveredHandler = (e: SinkEvent, reason: string) => void;

/**
 * Fire-and-forget delivery to the platform log: the child is detached and not waited for, so a missing or
 * hanging `logger` costs the task nothing. When a command cannot start (ENOENT) or exits non-zero (Windows:
 * Write-EventLog without a registered source), the next is tried; when none succeeds, `onUndelivered` says so
 * instead of the event vanishing silently.
 */
export function platformSink(platform: NodeJS.Platform = process.platform, onUndelivered?: UndeliveredHandler): EventSink {
  return (e) => {
    const reasons: string[] = [];
    const tryNext = (cmds: Command[]): void => {
      const [cmd, ...rest] = cmds;
      if (!cmd) {
        if (reasons.length) onUndelivered?.(e, reasons.join('; '));
        return;
      }
      let settled = false;
      const next = (reason: string) => {
        if (settled) return;
        settled = true;
        reasons.push(`${cmd.file}: ${reason}`);
        tryNext(rest);
      };
      try {
        const child = spawn(cmd.file, cmd.args, { env: childEnv(cmd.env), stdio: [cmd.input !== undefined ? 'pipe' : 'ignore', 'ignore', 'ignore'], detached: true, windowsHide: true });
        child.on('error', (err) => next((err as NodeJS.ErrnoException).code ?? err.message));
        if (cmd.input !== undefined) {
          child.stdin?.on('error', () => undefined);
          child.stdin?.end(cmd.input);
        }
        child.on('exit', (code) => {
          if (code === 0) settled = true;
          else next(`exit ${code ?? 'signal'}`);
        });
        child.unref();
      } catch (err) {
        next((err as Error).message);
      }
    };
    tryNext(platformLogCommands(e, platform));
  };
}
