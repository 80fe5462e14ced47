/**
 * The CMS (RFC 5652) pieces SCEP is made of: SignedData with signed attributes, EnvelopedData with RSA key
 * transport, and "degenerate" certificates-only SignedData. Every structure is built and parsed with the
 * @peculiar/asn1-* schemas (and asn1js for attribute values); nothing here writes DER by hand. The
 * cryptography is Node's own.
 */
import crypto, { X509Certificate, type KeyObject } from 'node:crypto';
import * as asn1js from 'asn1js';
import {
  Attribute, CertificateChoices, CertificateSet, ContentInfo, EncapsulatedContent, EncapsulatedContentInfo, EncryptedContent,
  EncryptedContentInfo, EnvelopedData, IssuerAndSerialNumber, KeyTransRecipientInfo, RecipientIdentifier, RecipientInfo,
  RecipientInfos, SignedData, SignerIdentifier, SignerInfo, SignerInfos, DigestAlgorithmIdentifiers, id_data, id_envelopedData,
  id_signedData, CMSVersion,
} from '@peculiar/asn1-cms';
import { AsnArray, AsnConvert, AsnType, AsnTypeTypes, OctetString } from '@peculiar/asn1-schema';
import { AlgorithmIdentifier, Certificate } from '@peculiar/asn1-x509';

export const OID = {
  sha1: '1.3.14.3.2.26',
  sha256: '2.16.840.1.101.3.4.2.1',
  sha512: '2.16.840.1.101.3.4.2.3',
  rsaEncryption: '1.2.840.113549.1.1.1',
  rsaOaep: '1.2.840.113549.1.1.7',
  sha1WithRSA: '1.2.840.113549.1.1.5',
  sha256WithRSA: '1.2.840.113549.1.1.11',
  sha512WithRSA: '1.2.840.113549.1.1.13',
  aes128cbc: '2.16.840.1.101.3.4.1.2',
  aes192cbc: '2.16.840.1.101.3.4.1.22',
  aes256cbc: '2.16.840.1.101.3.4.1.42',
  desEde3cbc: '1.2.840.113549.3.7',
  desCbc: '1.3.14.3.2.7',
  contentType: '1.2.840.113549.1.9.3',
  messageDigest: '1.2.840.113549.1.9.4',
  signingTime: '1.2.840.113549.1.9.5',
} as const;

export type DigestName = 'sha1' | 'sha256' | 'sha512';
export type CipherName = 'aes-128-cbc' | 'aes-192-cbc' | 'aes-256-cbc' | 'des-ede3-cbc' | 'des-cbc';

const DIGEST_OIDS: Record<DigestName, string> = { sha1: OID.sha1, sha256: OID.sha256, sha512: OID.sha512 };
const CIPHERS: Record<string, { name: CipherName; keyBytes: number; ivBytes: number; weak: boolean }> = {
  [OID.aes128cbc]: { name: 'aes-128-cbc', keyBytes: 16, ivBytes: 16, weak: false },
  [OID.aes192cbc]: { name: 'aes-192-cbc', keyBytes: 24, ivBytes: 16, weak: false },
  [OID.aes256cbc]: { name: 'aes-256-cbc', keyBytes: 32, ivBytes: 16, weak: false },
  [OID.desEde3cbc]: { name: 'des-ede3-cbc', keyBytes: 24, ivBytes: 8, weak: true },
  // Only ever decrypted (some CAs, micromdm's included, encrypt their answers with it); never used to send.
  [OID.desCbc]: { name: 'des-cbc', keyBytes: 8, ivBytes: 8, weak: true },
};
const CIPHER_OIDS = Object.fromEntries(Object.entries(CIPHERS).map(([oid, c]) => [c.name, oid])) as Record<CipherName, string>;

/** A structural or cryptographic problem with a CMS message; the SCEP client turns it into an AgentError. */
export class CmsError extends Error {
  override readonly name = 'CmsError';
}

