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
    // A fault with a written-down class has that class wherever it is raised (FAULT_CLASSES).
    this.failure = FAULT_CLASSES[code] ?? failure;
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

/**
 * The class of each fault that more than one command can meet, written down once: `run` (its AgentError),
 * `status --check` (its checks), `proxy-check` (its routes) and `diagnose` (its findings and their probes)
 * all take their exit code from here, so one fault gives one exit code whichever command found it
 * (README "Exit codes"; test/integration/fault-classes.test.ts runs every command per fault).
 * Keys are the agent's error codes and diagnose's finding codes.
 */
export const FAULT_CLASSES: Readonly<Record<string, FailureClass>> = {
  // The PAC file this machine is configured with cannot be used: a person fixes the PAC file (78).
  PAC_INVALID: 'config', PAC_TIMEOUT: 'config', PAC_UNUSABLE: 'config', PAC_UNREADABLE: 'config',
  // It could not be fetched (network) or did not answer within the request's deadline: try again (20).
  PAC_UNREACHABLE: 'retry-later', PAC_NO_ANSWER: 'retry-later',
  // The proxy wants credentials this machine does not have, or refuses the ones it has, or will not
  // CONNECT where the agent must go: this machine's (or its network's) configuration, not the org (78).
  PROXY_AUTH_REQUIRED: 'config', PROXY_AUTH_FAILED: 'config', PROXY_REFUSED: 'config', PROXY_INVALID: 'config', PROXY_UNSUPPORTED: 'config',
  // The proxy cannot be reached, never answers, or cannot reach the server: try again later (20).
  PROXY_UNREACHABLE: 'retry-later', PROXY_NO_ANSWER: 'retry-later', PROXY_UPSTREAM_FAILED: 'retry-later',
  // Something between this device and the org inspects TLS (trusted or not): mutual TLS cannot work (30).
  TLS_INTERCEPTED: 'bad-answer', TLS_INTERCEPTION: 'bad-answer', TLS_UNTRUSTED: 'bad-answer',
  // The org's TLS issuers changed or were withdrawn against the pins in force: possibly interception (30).
  SERVER_PINS_CHANGED: 'bad-answer', SERVER_PINS_WITHDRAWN: 'bad-answer',
  // A server refused because of this device's clock: fixed by time synchronisation, retried (20).
  CLOCK_SKEW: 'retry-later',
  // Nothing (or not enough) is configured to enroll with (78).
  NOT_CONFIGURED: 'config', CONFIG_INVALID: 'config',
};

/** The failure class of a fault code, when it is written down. */
export function faultClass(code: string | undefined): FailureClass | undefined {
  return code ? FAULT_CLASSES[code] : undefined;
}

/**
 * Codes with an exit code of their own, whatever their class (which still drives retries): the device service —
 * the only holder of the machine's credentials — is not running or not answering (50).
 */
const EXIT_BY_CODE: Readonly<Record<string, number>> = {
  DEVICE_SERVICE_DOWN: ExitCode.DEVICE_SERVICE,
  DEVICE_SERVICE_TIMEOUT: ExitCode.DEVICE_SERVICE,
};

/** The exit code of a failure class. */
export function exitCodeForClass(failure: FailureClass): number {
  switch (failure) {
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

/** The exit code of a fault code; `fallback` for a code that is not written down. */
export function exitCodeForFault(code: string | undefined, fallback: number): number {
  if (code && EXIT_BY_CODE[code] !== undefined) return EXIT_BY_CODE[code]!;
  const c = faultClass(code);
  return c ? exitCodeForClass(c) : fallback;
}

/**
 * When a command found several faults, the one a person must act on first decides: a configuration error,
 * then "needs attention", then a local failure, then "retry later"; success codes last.
 */
const EXIT_PRECEDENCE: number[] = [ExitCode.INTERNAL, ExitCode.CONFIG, ExitCode.DEVICE_SERVICE, ExitCode.NEEDS_ATTENTION, ExitCode.LOCAL_ERROR, ExitCode.RETRY_LATER, ExitCode.NOTHING_TO_DO, ExitCode.OK];
export function worstExitCode(codes: number[]): number {
  return codes.reduce((w, c) => (rankOf(c) < rankOf(w) ? c : w), ExitCode.OK as number);
}
function rankOf(code: number): number {
  const i = EXIT_PRECEDENCE.indexOf(code);
  return i < 0 ? 0 : i;
}

export function exitCodeFor(e: unknown): number {
  if (!isAgentError(e)) return ExitCode.INTERNAL;
  return EXIT_BY_CODE[e.code] ?? exitCodeForClass(e.failure);
}
