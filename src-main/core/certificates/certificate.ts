import { X509Certificate } from 'node:crypto';
import { AsnConvert } from '@peculiar/asn1-schema';
import { BasicConstraints, Certificate, id_ce_basicConstraints, id_ce_keyUsage, KeyUsage, KeyUsageFlags } from '@peculiar/asn1-x509';
import { AgentError } from '../../base/errors.js';
import { serverText } from '../../base/safe-text.js';
import type { LocalKey } from '../keys/keys.js';

export const EKU_CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';
/** Kerberos tolerates 5 minutes of clock skew; we allow a certificate that early too. */
const CLOCK_SKEW_MS = 5 * 60 * 1000;

export { describeCertificate, parseCertificate, splitPem, type CertInfo } from '../../base/certinfo.js';
import type { CertInfo } from '../../base/certinfo.js';
import { describeCertificate, parseCertificate, splitPem } from '../../base/certinfo.js';

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

/**
 * The floor for keys and signatures anywhere in an issued certificate's chain (docs/CONTRIBUTING.md "Hostile answers"):
 * RSA and DSA keys of at least 2048 bits, EC keys on curves of at least 256 bits, and no signature made with MD2,
 * MD4, MD5 or SHA-1. The self-signature of a self-signed root is not judged (it protects nothing: a root is
 * trusted because it was distributed or pinned, not because it signed itself), but the root's key is.
 */
export const MIN_RSA_BITS = 2048;
const STRONG_CURVES = new Set(['prime256v1', 'secp384r1', 'secp521r1', 'brainpoolP256r1', 'brainpoolP384r1', 'brainpoolP512r1']);
const WEAK_SIGNATURES: Record<string, string> = {
  '1.2.840.113549.1.1.2': 'MD2 with RSA',
  '1.2.840.113549.1.1.3': 'MD4 with RSA',
  '1.2.840.113549.1.1.4': 'MD5 with RSA',
  '1.2.840.113549.1.1.5': 'SHA-1 with RSA',
  '1.3.14.3.2.29': 'SHA-1 with RSA',
  '1.2.840.10045.4.1': 'ECDSA with SHA-1',
  '1.2.840.10040.4.3': 'DSA with SHA-1',
};
const RSA_PSS = '1.2.840.113549.1.1.10';
/** DER of the SHA-2 (and SHA-3) digest OIDs: an RSA-PSS signature naming none of them uses the SHA-1 default. */
const STRONG_DIGEST_OIDS = ['608648016503040201', '608648016503040202', '608648016503040203', '608648016503040208', '608648016503040209', '60864801650304020a'].map((h) => Buffer.from(h, 'hex'));

/**
 * Allowed lifetime beyond what the issuer advertised: CAs backdate notBefore (clock skew) and some round to whole
 * days, so a day more is not refused; a 20-year certificate for a one-year policy is.
 */
export const LIFETIME_SLACK_SECONDS = 86_400;

/** What falls below the floor in this certificate, in words; undefined when it is strong enough. */
export function weakness(cert: X509Certificate): string | undefined {
  const key = cert.publicKey;
  const d = key.asymmetricKeyDetails ?? {};
  const type = key.asymmetricKeyType;
  if ((type === 'rsa' || type === 'rsa-pss' || type === 'dsa') && (d.modulusLength ?? 0) < MIN_RSA_BITS) return `${type === 'dsa' ? 'a DSA' : 'an RSA'} key of ${d.modulusLength ?? '?'} bits (at least ${MIN_RSA_BITS} needed)`;
  if (type === 'ec' && !STRONG_CURVES.has(d.namedCurve ?? '')) return `an EC key on curve ${d.namedCurve ?? '(unnamed)'} (P-256 or stronger needed)`;
  const selfSigned = cert.subject === cert.issuer && cert.checkIssued(cert) && cert.verify(key);
  if (selfSigned) return undefined;
  let oid: string;
  let params: Buffer | undefined;
  try {
    const alg = AsnConvert.parse(cert.raw, Certificate).signatureAlgorithm;
    oid = alg.algorithm;
    params = alg.parameters ? Buffer.from(alg.parameters) : undefined;
  } catch {
    return 'a signature algorithm that cannot be read';
  }
  const weak = WEAK_SIGNATURES[oid];
  if (weak) return `a ${weak} signature (SHA-1 and MD5 are broken for signatures)`;
  if (oid === RSA_PSS && !(params && STRONG_DIGEST_OIDS.some((o) => params.includes(o)))) return 'an RSA-PSS signature over SHA-1';
  return undefined;
}