/** SET OF Attribute, for the bytes a SignerInfo's signature covers (RFC 5652 §5.4: the SET, not the [0]). */
@AsnType({ type: AsnTypeTypes.Set, itemType: Attribute })
class AttributeSet extends AsnArray<Attribute> {
  constructor(items?: Attribute[]) {
    super(items);
    Object.setPrototypeOf(this, AttributeSet.prototype);
  }
}

const toBuffer = (ab: ArrayBuffer | ArrayBufferView): Buffer =>
  ArrayBuffer.isView(ab) ? Buffer.from(ab.buffer, ab.byteOffset, ab.byteLength) : Buffer.from(ab);
const toArrayBuffer = (b: Uint8Array): ArrayBuffer => b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;

export function parseAsn1Certificate(cert: X509Certificate): Certificate {
  return AsnConvert.parse(cert.raw, Certificate);
}

export function issuerAndSerial(cert: X509Certificate): IssuerAndSerialNumber {
  const tbs = parseAsn1Certificate(cert).tbsCertificate;
  return new IssuerAndSerialNumber({ issuer: tbs.issuer, serialNumber: tbs.serialNumber });
}

function sameIssuerAndSerial(a: IssuerAndSerialNumber, cert: X509Certificate): boolean {
  const b = issuerAndSerial(cert);
  return toBuffer(AsnConvert.serialize(a)).equals(toBuffer(AsnConvert.serialize(b)));
}

/** Attribute values as the SCEP RFC types them. */
export const attrValue = {
  printable: (s: string) => new asn1js.PrintableString({ value: s }).toBER(false),
  octets: (b: Uint8Array) => new asn1js.OctetString({ valueHex: toArrayBuffer(b) }).toBER(false),
  oid: (oid: string) => new asn1js.ObjectIdentifier({ value: oid }).toBER(false),
  utcTime: (d: Date) => new asn1js.UTCTime({ valueDate: d }).toBER(false),
};

export function attribute(type: string, value: ArrayBuffer): Attribute {
  return new Attribute({ attrType: type, attrValues: [value] });
}

/** The first value of an attribute, decoded by asn1js (strings as text, octet strings as bytes). */
export function readAttribute(attrs: Attribute[] | undefined, type: string): { text?: string; bytes?: Buffer } | undefined {
  const a = attrs?.find((x) => x.attrType === type);
  const raw = a?.attrValues[0];
  if (!raw) return undefined;
  const parsed = asn1js.fromBER(raw);
  if (parsed.offset === -1) throw new CmsError(`attribute ${type} is not valid BER`);
  const v = parsed.result;
  if (v instanceof asn1js.OctetString) return { bytes: Buffer.from(v.valueBlock.valueHexView) };
  if (v instanceof asn1js.BaseStringBlock) return { text: v.getValue() };
  if (v instanceof asn1js.Integer) return { text: v.valueBlock.valueDec.toString() };
  return { bytes: Buffer.from(raw) };
}

/** DER orders a SET OF by the encodings of its members; signer and verifier must see the same order. */
function derSorted(attrs: Attribute[]): Attribute[] {
  return attrs
    .map((a) => ({ a, der: toBuffer(AsnConvert.serialize(a)) }))
    .sort((x, y) => Buffer.compare(x.der, y.der))
    .map((x) => x.a);
}

export interface SignOptions {
  content: Uint8Array;
  signerCert: X509Certificate;
  signerKey: KeyObject;
  digest: DigestName;
  /** Extra signed attributes (SCEP's messageType, transactionID, nonces…). */
  attributes: Attribute[];
}

/** RSA PKCS#1 v1.5 signature over `data` with `digest`, made wherever the key lives (a key store, for the device key). */
export type RsaSigner = (data: Buffer, digest: DigestName) => Promise<Buffer>;

/** SignedData (RFC 5652 §5) over `content` as id-data, with the signer's certificate included; DER ContentInfo. */
export function signData(opts: SignOptions): Buffer {
  const { toSign, finish } = prepareSignedData(opts);
  return finish(crypto.sign(opts.digest, toSign, opts.signerKey));
}

