/**
 * Every failure the agent reports is an AgentError: a sentence for the user, what to do about it, and a
 * class that decides the exit code and whether the scheduler should try again later.
 */
export type FailureClass =
  | 'config' // the agent is not configured correctly: a person must fix the configuration
  | 'retry-later' // network, IWA, org down or read-only: try again later, nothing is wrong locally
  | 'rejected' // the org or IWA said no (revoked, user not active, bad token): a person must act
  | 'bad-answer' // a server answered something we refuse to use (malformed, wrong key, wrong issuer…)
  | 'local' // this machine: certificate store, disk, Kerberos library
  | 'internal';

export class AgentError extends Error {
  readonly failure: FailureClass;
  /** Stable short code, e.g. ORG_READ_ONLY, used by the event log and `--json` output. */
  readonly code: string;
  /** What the user or help desk should do about it. */
  readonly remedy: string | undefined;
  /** The server asked not to be asked again before this long (HTTP Retry-After on 429/503); the scheduler honours it. */
  retryAfterMs?: number;

  constructor(failure: FailureClass, code: string, message: string, remedy?: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'AgentError';
    this.failure = failure;
    this.code = code;
    this.remedy = remedy;
  }
}

export function isAgentError(e: unknown): e is AgentError {
  return e instanceof AgentError;
}

/** Exit codes of the command line; documented in the README. */
export const ExitCode = {
  OK: 0, // enrolled or renewed
  NOTHING_TO_DO: 10, // a valid certificate is already installed
  RETRY_LATER: 20, // network / org read-only / IWA unreachable
  NEEDS_ATTENTION: 30, // rejected, revoked, or a server answer refused
  LOCAL_ERROR: 40, // the certificate store, disk or Kerberos library on this machine
  DEVICE_SERVICE: 50, // the device service (the only holder of the machine credentials) is not running or not reachable
  USAGE: 64, // bad command line
  CONFIG: 78, // configuration missing or invalid
  INTERNAL: 70,
} as const;

/** Codes with an exit code of their own, whatever their class (which still drives retries). */
const EXIT_BY_CODE: Record<string, number> = {
  DEVICE_SERVICE_DOWN: ExitCode.DEVICE_SERVICE,
  DEVICE_SERVICE_TIMEOUT: ExitCode.DEVICE_SERVICE,
};

export function exitCodeFor(e: unknown): number {
  if (!isAgentError(e)) return ExitCode.INTERNAL;
  const byCode = EXIT_BY_CODE[e.code];
  if (byCode !== undefined) return byCode;
  switch (e.failure) {
    case 'config':
      return ExitCode.CONFIG;
    case 'retry-later':
      return ExitCode.RETRY_LATER;
    case 'rejected':
    case 'bad-answer':
      return ExitCode.NEEDS_ATTENTION;
    case 'local':
      return ExitCode.LOCAL_ERROR;
    default:
      return ExitCode.INTERNAL;
  }
}
