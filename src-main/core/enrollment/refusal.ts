import { AgentError } from '../../base/errors.js';

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

/** The org's identity refusals (docs/PROTOCOL.md §13.4) in the agent's words: each is a person's to act on (exit 30). */
const IDENTITY_REFUSALS: Record<string, { code: string; message: string; remedy: string }> = {
  E0000_DEVICE_ID_BOUND: {
    code: 'DEVICE_ID_BOUND',
    message: 'The org refused this device ID: it is registered to another machine (this profile\'s agent state was probably copied from it).',
    remedy: 'Do not copy agent state between machines. Delete state.json in the agent\'s state directory (a new device ID is made), then run: device-trust-agent run',
  },
  E0000_ATTESTED_RENEWAL_REQUIRED: {
    code: 'ATTESTED_RENEWAL_REQUIRED',
    message: 'The org refused the renewal: the certificate was issued to a TPM-attested key, and the new key was not attested by the TPM.',
    remedy: 'Run device-trust-agent status to see why the key is not attested (SkipTPM, no TPM or resource manager, python3-tpm2-pytss missing), fix that, then run: device-trust-agent run. The certificate stays valid meanwhile.',
  },
  E0000_OUTSIDE_RENEWAL_WINDOW: {
    code: 'RENEWAL_TOO_EARLY',
    message: 'The org refused the renewal: an attested certificate is renewed only inside its renewal window, which has not opened.',
    remedy: 'Nothing to do on this device: the certificate stays valid, and the agent renews inside the window on its own.',
  },
  E0000_TOKEN_REPLAYED: {
    code: 'DEVICE_TOKEN_REPLAYED',
    message: 'The IWA web app refused a device token that had already been used.',
    remedy: 'Run again (each pass gets a fresh device token); if it repeats, give the output of device-trust-agent run --debug to the help desk.',
  },
};

/** An org or IWA refusal with one of the identity codes, said plainly (the server's words kept after it). */
export function identityRefusal(e: unknown, serverCode?: string): unknown {
  if (!(e instanceof AgentError)) return e;
  const known = IDENTITY_REFUSALS[serverCode ?? e.code];
  if (!known) return e;
  return new AgentError('rejected', known.code, `${known.message} (${e.message.replace(/\s*Nothing was (changed|installed)[^.]*\.\s*$/, '')})`, known.remedy, { cause: e });
}