/** signData with the signature made by `sign` (the device key in its store: the agent never holds it). */
export async function signDataWith(opts: Omit<SignOptions, 'signerKey'>, sign: RsaSigner): Promise<Buffer> {
  const { toSign, finish } = prepareSignedData(opts);
  return finish(await sign(toSign, opts.digest));
}

function prepareSignedData(opts: Omit<SignOptions, 'signerKey'>): { toSign: Buffer; finish(signature: Buffer): Buffer } {
  const digest = crypto.createHash(opts.digest).update(opts.content).digest();
  const signedAttrs = derSorted([
    attribute(OID.contentType, attrValue.oid(id_data)),
    attribute(OID.signingTime, attrValue.utcTime(new Date())),
    attribute(OID.messageDigest, attrValue.octets(digest)),
    ...opts.attributes,
  ]);
  const toSign = toBuffer(AsnConvert.serialize(new AttributeSet(signedAttrs)));
  const finish = (signature: Buffer): Buffer => {
    const digestAlgorithm = new AlgorithmIdentifier({ algorithm: DIGEST_OIDS[opts.digest], parameters: null });
    const signer = new SignerInfo({
      version: CMSVersion.v1,
      sid: new SignerIdentifier({ issuerAndSerialNumber: issuerAndSerial(opts.signerCert) }),
      digestAlgorithm,
      signedAttrs,
      // rsaEncryption (not shaXWithRSA) is what RFC 8894 implementations universally accept here.
      signatureAlgorithm: new AlgorithmIdentifier({ algorithm: OID.rsaEncryption, parameters: null }),
      signature: new OctetString(signature),
    });
    const signedData = new SignedData({
      version: CMSVersion.v1,
      digestAlgorithms: new DigestAlgorithmIdentifiers([digestAlgorithm]),
      encapContentInfo: new EncapsulatedContentInfo({ eContentType: id_data, eContent: new EncapsulatedContent({ single: new OctetString(opts.content) }) }),
      certificates: new CertificateSet([new CertificateChoices({ certificate: parseAsn1Certificate(opts.signerCert) })]),
      signerInfos: new SignerInfos([signer]),
    });
    return toBuffer(AsnConvert.serialize(new ContentInfo({ contentType: id_signedData, content: AsnConvert.serialize(signedData) })));
  };
  return { toSign, finish };
}

function contentInfo(der: Uint8Array, expected: string, what: string): ArrayBuffer {
  let ci: ContentInfo;
  try {
    ci = AsnConvert.parse(der, ContentInfo);
  } catch (e) {
    throw new CmsError(`${what} is not a CMS ContentInfo (${(e as Error).message})`);
  }
  if (ci.contentType !== expected) throw new CmsError(`${what} has content type ${ci.contentType}, expected ${expected}`);
  return ci.content;
}

export interface ParsedSignedData {
  signedData: SignedData;
  /** The encapsulated content (absent in a certificates-only message). */
  content: Buffer | undefined;
  certificates: X509Certificate[];
  /** The first SignerInfo's signed attributes as received ([0] IMPLICIT SET OF), for signature checks. */
  signedAttrsRaw: Buffer | undefined;
}

/** The received bytes of signerInfos[0].signedAttrs, read with asn1js (the schema parser does not keep them). */
function rawSignedAttrs(signedDataDer: ArrayBuffer): Buffer | undefined {
  const parsed = asn1js.fromBER(signedDataDer);
  if (parsed.offset === -1 || !(parsed.result instanceof asn1js.Sequence)) return undefined;
  const fields = parsed.result.valueBlock.value;
  const signerInfos = fields[fields.length - 1];
  if (!(signerInfos instanceof asn1js.Set)) return undefined;
  const first = signerInfos.valueBlock.value[0];
  if (!(first instanceof asn1js.Sequence)) return undefined;
  const attrs = first.valueBlock.value.find((f) => f.idBlock.tagClass === 3 && f.idBlock.tagNumber === 0);
  return attrs ? Buffer.from(attrs.valueBeforeDecodeView) : undefined;
}

