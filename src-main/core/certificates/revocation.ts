import { AgentError } from '../../base/errors.js';
import type { HttpClient } from '../net/http.js';
import type { x509 } from './x509.js';

function normSerial(s: string): string {
  return s.toLowerCase().replace(/^0+(?=.)/, '');
}

export interface RevocationStatus {
  revoked: boolean;
  revokedAt?: string;
  crlThisUpdate: string;
}

/**
 * Checks a serial against the org's CRL. The CRL must be signed by one of the org's CA certificates: an
 * unsigned or foreign list is refused rather than believed either way.
 */
export async function checkRevocation(http: HttpClient, crlUrl: string, caChainPem: string[], serialNumber: string): Promise<RevocationStatus> {
  const res = await http.send({ url: crlUrl, what: 'the revocation list (CRL)', headers: { accept: 'application/pkix-crl' } });
  if (res.status !== 200) {
    throw new AgentError('retry-later', 'CRL_UNAVAILABLE', `The revocation list at ${crlUrl} is unavailable (HTTP ${res.status}).`);
  }
  // @peculiar/x509 is loaded when first needed (not at start-up: most passes check no CRL).
  const { x509 } = await import('./x509.js');
  let crl: x509.X509Crl;
  try {
    crl = new x509.X509Crl(new Uint8Array(res.body));
  } catch {
    throw new AgentError('bad-answer', 'CRL_MALFORMED', `The revocation list at ${crlUrl} could not be parsed.`);
  }
  let signedByOrg = false;
  for (const pem of caChainPem) {
    const ca = new x509.X509Certificate(pem);
    if (ca.subject === crl.issuer && (await crl.verify({ publicKey: ca }))) signedByOrg = true;
  }
  if (!signedByOrg) {
    throw new AgentError('bad-answer', 'CRL_UNTRUSTED', `The revocation list at ${crlUrl} is not signed by the org's certificate authority; it was ignored.`);
  }
  const entry = crl.entries.find((e) => normSerial(e.serialNumber) === normSerial(serialNumber));
  return {
    revoked: Boolean(entry),
    ...(entry ? { revokedAt: entry.revocationDate.toISOString() } : {}),
    crlThisUpdate: crl.thisUpdate.toISOString(),
  };
}
