import { AgentError, isAgentError } from '../../base/errors.js';
import { AttestationUnavailable, type KeyAttestationEvidence } from '../../platform/keystore.js';
import type { HttpClient } from '../net/http.js';
import type { LocalKey } from './keys.js';
import { AttestationChallengeSchema } from '../enrollment/protocol.js';
import type { Trace } from '../../base/trace.js';

/**
 * TPM key attestation, the agent's side (docs/PROTOCOL.md §11). With a key in the TPM, the enrollment and renewal
 * requests carry proof that the key is TPM-resident; without one (or when this machine cannot make the proof)
 * the request goes unattested and the reason is recorded for `status`.
 */
export interface KeyAttestationRecord {
  attested: boolean;
  /** Why (not): "verified by the org (EK issued by …)" or "python3-tpm2-pytss is not installed …". */
  reason: string;
}

export interface AttestationAttempt {
  evidence?: KeyAttestationEvidence;
  /** Why there is no evidence (set when there is none). */
  unattested?: string;
}

/** Round 1 and the TPM's part; a refusal by the org is thrown with what to do, anything local is a reason. */
export async function attestKey(key: LocalKey, deps: { http: HttpClient; orgUrl: string; trace: Trace }): Promise<AttestationAttempt> {
  if (key.protection !== 'tpm') return { unattested: key.protection === 'software' ? 'the key is in the software token, not in a TPM' : 'the key is a key file, not in a TPM' };
  if (!key.attest) return { unattested: 'this platform cannot attest its TPM keys yet' };
  const attest = key.attest;
  let orgOffers = true;
  try {
    const evidence = await deps.trace.step('Prove the key is TPM-resident (EK certificate, AK bound by credential activation, TPM2_Certify over the org\'s nonce)', () =>
      attest(async (req) => {
        try {
          const { data } = await deps.http.json(AttestationChallengeSchema, { url: `${deps.orgUrl}/api/v1/attestation/challenge`, method: 'POST', json: req, what: 'the org' });
          return data;
        } catch (e) {
          if (isAgentError(e) && e.failure === 'rejected' && /HTTP 404/.test(e.message)) orgOffers = false;
          throw e;
        }
      }), () => 'evidence made');
    return { evidence };
  } catch (e) {
    if (e instanceof AttestationUnavailable) {
      deps.trace.log(`The key is sent unattested: ${e.message}.`);
      return { unattested: e.message };
    }
    if (!orgOffers) return { unattested: 'the org does not offer TPM attestation' };
    throw withAttestationRemedy(e);
  }
}

const REMEDIES: Record<string, string> = {
  E0000_ATTESTATION_REQUIRED: 'This org accepts only device keys attested by a TPM. Run device-trust-agent status to see why this key is not (SkipTPM, no TPM or resource manager, python3-tpm2-pytss missing, no EK certificate), fix that, then run: device-trust-agent run --forceRenewal.',
  E0000_ATTESTATION_EK_UNTRUSTED: "The org does not trust this TPM's manufacturer (its endorsement key certificate). Ask the org admin to add the TPM vendor's CA to the trusted TPM vendor CAs.",
};
const TAMPER_REMEDY = 'The org refused the TPM\'s proof. Run again (each attempt uses a new challenge); if it repeats, the TPM or the token store may have been tampered with: give the output of device-trust-agent run --debug to the help desk.';

/** An org refusal about attestation, with what to do about it (the org's words are kept in the message). */
export function withAttestationRemedy(e: unknown): unknown {
  if (!isAgentError(e) || !/^E0000_ATTESTATION_/.test(e.code)) return e;
  return new AgentError(e.failure, e.code, e.message, REMEDIES[e.code] ?? TAMPER_REMEDY, { cause: e });
}

export type { KeyAttestationEvidence };