export function parseSignedData(der: Uint8Array, what: string): ParsedSignedData {
  let signedData: SignedData;
  let signedDataDer: ArrayBuffer;
  try {
    signedDataDer = contentInfo(der, id_signedData, what);
    signedData = AsnConvert.parse(signedDataDer, SignedData);
  } catch (e) {
    if (e instanceof CmsError) throw e;
    throw new CmsError(`${what} is not a valid SignedData (${(e as Error).message})`);
  }
  const eContent = signedData.encapContentInfo.eContent;
  let content: Buffer | undefined;
  if (eContent?.single) content = toBuffer(eContent.single.buffer);
  else if (eContent?.any) {
    // Some encoders use a constructed OCTET STRING; asn1js joins its pieces.
    const parsed = asn1js.fromBER(eContent.any);
    if (!(parsed.result instanceof asn1js.OctetString)) throw new CmsError(`${what} has content that is not an OCTET STRING`);
    content = Buffer.from(parsed.result.getValue());
  }
  const certificates: X509Certificate[] = [];
  for (const choice of signedData.certificates ?? []) {
    if (choice.certificate) certificates.push(new X509Certificate(toBuffer(AsnConvert.serialize(choice.certificate))));
  }
  return { signedData, content, certificates, signedAttrsRaw: rawSignedAttrs(signedDataDer) };
}

/** The certificates of a degenerate (certificates-only) SignedData: GetCACert's RA/CA chain, CertRep's payload. */
export function parseCertsOnly(der: Uint8Array, what: string): X509Certificate[] {
  const { certificates } = parseSignedData(der, what);
  if (certificates.length === 0) throw new CmsError(`${what} holds no certificate`);
  return certificates;
}

export interface VerifiedSignature {
  signer: X509Certificate;
  attributes: Attribute[];
  digest: string;
}

/**
 * Checks the one SignerInfo against `allowed` signers (the pinned CA and the RA certificates chained to it):
 * the messageDigest attribute must match the content and the signature must verify over the signed attributes.
 */
export function verifySignedData(parsed: ParsedSignedData, allowed: X509Certificate[], what: string): VerifiedSignature {
  const [info] = parsed.signedData.signerInfos;
  if (!info || parsed.signedData.signerInfos.length !== 1) throw new CmsError(`${what} must have exactly one signer`);
  if (!info.signedAttrs || !parsed.signedAttrsRaw) throw new CmsError(`${what} has no signed attributes`);
  const sid = info.sid.issuerAndSerialNumber;
  const signer = sid ? allowed.find((c) => sameIssuerAndSerial(sid, c)) : undefined;
  if (!signer) throw new CmsError(`${what} is not signed by the pinned CA or one of its RA certificates`);
  const digestName = (Object.entries(DIGEST_OIDS).find(([, oid]) => oid === info.digestAlgorithm.algorithm)?.[0] ?? undefined) as DigestName | undefined;
  if (!digestName) throw new CmsError(`${what} uses an unsupported digest algorithm ${info.digestAlgorithm.algorithm}`);
  const md = readAttribute(info.signedAttrs, OID.messageDigest)?.bytes;
  const expected = crypto.createHash(digestName).update(parsed.content ?? Buffer.alloc(0)).digest();
  if (!md || !md.equals(expected)) throw new CmsError(`${what} has a message digest that does not match its content`);
  // The signature covers the SET OF the attributes exactly as received: their [0] IMPLICIT bytes with the SET tag.
  const signed = Buffer.from(parsed.signedAttrsRaw);
  signed[0] = 0x31;
  const sigAlg = info.signatureAlgorithm.algorithm;
  if (![OID.rsaEncryption, OID.sha1WithRSA, OID.sha256WithRSA, OID.sha512WithRSA].includes(sigAlg as never)) {
    throw new CmsError(`${what} uses an unsupported signature algorithm ${sigAlg}`);
  }
  const ok = crypto.verify(digestName, signed, signer.publicKey, toBuffer(info.signature.buffer));
  if (!ok) throw new CmsError(`${what} has a signature that does not verify with the CA's key`);
  return { signer, attributes: info.signedAttrs, digest: digestName };
}

