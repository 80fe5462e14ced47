import type { FailureClass } from '../../base/errors.js';

/**
 * The agent's named states, after certmonger's: each says what the agent is waiting for, whether it will
 * get out of it by itself, and — when it will not (stuck) — what a person must do.
 */
export const AGENT_STATES = {
  NOT_CONFIGURED: { stuck: true, meaning: 'No org URL is configured.', action: 'Set OktaURL= at install time, orgUrl in the managed configuration, DTA_ORG_URL or --org-url.' },
  NOT_ENROLLED: { stuck: false, meaning: 'No certificate yet; the first pass has not run.' },
  ENROLLING: { stuck: false, meaning: 'A pass is enrolling a certificate now.' },
  RENEWING: { stuck: false, meaning: 'A pass is renewing the certificate now.' },
  CHECKING: { stuck: false, meaning: 'A pass is checking the certificate now.' },
  ENROLLED: { stuck: false, meaning: 'A valid certificate is installed; checked daily, renewed at its chosen moment.' },
  RENEWAL_DUE: { stuck: false, meaning: 'The certificate has reached its renewal moment; the next pass renews it.' },
  ORG_UNREACHABLE: { stuck: false, meaning: 'The org (or the SCEP CA) could not be reached; retrying with backoff.' },
  PENDING_APPROVAL: { stuck: false, meaning: 'The CA holds the request for approval; asking again with backoff (same key, same request).' },
  IWA_UNREACHABLE: { stuck: false, meaning: 'The IWA web app or the domain controller could not be reached (off the corporate network?); retrying with backoff.' },
  DEVICE_SERVICE_DOWN: { stuck: false, meaning: 'The device service, which alone may use the machine credentials, is not running or did not answer; retrying with backoff.', action: 'Start it as an administrator: systemctl start device-trust-agent-device.service (macOS: launchctl bootstrap system /Library/LaunchDaemons/com.example.devicetrustagent.device-service.plist).' },
  READ_ONLY_ORG: { stuck: false, meaning: 'The org is in read-only mode; retrying with backoff.' },
  CLOCK_WRONG: { stuck: false, meaning: 'A server refused a request because of this device\'s clock; retrying with backoff (never by enrolling afresh).', action: 'Fix the system clock (turn on time synchronisation); the agent renews once the clocks agree.' },
  RENEWAL_REFUSED: { stuck: false, meaning: 'The SCEP CA refused the renewal while the certificate is valid (its renewal window has not opened); asking again about daily.', action: 'Nothing on this device; to renew earlier, align the CA\'s -allowrenew with scepRenewalWindowDays.' },
  ANSWER_REFUSED: { stuck: false, meaning: 'A server answered something the agent refuses to use (captive portal, TLS inspection, malformed answer); retrying with backoff.' },
  LOCAL_FAILURE: { stuck: false, meaning: 'Something on this machine failed (certificate store, disk); retrying with backoff.' },
  INTERNAL_ERROR: { stuck: false, meaning: 'An unexpected error; retrying with backoff.' },
  EXPIRED: { stuck: false, meaning: 'The certificate has expired; the next pass enrolls a new one.' },
  REJECTED: { stuck: true, meaning: 'The org or the IWA web app refused (user not active, authentication refused).', action: 'Ask an administrator to check the user and device in the org, then sign in again or run: device-trust-agent run' },
  REVOKED: { stuck: true, meaning: 'The certificate was revoked by an administrator.', action: 'If the device should be trusted again, run: device-trust-agent run --forceRenewal' },
  KEY_MISSING: { stuck: true, meaning: 'The certificate\'s private key is missing.', action: 'Run: device-trust-agent run --forceRenewal' },
  NEED_CONFIGURATION: { stuck: true, meaning: 'The configuration is invalid or this machine lacks a required component.', action: 'Fix what the last error names (see status), then run: device-trust-agent run' },
} as const satisfies Record<string, { stuck: boolean; meaning: string; action?: string }>;

export type AgentStateName = keyof typeof AGENT_STATES;

/** Codes that will not change without a person, whatever their failure class says. */
const STUCK_CODES: Record<string, AgentStateName> = {
  KEY_MISSING: 'KEY_MISSING',
  // The key is in a TPM token this TPM cannot open (copied profile, cleared TPM): only a forced renewal helps.
  TPM_NOT_THIS_ONE: 'KEY_MISSING',
  CERT_REVOKED: 'REVOKED',
  KERBEROS_NOT_INSTALLED: 'NEED_CONFIGURATION',
  PLATFORM_UNSUPPORTED: 'NEED_CONFIGURATION',
  NOT_CONFIGURED: 'NOT_CONFIGURED',
};
/** Named states for codes that would otherwise fall into a generic class. */
const NAMED_CODES: Record<string, AgentStateName> = {
  CLOCK_SKEW: 'CLOCK_WRONG', SCEP_RENEWAL_REFUSED: 'RENEWAL_REFUSED', DEVICE_SERVICE_DOWN: 'DEVICE_SERVICE_DOWN', DEVICE_SERVICE_TIMEOUT: 'DEVICE_SERVICE_DOWN',
};
const IWA_CODES = new Set(['IWA_UNREACHABLE', 'KDC_UNREACHABLE', 'KERBEROS_NO_TICKET']);

/** The named state a failed pass leaves the agent in. */
export function stateForFailure(failure: FailureClass, code: string | undefined): AgentStateName {
  if (code && STUCK_CODES[code]) return STUCK_CODES[code]!;
  if (code && NAMED_CODES[code]) return NAMED_CODES[code]!;
  switch (failure) {
    case 'retry-later':
      if (code === 'ORG_READ_ONLY') return 'READ_ONLY_ORG';
      if (code === 'CA_PENDING') return 'PENDING_APPROVAL';
      return code && IWA_CODES.has(code) ? 'IWA_UNREACHABLE' : 'ORG_UNREACHABLE';
    case 'rejected':
      return 'REJECTED';
    case 'bad-answer':
      return 'ANSWER_REFUSED';
    case 'config':
      return 'NEED_CONFIGURATION';
    case 'local':
      return 'LOCAL_FAILURE';
    default:
      return 'INTERNAL_ERROR';
  }
}

export function isStuck(state: AgentStateName): boolean {
  return AGENT_STATES[state].stuck;
}
