import { AgentError } from '../base/errors.js';

const SAYS_KEPT = /nothing was (changed|installed|requested)|previous certificate|certificate (stays|is kept)|nothing to do on this device|not installed/i;

const DEFAULT_REMEDY: Partial<Record<AgentError['failure'], string>> = {
  'retry-later': 'Nothing to do on this device now: the agent tries again later on its own.',
  'bad-answer': 'Nothing to do on this device: the agent tries again later. If it repeats, run with --debug and give the output to the identity-provider admin.',
  rejected: 'Run with --debug for the step-by-step account and give it to the help desk.',
};

/**
 * A pass that fails on the server's side (retry later, refused, a bad answer) changed nothing on the device: the
 * message says so, and says what to do, whichever layer raised it (http, IWA, SCEP, the certificate checks).
 */
export function sayNothingChanged(err: AgentError): AgentError {
  if (err.failure !== 'retry-later' && err.failure !== 'bad-answer' && err.failure !== 'rejected') return err;
  const message = SAYS_KEPT.test(err.message) ? err.message : `${err.message.replace(/\s*$/, '')} Nothing was installed; the previous certificate (if any) is kept.`;
  const remedy = err.remedy ?? DEFAULT_REMEDY[err.failure];
  // The same object (its class and fields stay, e.g. a PENDING answer's), with the words completed.
  err.message = message;
  (err as { remedy: string | undefined }).remedy = remedy;
  return err;
}
