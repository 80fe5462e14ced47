import { X509Certificate } from 'node:crypto';
import { AgentError } from '../base/errors.js';
import type { LocalKey } from './keys.js';

export const EKU_CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';
/** Kerberos tolerates 5 minutes of clock skew; we allow a certificate that early too. */
const CLOCK_SKEW_MS = 5 * 60 * 1000;

export { describeCertificate, parseCertificate, splitPem, type CertInfo } from '../base/certinfo.js';
import type { CertInfo } from '../base/certinfo.js';
import { describeCertificate, parseCertificate, splitPem } from '../base/certinfo.js';

/**
 * Walks from `cert` up through `anchors` to a self-signed root, checking every signature. A pinned CA (e.g. a
 * SCEP CA pinned by fingerprint) ends the walk too: it is trusted itself, whether or not its root was sent.
 */
export function chainsTo(cert: X509Certificate, anchors: X509Certificate[], pinned?: X509Certificate): boolean {
  let current = cert;
  for (let depth = 0; depth < 8; depth++) {
    const issuer = anchors.find((a) => a.ca && current.checkIssued(a) && current.verify(a.publicKey));
    if (!issuer) return false;
    if (pinned && issuer.fingerprint256 === pinned.fingerprint256) return true;
    if (issuer.checkIssued(issuer) && issuer.verify(issuer.publicKey)) return true;
    current = issuer;
  }
  return false;
}

export interface CheckOptions {
  key: LocalKey;
  /** The CA chain the org published (fetched over verified TLS); the answer's own chain is not trusted. */
  caChainPem: string[];
  issuerCN: string;
  /** A stricter ownership test than the issuer CN (e.g. the SCEP CA's full subject, for a CA without a CN). */
  owns?: (info: CertInfo) => boolean;
  /** Who issued it, for the message: "the org …", "the SCEP CA at …". */
  issuedBy?: string;
  /** A CA trusted by pin: the chain may end there instead of at a self-signed root. */
  pinnedPem?: string;
  now?: Date;
}

/**
 * Refuses an issued certificate unless it is one we can use: our key, the expected issuer, a chain to the
 * org's CA, clientAuth, and currently valid. Nothing is installed before this passes.
 */
export function checkIssuedCertificate(pem: string, opts: CheckOptions): CertInfo {
  const refuse = (code: string, why: string) =>
    new AgentError('bad-answer', code, `${cap(opts.issuedBy ?? 'the org')} issued a certificate that cannot be used: ${why}. It was not installed and the previous certificate (if any) is unchanged.`,
      'Try again later; if it repeats, give the --debug output to the identity-provider admin.');
  const cert = parseCertificate(pem);
  const info = describeCertificate(cert);
  if (!cert.publicKey.equals(opts.key.publicKey)) throw refuse('CERT_KEY_MISMATCH', 'it is for a different key than the one this device generated');
  if (info.issuerCN !== opts.issuerCN) throw refuse('CERT_WRONG_ISSUER', `it was issued by "${info.issuerCN}", not by "${opts.issuerCN}"`);
  if (opts.owns && !opts.owns(info)) throw refuse('CERT_WRONG_ISSUER', `it was issued by "${info.issuer}", not by the expected CA`);
  const anchors = opts.caChainPem.map(parseCertificate);
  if (!chainsTo(cert, anchors, opts.pinnedPem ? parseCertificate(opts.pinnedPem) : undefined)) throw refuse('CERT_UNTRUSTED_CHAIN', "it does not chain to the org's certificate authority");
  if (!(cert.keyUsage ?? []).includes(EKU_CLIENT_AUTH)) throw refuse('CERT_NO_CLIENT_AUTH', 'it is not valid for client authentication (no clientAuth extended key usage)');
  const now = (opts.now ?? new Date()).getTime();
  if (Date.parse(info.notAfter) <= now) throw refuse('CERT_EXPIRED', `it expired on ${info.notAfter}`);
  if (Date.parse(info.notBefore) > now + CLOCK_SKEW_MS) {
    throw refuse('CERT_NOT_YET_VALID', `it is valid only from ${info.notBefore}; check this device's clock`);
  }
  return info;
}

function cap(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}
