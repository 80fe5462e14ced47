import type { AgentError } from '../../base/errors.js';
import type { LastExchange } from './correlation.js';

/** The phases of a pass an admin reads a failure by (after `dsregcmd /status`'s "error phase"). */
export const PHASES = ['discover', 'device token', 'user token', 'CSR', 'issue', 'install', 'browser setup', 'local'] as const;
export type Phase = (typeof PHASES)[number];

/** The trace's step names, matched to a phase. Order matters: the first match wins. */
const STEP_PHASES: [RegExp, Phase][] = [
  [/discover|GetCACert|GetCACaps|CA capabilities|CA certificate/i, 'discover'],
  [/device token/i, 'device token'],
  [/user token/i, 'user token'],
  [/signing request|\bCSR\b|generate the device key/i, 'CSR'],
  [/issue|renew the certificate|PKCSReq|RenewalReq|CertPoll|SCEP|check the issued/i, 'issue'],
  [/install|store|remove the previous|reinstall/i, 'install'],
  [/browser/i, 'browser setup'],
];

/** The phase a pass failed in: the last step that failed, else the step the trace was in. */
export function phaseOf(steps: readonly { name: string; ok: boolean }[], error?: AgentError): Phase | undefined {
  const failed = [...steps].reverse().find((s) => !s.ok);
  for (const [re, phase] of STEP_PHASES) if (failed && re.test(failed.name)) return phase;
  if (error && /^CONFIG|NOT_CONFIGURED/.test(error.code)) return 'discover';
  if (error && /BROWSER/.test(error.code)) return 'browser setup';
  if (error && /KEY_|STATE_|STORE|PK12|NSS/.test(error.code)) return 'local';
  return undefined;
}

/** What status shows for the last failure: phase, client and server codes, and the IDs to search for. */
export interface FailureContext {
  phase?: Phase;
  correlationId: string;
  requestId?: string;
  serverCode?: string;
  httpStatus?: number;
}

export function failureContext(traceId: string, last: LastExchange | undefined, steps: readonly { name: string; ok: boolean }[], error?: AgentError): FailureContext {
  const phase = phaseOf(steps, error);
  return {
    correlationId: traceId,
    ...(phase ? { phase } : {}),
    ...(last ? { requestId: last.requestId } : {}),
    ...(last?.serverCode ? { serverCode: last.serverCode } : {}),
    ...(last?.status !== undefined ? { httpStatus: last.status } : {}),
  };
}