/** EnvelopedData to one recipient certificate: a fresh content key, RSA PKCS#1 v1.5 key transport (RFC 8894 §3.2.2). */
export function envelope(content: Uint8Array, recipient: X509Certificate, cipher: Exclude<CipherName, 'des-cbc'>): Buffer {
  const oid = CIPHER_OIDS[cipher];
  const spec = CIPHERS[oid]!;
  const key = crypto.randomBytes(spec.keyBytes);
  const iv = crypto.randomBytes(spec.ivBytes);
  const c = crypto.createCipheriv(spec.name, key, iv);
  const encrypted = Buffer.concat([c.update(content), c.final()]);
  const encryptedKey = crypto.publicEncrypt({ key: recipient.publicKey, padding: crypto.constants.RSA_PKCS1_PADDING }, key);
  const enveloped = new EnvelopedData({
    version: CMSVersion.v0,
    recipientInfos: new RecipientInfos([new RecipientInfo({
      ktri: new KeyTransRecipientInfo({
        version: CMSVersion.v0,
        rid: new RecipientIdentifier({ issuerAndSerialNumber: issuerAndSerial(recipient) }),
        keyEncryptionAlgorithm: new AlgorithmIdentifier({ algorithm: OID.rsaEncryption, parameters: null }),
        encryptedKey: new OctetString(encryptedKey),
      }),
    })]),
    encryptedContentInfo: new EncryptedContentInfo({
      contentType: id_data,
      contentEncryptionAlgorithm: new AlgorithmIdentifier({ algorithm: oid, parameters: AsnConvert.serialize(new OctetString(iv)) }),
      encryptedContent: new EncryptedContent({ value: new OctetString(encrypted) }),
    }),
  });
  return toBuffer(AsnConvert.serialize(new ContentInfo({ contentType: id_envelopedData, content: AsnConvert.serialize(enveloped) })));
}

/**
 * Unwraps a content key with a software RSA key. For PKCS#1 v1.5, the padding is removed here: Node refuses
 * PKCS#1 v1.5 private decryption (CVE-2023-46809, the Marvin timing attack on servers that decrypt for anyone);
 * the only thing ever unwrapped is the key of a CA answer that carries a public certificate, so there is no
 * secret for such an oracle to reveal. The caller's length check against the cipher's key size still refuses
 * anything malformed.
 */
export function unwrapWithKey(key: KeyObject, encryptedKey: Buffer, oaep: boolean): Buffer | undefined {
  if (oaep) return crypto.privateDecrypt({ key, padding: crypto.constants.RSA_PKCS1_OAEP_PADDING }, encryptedKey);
  const em = crypto.privateDecrypt({ key, padding: crypto.constants.RSA_NO_PADDING }, encryptedKey);
  if (em[0] !== 0x00 || em[1] !== 0x02) return undefined;
  const sep = em.indexOf(0x00, 2);
  return sep >= 10 ? em.subarray(sep + 1) : undefined;
}

export interface Decrypted {
  content: Buffer;
  cipher: CipherName;
  weak: boolean;
}

/**
 * Unwraps the content key: `oaep` says which key transport the sender used. Returns the plaintext key (PKCS#1
 * v1.5 padding already removed) or undefined when it cannot be unwrapped.
 */
export type KeyUnwrapper = (encryptedKey: Buffer, oaep: boolean) => Promise<Buffer | undefined>;

interface SealedEnvelope {
  spec: { name: CipherName; keyBytes: number; ivBytes: number; weak: boolean };
  iv: Buffer;
  encryptedKey: Buffer;
  oaep: boolean;
  body: Buffer;
  what: string;
}

