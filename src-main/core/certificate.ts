import { X509Certificate } from 'node:crypto';
import { AgentError } from '../base/errors.js';
import type { LocalKey } from './keys.js';
import { x509 } from './x509.js';

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

/** What the leaf's extensions say about its use (read with @peculiar/x509: node:crypto does not expose key usage bits). */
function leafProfile(der: Buffer): { ca: boolean; keyUsage: number | undefined } {
  const cert = new x509.X509Certificate(der);
  const bc = cert.getExtension(x509.BasicConstraintsExtension);
  const ku = cert.getExtension(x509.KeyUsagesExtension);
  return { ca: Boolean(bc?.ca), keyUsage: ku ? ku.usages : undefined };
}

const REMEDY: Record<string, string> = {
  CERT_UNPARSABLE: 'Nothing to do on this device: the agent tries again later. If it repeats, give the --debug output to the identity-provider admin: the server sent something that is not a certificate.',
  CA_CHAIN_UNPARSABLE: "Ask the identity-provider admin to check the CA chain the org publishes (discovery: ca.chainPem); the agent tries again later.",
  CERT_IS_CA: 'Ask the identity-provider (CA) admin to issue device certificates from a client-certificate template: not a CA, key usage digitalSignature, extended key usage clientAuth.',
  CERT_NOT_YET_VALID: "Check that this device's clock and time zone are right (time synchronisation on); the agent tries again later.",
};
REMEDY.CERT_CA_KEY_USAGE = REMEDY.CERT_IS_CA!;
REMEDY.CERT_NO_DIGITAL_SIGNATURE = REMEDY.CERT_IS_CA!;
REMEDY.CERT_NO_CLIENT_AUTH = REMEDY.CERT_IS_CA!;
const DEFAULT_REMEDY = 'Try again later; if it repeats, give the --debug output to the identity-provider admin (the issued certificate does not match docs/PROTOCOL.md\'s certificate profile).';

/**
 * Refuses an issued certificate unless it is one we can use (docs/PROTOCOL.md, "Certificate profile"): readable,
 * not a CA, key usage digitalSignature without keyCertSign/cRLSign, our key, the expected issuer, a chain to the
 * org's CA, clientAuth, and currently valid. Nothing is installed before this passes.
 */
export function checkIssuedCertificate(pem: string, opts: CheckOptions): CertInfo {
  const refuse = (code: string, why: string) =>
    new AgentError('bad-answer', code, `${cap(opts.issuedBy ?? 'the org')} issued a certificate that cannot be used: ${why}. Nothing was installed; the previous certificate (if any) is kept and still used.`,
      REMEDY[code] ?? DEFAULT_REMEDY);
  const pems = splitPem(pem);
  let cert: X509Certificate;
  let profile: ReturnType<typeof leafProfile>;
  try {
    if (pems.length === 0) throw new Error('no PEM certificate');
    cert = new X509Certificate(pems[0]!);
    profile = leafProfile(cert.raw);
  } catch {
    // The parser's own words (e.g. "PEM routines::bad base64 decode") say nothing to a user; the trace has the answer.
    throw refuse('CERT_UNPARSABLE', 'the answer does not hold a readable certificate (damaged or not PEM)');
  }
  let anchors: X509Certificate[];
  try {
    anchors = opts.caChainPem.map((p) => new X509Certificate(p));
  } catch {
    throw refuse('CA_CHAIN_UNPARSABLE', "the CA chain the org publishes cannot be read, so the certificate cannot be checked");
  }
  const info = describeCertificate(cert);
  if (cert.ca || profile.ca) throw refuse('CERT_IS_CA', 'it is a certificate authority (basicConstraints CA:TRUE), not a device certificate');
  if (profile.keyUsage !== undefined) {
    const u = profile.keyUsage;
    if (u & (x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign)) {
      throw refuse('CERT_CA_KEY_USAGE', 'its key usage allows signing certificates or revocation lists (keyCertSign/cRLSign), which a device certificate must not');
    }
    if (!(u & x509.KeyUsageFlags.digitalSignature)) throw refuse('CERT_NO_DIGITAL_SIGNATURE', 'its key usage lacks digitalSignature, which TLS client authentication needs');
  }
  if (!cert.publicKey.equals(opts.key.publicKey)) throw refuse('CERT_KEY_MISMATCH', 'it is for a different key than the one this device generated');
  if (info.issuerCN !== opts.issuerCN) throw refuse('CERT_WRONG_ISSUER', `it was issued by "${info.issuerCN}", not by "${opts.issuerCN}"`);
  if (opts.owns && !opts.owns(info)) throw refuse('CERT_WRONG_ISSUER', `it was issued by "${info.issuer}", not by the expected CA`);
  if (!chainsTo(cert, anchors, opts.pinnedPem ? parseCertificate(opts.pinnedPem) : undefined)) {
    throw refuse('CERT_UNTRUSTED_CHAIN', "it does not chain to the org's certificate authority (the issuer's name matches, but its signature does not verify with the org's CA key)");
  }
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