const WEAK_REMEDY = 'Ask the identity-provider (CA) admin to issue from a CA with an RSA key of 2048 bits or more (or EC P-256 or stronger) that signs with SHA-256 or better; nothing to change on this device.';

/**
 * Refuses a CA chain with a key or a signature below the floor, before any request is sent (the CA named in
 * discovery at first enrollment, the SCEP CA behind its pin, a renewal's new CA).
 */
export function assertStrongChain(chainPem: string[], authorityName: string): void {
  for (const p of chainPem) {
    let c: X509Certificate;
    try {
      c = new X509Certificate(p);
    } catch {
      continue; // an unreadable CA is refused by the certificate check, with its own words
    }
    const why = weakness(c);
    if (why) {
      throw new AgentError('bad-answer', 'CA_WEAK_CRYPTO',
        `${cap(authorityName)} names a certificate authority below the agent's floor for keys and signatures: "${serverText(c.subject.split('\n').join(', '), 300)}" has ${why}. Nothing was requested or installed; the previous certificate (if any) is kept and still used.`,
        WEAK_REMEDY);
    }
  }
}

export interface CheckOptions {
  key: LocalKey;
  /** The device ID the request named (CSR subject CN=<id>): the certificate's subject and SANs must name it and nothing else. */
  identity: string;
  /** The longest lifetime the issuer advertised (discovery's certificate.validitySeconds; SCEP: scepMaxValidityDays). */
  maxValiditySeconds: number;
  /** Where that limit comes from, for the message ("the org advertises", "scepMaxValidityDays allows"). */
  lifetimeSource?: string;
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

/** What the leaf's extensions say about its use (read with @peculiar/asn1-x509: node:crypto does not expose key usage bits). */
function leafProfile(der: Buffer): { ca: boolean; keyUsage: number | undefined } {
  const extensions = AsnConvert.parse(der, Certificate).tbsCertificate.extensions ?? [];
  const bc = extensions.find((e) => e.extnID === id_ce_basicConstraints);
  const ku = extensions.find((e) => e.extnID === id_ce_keyUsage);
  return { ca: Boolean(bc && AsnConvert.parse(bc.extnValue.buffer, BasicConstraints).cA), keyUsage: ku ? AsnConvert.parse(ku.extnValue.buffer, KeyUsage).toNumber() : undefined };
}

const REMEDY: Record<string, string> = {
  CERT_UNPARSABLE: 'Nothing to do on this device: the agent tries again later. If it repeats, give the --debug output to the identity-provider admin: the server sent something that is not a certificate.',
  CA_CHAIN_UNPARSABLE: "Ask the identity-provider admin to check the CA chain the org publishes (discovery: ca.chainPem); the agent tries again later.",
  CERT_IS_CA: 'Ask the identity-provider (CA) admin to issue device certificates from a client-certificate template: not a CA, key usage digitalSignature, extended key usage clientAuth.',
  CERT_NOT_YET_VALID: "Check that this device's clock and time zone are right (time synchronisation on); the agent tries again later.",
};
REMEDY.CERT_WRONG_IDENTITY = "Nothing to change on this device. Give the --debug output to the identity-provider (CA) admin: the issuer must put exactly this device's ID (the CSR's CN) in the certificate, and no other name.";
REMEDY.CERT_LIFETIME_TOO_LONG = 'Ask the identity-provider (CA) admin to issue certificates for no longer than the lifetime the org advertises; nothing to change on this device.';
REMEDY.CERT_WEAK_CRYPTO = WEAK_REMEDY;
REMEDY.CA_WEAK_CRYPTO = WEAK_REMEDY;
REMEDY.CERT_CA_KEY_USAGE = REMEDY.CERT_IS_CA!;
REMEDY.CERT_NO_DIGITAL_SIGNATURE = REMEDY.CERT_IS_CA!;
REMEDY.CERT_NO_CLIENT_AUTH = REMEDY.CERT_IS_CA!;
const DEFAULT_REMEDY = 'Try again later; if it repeats, give the --debug output to the identity-provider admin (the issued certificate does not match docs/PROTOCOL.md\'s certificate profile).';

/**
 * Refuses an issued certificate unless it is one we can use (docs/PROTOCOL.md, "Certificate profile"): readable,
 * not a CA, key usage digitalSignature without keyCertSign/cRLSign, our key, the expected issuer, a chain to the
 * org's CA, clientAuth, and currently valid. Nothing is installed before this passes.
 */
export async function checkIssuedCertificate(pem: string, opts: CheckOptions): Promise<CertInfo> {
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
    if (u & (KeyUsageFlags.keyCertSign | KeyUsageFlags.cRLSign)) {
      throw refuse('CERT_CA_KEY_USAGE', 'its key usage allows signing certificates or revocation lists (keyCertSign/cRLSign), which a device certificate must not');
    }
    if (!(u & KeyUsageFlags.digitalSignature)) throw refuse('CERT_NO_DIGITAL_SIGNATURE', 'its key usage lacks digitalSignature, which TLS client authentication needs');
  }
  if (!cert.publicKey.equals(opts.key.publicKey)) throw refuse('CERT_KEY_MISMATCH', 'it is for a different key than the one this device generated');
  if (info.issuerCN !== opts.issuerCN) throw refuse('CERT_WRONG_ISSUER', `it was issued by "${info.issuerCN}", not by "${opts.issuerCN}"`);
  if (opts.owns && !opts.owns(info)) throw refuse('CERT_WRONG_ISSUER', `it was issued by "${info.issuer}", not by the expected CA`);
  if (!chainsTo(cert, anchors, opts.pinnedPem ? parseCertificate(opts.pinnedPem) : undefined)) {
    throw refuse('CERT_UNTRUSTED_CHAIN', "it does not chain to the org's certificate authority (the issuer's name matches, but its signature does not verify with the org's CA key)");
  }
  if (!(cert.keyUsage ?? []).includes(EKU_CLIENT_AUTH)) throw refuse('CERT_NO_CLIENT_AUTH', 'it is not valid for client authentication (no clientAuth extended key usage)');
  const wrongName = await identityProblem(cert.raw, opts.identity);
  if (wrongName) throw refuse('CERT_WRONG_IDENTITY', `it names ${wrongName}, but this device asked for a certificate for its own ID ${opts.identity}`);
  for (const c of [cert, ...anchors]) {
    const why = weakness(c);
    if (why) throw refuse(c === cert ? 'CERT_WEAK_CRYPTO' : 'CA_WEAK_CRYPTO', `${c === cert ? 'it has' : `its CA "${serverText(c.subject.split('\n').join(', '), 300)}" has`} ${why}, below the agent's floor`);
  }
  const lifetimeMs = Date.parse(info.notAfter) - Date.parse(info.notBefore);
  if (lifetimeMs > (opts.maxValiditySeconds + LIFETIME_SLACK_SECONDS) * 1000) {
    throw refuse('CERT_LIFETIME_TOO_LONG', `it is valid for ${days(lifetimeMs)} (${info.notBefore} to ${info.notAfter}), longer than the ${days(opts.maxValiditySeconds * 1000)} ${opts.lifetimeSource ?? 'the org advertises'}`);
  }
  const now = (opts.now ?? new Date()).getTime();
  if (Date.parse(info.notAfter) <= now) throw refuse('CERT_EXPIRED', `it expired on ${info.notAfter}`);
  if (Date.parse(info.notBefore) > now + CLOCK_SKEW_MS) {
    throw refuse('CERT_NOT_YET_VALID', `it is valid only from ${info.notBefore}; check this device's clock`);
  }
  return info;
}

