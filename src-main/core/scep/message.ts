/**
 * SCEP PKI messages (RFC 8894 §3): a request is SignedData over an EnvelopedData holding a PKCS#10 request
 * (PKCSReq, RenewalReq) or an IssuerAndSubject (CertPoll); the answer (CertRep) is SignedData whose signed
 * attributes carry the status, and on SUCCESS an EnvelopedData with the issued certificate inside.
 */
import crypto, { X509Certificate, type KeyObject } from 'node:crypto';
import { AsnConvert, AsnProp, AsnType, AsnTypeTypes } from '@peculiar/asn1-schema';
import { Name } from '@peculiar/asn1-x509';
import { CmsError, OID, attrValue, attribute, envelope, openEnvelope, openEnvelopeWith, parseAsn1Certificate, parseCertsOnly, parseSignedData, readAttribute, signData, signDataWith, verifySignedData, type CipherName, type Decrypted, type DigestName, type KeyUnwrapper, type RsaSigner } from './cms.js';

/** RFC 8894 §3.2.1 attribute OIDs (id-VeriSign pki attributes) and §3.2.1.4.2 failInfoText. */
export const SCEP_OID = {
  messageType: '2.16.840.1.113733.1.9.2',
  pkiStatus: '2.16.840.1.113733.1.9.3',
  failInfo: '2.16.840.1.113733.1.9.4',
  senderNonce: '2.16.840.1.113733.1.9.5',
  recipientNonce: '2.16.840.1.113733.1.9.6',
  transactionID: '2.16.840.1.113733.1.9.7',
  failInfoText: '1.3.6.1.5.5.7.24.1',
} as const;

export const MessageType = { CertRep: '3', RenewalReq: '17', PKCSReq: '19', CertPoll: '20' } as const;
export type RequestType = 'PKCSReq' | 'RenewalReq' | 'CertPoll';

/** failInfo values (RFC 8894 §3.2.1.4) in words a help desk can act on. */
export const FAIL_INFO: Record<string, { name: string; words: string }> = {
  '0': { name: 'badAlg', words: 'the CA does not accept the algorithms this request used' },
  '1': { name: 'badMessageCheck', words: "the CA could not verify the request's signature or integrity" },
  '2': { name: 'badRequest', words: "the CA refused the request: a wrong or expired challenge password, or the CA's policy does not allow it" },
  '3': { name: 'badTime', words: "the request's time was not acceptable to the CA (check this device's clock)" },
  '4': { name: 'badCertId', words: 'the CA could not identify the certificate the request refers to' },
};

/** CertPoll's content (RFC 8894 §3.3.3): the CA's name and the subject of the pending request. */
@AsnType({ type: AsnTypeTypes.Sequence })
export class IssuerAndSubject {
  @AsnProp({ type: Name })
  issuer = new Name();

  @AsnProp({ type: Name })
  subject = new Name();

  constructor(params: Partial<IssuerAndSubject> = {}) {
    Object.assign(this, params);
  }
}

/** The transaction ID is derived from the request's public key, so a later run can poll the same transaction. */
export function transactionIdFor(publicKey: KeyObject): string {
  return crypto.createHash('sha256').update(publicKey.export({ format: 'der', type: 'spki' })).digest('hex').toUpperCase();
}

export interface RequestOptions {
  type: RequestType;
  /** DER: a PKCS#10 request, or an IssuerAndSubject for CertPoll. */
  content: Uint8Array;
  transactionId: string;
  senderNonce: Buffer;
  /** Whom the content is encrypted to: the CA, or its RA's encryption certificate. */
  recipient: X509Certificate;
  /** Self-signed certificate of the new key (PKCSReq, CertPoll) or the current certificate (RenewalReq). */
  signerCert: X509Certificate;
  signerKey: KeyObject;
  digest: DigestName;
  cipher: Exclude<CipherName, 'des-cbc'>;
}

function requestParts(opts: Omit<RequestOptions, 'signerKey'>) {
  return {
    content: envelope(opts.content, opts.recipient, opts.cipher),
    signerCert: opts.signerCert,
    digest: opts.digest,
    attributes: [
      attribute(SCEP_OID.messageType, attrValue.printable(MessageType[opts.type])),
      attribute(SCEP_OID.transactionID, attrValue.printable(opts.transactionId)),
      attribute(SCEP_OID.senderNonce, attrValue.octets(opts.senderNonce)),
    ],
  };
}

export function buildRequest(opts: RequestOptions): Buffer {
  return signData({ ...requestParts(opts), signerKey: opts.signerKey });
}

