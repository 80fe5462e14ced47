import { createHash, X509Certificate } from 'node:crypto';
import { AgentError } from './errors.js';

/** The facts about a certificate every layer shows: parsed once, described the same way everywhere. */
export interface CertInfo {
  serialNumber: string;
  subject: string;
  issuer: string;
  issuerCN: string;
  subjectCN: string;
  notBefore: string;
  notAfter: string;
  sha256: string;
}

export function parseCertificate(pem: string): X509Certificate {
  try {
    return new X509Certificate(pem);
  } catch (e) {
    throw new AgentError('bad-answer', 'CERT_UNPARSABLE', `The certificate could not be parsed: ${(e as Error).message}.`);
  }
}

function cn(dn: string): string {
  return /(?:^|\n)CN=([^\n]*)/.exec(dn)?.[1] ?? '';
}

export function describeCertificate(cert: X509Certificate): CertInfo {
  return {
    serialNumber: cert.serialNumber.toLowerCase().replace(/^0+(?=.)/, ''),
    subject: cert.subject.split('\n').join(', '),
    issuer: cert.issuer.split('\n').join(', '),
    issuerCN: cn(cert.issuer),
    subjectCN: cn(cert.subject),
    notBefore: new Date(cert.validFrom).toISOString(),
    notAfter: new Date(cert.validTo).toISOString(),
    sha256: cert.fingerprint256.replace(/:/g, '').toLowerCase(),
  };
}

/** Splits a PEM bundle into its certificates. */
export function splitPem(bundle: string): string[] {
  return bundle.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
}


/** Base64 SHA-256 of a certificate's DER SubjectPublicKeyInfo (the HPKP "pin-sha256" form): survives re-issuing with the same key. */
export function spkiSha256(cert: X509Certificate | string): string {
  const c = typeof cert === 'string' ? new X509Certificate(cert) : cert;
  return createHash('sha256').update(c.publicKey.export({ type: 'spki', format: 'der' })).digest('base64');
}
