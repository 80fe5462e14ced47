import { X509Certificate } from 'node:crypto';
import { AgentError } from '../../base/errors.js';
import { AsnConvert } from '@peculiar/asn1-schema';
import { Certificate, id_ce_keyUsage, KeyUsage, KeyUsageFlags } from '@peculiar/asn1-x509';
import { CmsError, parseCertsOnly } from './cms.js';

/** What GetCACert gave us, after the pin: whom to encrypt to, whose signatures to accept, the CA chain. */
export interface CaBundle {
  /** The certificate whose SHA-256 matched scepCaFingerprint. */
  pinned: X509Certificate;
  /** The CA that issues device certificates (the one lowest in the chain). */
  issuingCa: X509Certificate;
  /** Encryption recipient for requests: the RA's encryption certificate, else the CA. */
  recipient: X509Certificate;
  /** Acceptable signers of answers: the CA certificates and RA certificates that chain to the pin. */
  signers: X509Certificate[];
  /** CA certificates chained to the pin, issuing CA first. */
  chain: X509Certificate[];
  ra: X509Certificate[];
  /** Certificates in the answer that do not chain to the pin (never used). */
  ignored: X509Certificate[];
  /** Every certificate the CA sent, with its fingerprint (for diagnostics). */
  received: { subject: string; sha256: string }[];
}

export function sha256Of(cert: X509Certificate): string {
  return cert.fingerprint256.replace(/:/g, '').toLowerCase();
}

/** "ab:cd:…" the way administrators compare fingerprints. */
export function colonHex(hex: string): string {
  return hex.toUpperCase().match(/.{2}/g)?.join(':') ?? hex;
}

/** GetCACert answers one DER certificate (x-x509-ca-cert) or a degenerate PKCS#7 of the CA and RA (x-x509-ca-ra-cert). */
export function parseGetCaCert(body: Buffer, contentType: string): X509Certificate[] {
  const text = body.subarray(0, 64).toString('latin1');
  if (text.includes('-----BEGIN CERTIFICATE-----')) {
    return (body.toString('utf8').match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []).map((p) => new X509Certificate(p));
  }
  const asCert = () => [new X509Certificate(body)];
  const asPkcs7 = () => parseCertsOnly(body, "The CA's GetCACert answer");
  const ra = /x-x509-ca-ra-cert|pkcs7/i.test(contentType);
  try {
    return ra ? asPkcs7() : asCert();
  } catch (first) {
    try {
      return ra ? asCert() : asPkcs7();
    } catch {
      throw first instanceof CmsError ? first : new CmsError(`The CA's GetCACert answer is neither a certificate nor a PKCS#7 certificate bundle (${(first as Error).message})`);
    }
  }
}

/** The keyUsage bits (read with the ASN.1 schema @peculiar/x509 uses; node:crypto does not expose them). */
function keyUsage(cert: X509Certificate): number | undefined {
  const ext = AsnConvert.parse(cert.raw, Certificate).tbsCertificate.extensions?.find((e) => e.extnID === id_ce_keyUsage);
  return ext ? AsnConvert.parse(ext.extnValue.buffer, KeyUsage).toNumber() : undefined;
}

/**
 * Applies the pin before anything else is trusted: the configured fingerprint must match a certificate in the
 * answer, and only certificates whose signatures chain to that one are used (for encryption or to verify answers).
 */
export function pinCaBundle(certs: X509Certificate[], fingerprint: string, host: string): CaBundle {
  const received = certs.map((c) => ({ subject: c.subject.split('\n').join(', '), sha256: sha256Of(c) }));
  const pinned = certs.find((c) => sha256Of(c) === fingerprint);
  if (!pinned) {
    const shown = received.map((r) => `${r.subject || '(no subject)'} SHA-256 ${colonHex(r.sha256)}`).join('; ');
    throw new AgentError('bad-answer', 'SCEP_CA_MISMATCH',
      `The SCEP CA at ${host} presented ${certs.length === 1 ? 'a CA certificate' : `${certs.length} certificates`} (${shown}) that ${certs.length === 1 ? 'does' : 'do'} not match the configured scepCaFingerprint ${colonHex(fingerprint)}. It was refused before any request was sent; nothing was changed on this device.`,
      'If the CA was legitimately replaced, confirm its new fingerprint with the CA administrator by another channel and update scepCaFingerprint. Otherwise something between this device and the CA is answering in its place: report it.');
  }
  const trusted = [pinned];
  let grew = true;
  while (grew) {
    grew = false;
    for (const c of certs) {
      if (trusted.includes(c)) continue;
      if (trusted.some((t) => t.ca && c.checkIssued(t) && c.verify(t.publicKey))) {
        trusted.push(c);
        grew = true;
      }
    }
  }
  const cas = trusted.filter((c) => c.ca);
  const ra = trusted.filter((c) => !c.ca);
  // The issuing CA is the CA that issued no other CA in the chain (the bottom of the chain).
  const issuingCa = cas.find((c) => !cas.some((o) => o !== c && o.checkIssued(c) && o.verify(c.publicKey))) ?? pinned;
  const KEY_ENCIPHERMENT = KeyUsageFlags.keyEncipherment;
  const raEncrypt = ra.find((c) => ((keyUsage(c) ?? KEY_ENCIPHERMENT) & KEY_ENCIPHERMENT) !== 0) ?? ra[0];
  const chain = [issuingCa, ...cas.filter((c) => c !== issuingCa)];
  return {
    pinned,
    issuingCa,
    recipient: raEncrypt ?? issuingCa,
    signers: trusted,
    chain,
    ra,
    ignored: certs.filter((c) => !trusted.includes(c)),
    received,
  };
}