/** buildRequest signed by `sign` (the device key in its key store). */
export function buildRequestWith(opts: Omit<RequestOptions, 'signerKey'>, sign: RsaSigner): Promise<Buffer> {
  return signDataWith(requestParts(opts), sign);
}

export function issuerAndSubject(ca: X509Certificate, subjectCert: X509Certificate): Buffer {
  const issuer = parseAsn1Certificate(ca).tbsCertificate.subject;
  const subject = parseAsn1Certificate(subjectCert).tbsCertificate.subject;
  return Buffer.from(AsnConvert.serialize(new IssuerAndSubject({ issuer, subject })));
}

export type CertRep =
  | { status: 'SUCCESS'; certificates: X509Certificate[]; cipher: CipherName; weakCipher: boolean }
  | { status: 'FAILURE'; failInfo: string; failInfoName: string; failInfoWords: string; failInfoText?: string }
  | { status: 'PENDING' };

export interface CertRepExpectations {
  /** The pinned CA and RA certificates: the only acceptable signers. */
  signers: X509Certificate[];
  transactionId: string;
  senderNonce: Buffer;
  /** Certificate and key the request was encrypted for (the answer is encrypted back to them). */
  recipientCert: X509Certificate;
  recipientKey: KeyObject;
}

/**
 * Verifies and reads a CertRep: signed by the CA or its RA, for our transaction, echoing our nonce. Anything
 * else is refused (CmsError), because an unsigned or replayed answer could install an attacker's certificate.
 */
export function parseCertRep(der: Uint8Array, expect: CertRepExpectations): CertRep {
  const r = checkCertRep(der, expect);
  if (r.status !== 'SEALED') return r;
  return opened(openEnvelope(r.content, expect.recipientCert, expect.recipientKey, r.what));
}

/** parseCertRep with the answer's content key unwrapped by `unwrap` (the device key in its key store). */
export async function parseCertRepWith(der: Uint8Array, expect: Omit<CertRepExpectations, 'recipientKey'>, unwrap: KeyUnwrapper): Promise<CertRep> {
  const r = checkCertRep(der, expect);
  if (r.status !== 'SEALED') return r;
  return opened(await openEnvelopeWith(r.content, expect.recipientCert, unwrap, r.what));
}

function opened(d: Decrypted): CertRep {
  return { status: 'SUCCESS', certificates: parseCertsOnly(d.content, 'The issued certificate bundle'), cipher: d.cipher, weakCipher: d.weak };
}

/** Everything but the decryption: signer, transaction, nonce, status. */
function checkCertRep(der: Uint8Array, expect: Omit<CertRepExpectations, 'recipientKey'>): Exclude<CertRep, { status: 'SUCCESS' }> | { status: 'SEALED'; content: Buffer; what: string } {
  const what = "The CA's answer";
  const parsed = parseSignedData(der, what);
  const { attributes } = verifySignedData(parsed, expect.signers, what);
  const text = (oid: string) => readAttribute(attributes, oid)?.text;
  if (text(SCEP_OID.messageType) !== MessageType.CertRep) throw new CmsError(`${what} is not a CertRep (messageType ${text(SCEP_OID.messageType) ?? 'missing'})`);
  if (text(SCEP_OID.transactionID) !== expect.transactionId) throw new CmsError(`${what} is for another transaction`);
  const nonce = readAttribute(attributes, SCEP_OID.recipientNonce)?.bytes;
  if (!nonce || !nonce.equals(expect.senderNonce)) throw new CmsError(`${what} does not echo this request's nonce (a replayed answer?)`);
  const status = text(SCEP_OID.pkiStatus);
  if (status === '3') return { status: 'PENDING' };
  if (status === '2') {
    const failInfo = text(SCEP_OID.failInfo) ?? '';
    const known = FAIL_INFO[failInfo];
    const failInfoText = text(SCEP_OID.failInfoText);
    return {
      status: 'FAILURE',
      failInfo,
      failInfoName: known?.name ?? `failInfo ${failInfo || '(missing)'}`,
      failInfoWords: known?.words ?? 'the CA refused the request without a reason this agent knows',
      ...(failInfoText ? { failInfoText } : {}),
    };
  }
  if (status !== '0') throw new CmsError(`${what} has an unknown pkiStatus ${status ?? '(missing)'}`);
  if (!parsed.content) throw new CmsError(`${what} says SUCCESS but carries no certificate`);
  return { status: 'SEALED', content: parsed.content, what: `The envelope in ${what.toLowerCase()}` };
}

export { OID };