function days(ms: number): string {
  const d = ms / 86_400_000;
  return d >= 2 ? `${Math.round(d)} days` : `${Math.round(ms / 3_600_000)} hours`;
}

/**
 * Whether the certificate names exactly the identity asked for: one subject CN equal to it, and no SAN entry
 * naming anything else (a SAN may repeat the ID, or say urn:uuid:<id>). Undefined when it does; else what it names.
 */
export async function identityProblem(der: Buffer | ArrayBuffer, identity: string): Promise<string | undefined> {
  // @peculiar/x509 (its names and SAN types, as the messages show them) is loaded on first use, not at start-up.
  const { x509 } = await import('./x509.js');
  const c = new x509.X509Certificate(der);
  const cns = c.subjectName.getField('CN');
  if (cns.length !== 1 || cns[0] !== identity) return cns.length ? `the subject CN "${serverText(cns.join('", "'), 200)}"` : 'a subject without a CN';
  const san = c.getExtension(x509.SubjectAlternativeNameExtension);
  const foreign = (san?.names.items ?? []).filter((n) => n.value !== identity && n.value.toLowerCase() !== `urn:uuid:${identity.toLowerCase()}`);
  if (foreign.length) return `the subject alternative name${foreign.length > 1 ? 's' : ''} ${serverText(foreign.slice(0, 5).map((n) => `${n.type}:"${n.value}"`).join(', '), 300)}`;
  return undefined;
}

function cap(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}