function readEnvelope(der: Uint8Array, recipientCert: X509Certificate, what: string): SealedEnvelope {
  let enveloped: EnvelopedData;
  try {
    enveloped = AsnConvert.parse(contentInfo(der, id_envelopedData, what), EnvelopedData);
  } catch (e) {
    if (e instanceof CmsError) throw e;
    throw new CmsError(`${what} is not a valid EnvelopedData (${(e as Error).message})`);
  }
  const ktris = enveloped.recipientInfos.map((r) => r.ktri).filter((k): k is KeyTransRecipientInfo => Boolean(k));
  const mine = ktris.find((k) => k.rid.issuerAndSerialNumber && sameIssuerAndSerial(k.rid.issuerAndSerialNumber, recipientCert)) ?? (ktris.length === 1 ? ktris[0] : undefined);
  if (!mine) throw new CmsError(`${what} is not addressed to this device's key`);
  const eci = enveloped.encryptedContentInfo;
  const spec = CIPHERS[eci.contentEncryptionAlgorithm.algorithm];
  if (!spec) throw new CmsError(`${what} is encrypted with an unsupported algorithm ${eci.contentEncryptionAlgorithm.algorithm}`);
  const ivParam = eci.contentEncryptionAlgorithm.parameters;
  const iv = ivParam ? toBuffer(AsnConvert.parse(ivParam, OctetString).buffer) : undefined;
  if (!iv || iv.length !== spec.ivBytes) throw new CmsError(`${what} has a missing or malformed IV`);
  const kea = mine.keyEncryptionAlgorithm.algorithm;
  if (kea !== OID.rsaOaep && kea !== OID.rsaEncryption) throw new CmsError(`${what} uses an unsupported key transport ${kea}`);
  const body = eci.encryptedContent?.value ? toBuffer(eci.encryptedContent.value.buffer)
    : Buffer.concat((eci.encryptedContent?.constructedValue ?? []).map((o) => toBuffer(o.buffer)));
  return { spec, iv, encryptedKey: toBuffer(mine.encryptedKey.buffer), oaep: kea === OID.rsaOaep, body, what };
}

function decryptContent(env: SealedEnvelope, key: Buffer | undefined): Decrypted {
  const { spec, iv, what } = env;
  // The length check against the cipher's key size refuses anything malformed, whoever unwrapped it.
  if (!key || key.length !== spec.keyBytes) throw new CmsError(`${what} could not be decrypted with this device's key`);
  try {
    // OpenSSL 3 keeps single DES in its legacy provider; 3DES with K|K|K is exactly single DES with K.
    const d = spec.name === 'des-cbc' ? crypto.createDecipheriv('des-ede3-cbc', Buffer.concat([key, key, key]), iv) : crypto.createDecipheriv(spec.name, key, iv);
    return { content: Buffer.concat([d.update(env.body), d.final()]), cipher: spec.name, weak: spec.weak };
  } catch {
    throw new CmsError(`${what} could not be decrypted with this device's key`);
  }
}

/** Opens an EnvelopedData addressed to `recipientCert` with `recipientKey` (RSA key transport, CBC content). */
export function openEnvelope(der: Uint8Array, recipientCert: X509Certificate, recipientKey: KeyObject, what: string): Decrypted {
  const env = readEnvelope(der, recipientCert, what);
  let key: Buffer | undefined;
  try {
    key = unwrapWithKey(recipientKey, env.encryptedKey, env.oaep);
  } catch {
    key = undefined;
  }
  return decryptContent(env, key);
}

/** openEnvelope with the content key unwrapped by `unwrap` (the device key in its store). */
export async function openEnvelopeWith(der: Uint8Array, recipientCert: X509Certificate, unwrap: KeyUnwrapper, what: string): Promise<Decrypted> {
  const env = readEnvelope(der, recipientCert, what);
  let key: Buffer | undefined;
  try {
    key = await unwrap(env.encryptedKey, env.oaep);
  } catch {
    key = undefined;
  }
  return decryptContent(env, key);
}
