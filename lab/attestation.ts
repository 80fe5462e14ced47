/**
 * The lab org's verifier of TPM key attestation (docs/PROTOCOL.md §11).
 *
 * Round 1 (challenge): the device sends its EK certificate and the TPMT_PUBLIC of a fresh attestation key (AK).
 * The org checks the EK certificate against the TPM vendor CAs it trusts, checks that the AK is a restricted
 * signing key that cannot leave its TPM, and answers a one-time nonce plus a credential (TPM2_MakeCredential,
 * done here in Node) that only the TPM holding that EK can open, and only for an AK with exactly that name.
 * Round 2 (enroll/renew): the device sends the activated secret, the device key's TPMT_PUBLIC and a
 * TPM2_Certify of it by the AK over the nonce. All of it is checked here; any failure is a refusal with a reason.
 */
import crypto, { X509Certificate, type KeyObject } from 'node:crypto';
import { z } from 'zod';

/** The policy OID the lab puts in certificatePolicies of a certificate whose key was attested (under 32473, the enterprise number RFC 5612 reserves for documentation; a real org uses its own arc). */
export const ATTESTED_KEY_POLICY_OID = '1.3.6.1.4.1.32473.13.1';

export const TPM_GENERATED_VALUE = 0xff544347;
export const TPM_ST_ATTEST_CERTIFY = 0x8017;
const ALG = { RSA: 0x0001, SHA256: 0x000b, NULL: 0x0010, ECC: 0x0023, ECDSA: 0x0018, RSASSA: 0x0014, AES: 0x0006, CFB: 0x0043 };
export const TPMA = { fixedTPM: 0x2, fixedParent: 0x10, sensitiveDataOrigin: 0x20, restricted: 0x10000, decrypt: 0x20000, sign: 0x40000 };
const ECC_CURVES: Record<number, string> = { 0x0003: 'P-256', 0x0004: 'P-384', 0x0005: 'P-521' };

const b64 = z.string().min(1).max(16 * 1024).regex(/^[A-Za-z0-9+/]+={0,2}$/, 'not base64');
export const ChallengeRequestSchema = z.object({ ekCert: b64, akPublic: b64 });
export const EvidenceSchema = z.object({
  challengeId: z.string().regex(/^[0-9a-f]{32}$/),
  secret: b64,
  tpmtPublic: b64,
  certifyInfo: b64,
  signature: b64,
});
export type Evidence = z.infer<typeof EvidenceSchema>;

/** A refusal: the code goes to the device as errorCode (HTTP 403), the message as errorSummary. */
export class AttestationRefused extends Error {
  constructor(readonly code: string, message: string) {
    super(message);
  }
}

class Reader {
  private off = 0;
  constructor(private readonly buf: Buffer, private readonly what: string) {}
  private need(n: number): void {
    if (this.off + n > this.buf.length) throw new AttestationRefused('E0000_ATTESTATION_MALFORMED', `The ${this.what} is truncated.`);
  }
  u16(): number { this.need(2); const v = this.buf.readUInt16BE(this.off); this.off += 2; return v; }
  u32(): number { this.need(4); const v = this.buf.readUInt32BE(this.off); this.off += 4; return v; }
  bytes(n: number): Buffer { this.need(n); const v = this.buf.subarray(this.off, this.off + n); this.off += n; return v; }
  tpm2b(): Buffer { return this.bytes(this.u16()); }
  get consumed(): number { return this.off; }
}

export interface TpmPublic {
  type: number;
  nameAlg: number;
  attributes: number;
  key: KeyObject;
  /** The TPM2B_PUBLIC contents exactly as received (what the name is computed over). */
  raw: Buffer;
}

/** Parses a TPMT_PUBLIC of an RSA or ECC key into its attributes and its public key. */
export function parseTpmtPublic(raw: Buffer, what = 'TPMT_PUBLIC'): TpmPublic {
  const r = new Reader(raw, what);
  const type = r.u16();
  const nameAlg = r.u16();
  const attributes = r.u32();
  r.tpm2b(); // authPolicy
  const symmetric = r.u16();
  if (symmetric !== ALG.NULL) { r.u16(); r.u16(); }
  const scheme = r.u16();
  if (scheme !== ALG.NULL) r.u16();
  let key: KeyObject;
  try {
    if (type === ALG.ECC) {
      const curve = ECC_CURVES[r.u16()];
      const kdf = r.u16();
      if (kdf !== ALG.NULL) r.u16();
      const x = r.tpm2b();
      const y = r.tpm2b();
      if (!curve) throw new AttestationRefused('E0000_ATTESTATION_MALFORMED', `The ${what} names an unsupported curve.`);
      key = crypto.createPublicKey({ key: { kty: 'EC', crv: curve, x: x.toString('base64url'), y: y.toString('base64url') }, format: 'jwk' });
    } else if (type === ALG.RSA) {
      r.u16(); // keyBits
      const exponent = r.u32() || 65537;
      const n = r.tpm2b();
      const e = Buffer.alloc(4);
      e.writeUInt32BE(exponent);
      key = crypto.createPublicKey({ key: { kty: 'RSA', n: n.toString('base64url'), e: e.subarray(e.findIndex((b) => b !== 0)).toString('base64url') }, format: 'jwk' });
    } else {
      throw new AttestationRefused('E0000_ATTESTATION_MALFORMED', `The ${what} is neither an RSA nor an ECC key.`);
    }
  } catch (e) {
    if (e instanceof AttestationRefused) throw e;
    throw new AttestationRefused('E0000_ATTESTATION_MALFORMED', `The ${what} does not hold a usable public key (${(e as Error).message}).`);
  }
  if (nameAlg !== ALG.SHA256) throw new AttestationRefused('E0000_ATTESTATION_MALFORMED', `The ${what} uses a name algorithm other than SHA-256.`);
  return { type, nameAlg, attributes, key, raw: raw.subarray(0, r.consumed) };
}

/** The TPM name of an object: nameAlg ‖ H(TPMT_PUBLIC). */
export function tpmName(pub: Buffer): Buffer {
  return Buffer.concat([Buffer.from([0x00, 0x0b]), crypto.createHash('sha256').update(pub).digest()]);
}

function u16(n: number): Buffer { const b = Buffer.alloc(2); b.writeUInt16BE(n); return b; }
function u32(n: number): Buffer { const b = Buffer.alloc(4); b.writeUInt32BE(n); return b; }

/** TPM 2.0 KDFa with HMAC-SHA-256 (Part 1, 11.4.10.2). */
export function kdfa(key: Buffer, label: string, contextU: Buffer, contextV: Buffer, bits: number): Buffer {
  const out: Buffer[] = [];
  for (let i = 1, have = 0; have < bits / 8; i++) {
    const block = crypto.createHmac('sha256', key).update(Buffer.concat([u32(i), Buffer.from(label, 'latin1'), Buffer.from([0]), contextU, contextV, u32(bits)])).digest();
    out.push(block);
    have += block.length;
  }
  return Buffer.concat(out).subarray(0, bits / 8);
}

/**
 * TPM2_MakeCredential done by the verifier (Part 1, 24): `credential` wrapped so that only the TPM holding the
 * EK's private key can open it, and only for an object named `objectName`. Returns the TPM2B_ID_OBJECT and
 * TPM2B_ENCRYPTED_SECRET, each with its size prefix. Assumes the standard RSA 2048 EK template (SHA-256, AES-128-CFB).
 */
export function makeCredential(ekPublicKey: KeyObject, objectName: Buffer, credential: Buffer): { credentialBlob: Buffer; encryptedSecret: Buffer } {
  const seed = crypto.randomBytes(32);
  const encSeed = crypto.publicEncrypt({ key: ekPublicKey, padding: crypto.constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256', oaepLabel: Buffer.from('IDENTITY\0', 'latin1') }, seed);
  const symKey = kdfa(seed, 'STORAGE', objectName, Buffer.alloc(0), 128);
  const cipher = crypto.createCipheriv('aes-128-cfb', symKey, Buffer.alloc(16));
  const encIdentity = Buffer.concat([cipher.update(Buffer.concat([u16(credential.length), credential])), cipher.final()]);
  const hmacKey = kdfa(seed, 'INTEGRITY', Buffer.alloc(0), Buffer.alloc(0), 256);
  const integrity = crypto.createHmac('sha256', hmacKey).update(Buffer.concat([encIdentity, objectName])).digest();
  const idObject = Buffer.concat([u16(integrity.length), integrity, encIdentity]);
  return { credentialBlob: Buffer.concat([u16(idObject.length), idObject]), encryptedSecret: Buffer.concat([u16(encSeed.length), encSeed]) };
}

export interface CertifyInfo {
  magic: number;
  type: number;
  qualifiedSigner: Buffer;
  extraData: Buffer;
  name: Buffer;
}

export function parseCertifyInfo(raw: Buffer): CertifyInfo {
  const r = new Reader(raw, 'TPMS_ATTEST');
  const magic = r.u32();
  const type = r.u16();
  const qualifiedSigner = r.tpm2b();
  const extraData = r.tpm2b();
  r.bytes(17); // clockInfo
  r.bytes(8); // firmwareVersion
  const name = type === TPM_ST_ATTEST_CERTIFY ? r.tpm2b() : Buffer.alloc(0);
  return { magic, type, qualifiedSigner, extraData, name };
}

/** Verifies a TPMT_SIGNATURE (ECDSA or RSASSA with SHA-256) over `data`. */
export function verifyTpmSignature(key: KeyObject, data: Buffer, sig: Buffer): boolean {
  try {
    const r = new Reader(sig, 'TPMT_SIGNATURE');
    const alg = r.u16();
    const hash = r.u16();
    if (hash !== ALG.SHA256) return false;
    if (alg === ALG.ECDSA) {
      const size = key.asymmetricKeyDetails?.namedCurve === 'prime256v1' ? 32 : key.asymmetricKeyDetails?.namedCurve === 'secp384r1' ? 48 : 66;
      const pad = (b: Buffer) => Buffer.concat([Buffer.alloc(Math.max(0, size - b.length)), b]).subarray(-size);
      const rs = Buffer.concat([pad(r.tpm2b()), pad(r.tpm2b())]);
      return crypto.verify('sha256', data, { key, dsaEncoding: 'ieee-p1363' }, rs);
    }
    if (alg === ALG.RSASSA) return crypto.verify('sha256', data, key, r.tpm2b());
    return false;
  } catch {
    return false;
  }
}

/** Finds a path from `leaf` to a self-signed certificate inside `trusted`; returns the names on it, or undefined. */
export function chainToTrusted(leaf: X509Certificate, trusted: X509Certificate[], now = Date.now()): string[] | undefined {
  const path: string[] = [];
  let cur = leaf;
  for (let depth = 0; depth < 6; depth++) {
    const issuer = trusted.find((c) => cur.checkIssued(c) && cur.verify(c.publicKey));
    if (!issuer) return undefined;
    if (now < Date.parse(issuer.validFrom) || now > Date.parse(issuer.validTo)) return undefined;
    path.push(issuer.subject.replace(/\n/g, ', '));
    if (issuer.checkIssued(issuer) && issuer.verify(issuer.publicKey)) return path;
    cur = issuer;
  }
  return undefined;
}

interface Challenge {
  nonce: Buffer;
  secret: Buffer;
  ak: TpmPublic;
  akName: Buffer;
  ekSubject: string;
  /** SHA-256 of the EK certificate: challenges are counted per EK. */
  ekId: string;
  expires: number;
  used: boolean;
}

export interface VerifiedAttestation {
  /** What the org records: the EK's issuer and the attested key's TPM attributes. */
  ekIssuer: string;
  attributes: string[];
}

export interface AttestationOptions {
  /** TPM vendor CA certificates (roots and intermediates, PEM) an EK certificate must chain to. */
  trustedEkCaPem?: string[];
  /** How long a challenge (its nonce) can be used, once. */
  challengeTtlMs?: number;
  /** Open (unanswered, unexpired) challenges one EK may hold at once: more is refused (a flood, or a stolen EK cert). */
  maxOpenChallengesPerEk?: number;
}

/** TCG EK Credential Profile: the extended key usage of an endorsement key certificate (tcg-kp-EKCertificate). */
export const EK_CERTIFICATE_EKU = '2.23.133.8.1';

/** Challenges issued and their single use; the list of trusted TPM vendor CAs is public so tests can set it. */
export class AttestationVerifier {
  trustedEkCaPem: string[];
  readonly challengeTtlMs: number;
  readonly maxOpenChallengesPerEk: number;
  private readonly challenges = new Map<string, Challenge>();

  constructor(opts: AttestationOptions = {}) {
    this.trustedEkCaPem = opts.trustedEkCaPem ?? [];
    this.challengeTtlMs = opts.challengeTtlMs ?? 5 * 60_000;
    this.maxOpenChallengesPerEk = opts.maxOpenChallengesPerEk ?? 5;
  }

  /** Round 1: the EK certificate and the AK. Throws AttestationRefused. */
  challenge(req: z.infer<typeof ChallengeRequestSchema>): { challengeId: string; nonce: string; credentialBlob: string; encryptedSecret: string } {
    let ek: X509Certificate;
    try {
      ek = new X509Certificate(Buffer.from(req.ekCert, 'base64'));
    } catch {
      throw new AttestationRefused('E0000_ATTESTATION_EK_UNTRUSTED', 'The endorsement key certificate cannot be parsed.');
    }
    // Only an end-entity EK certificate, for the EK's purpose, valid now: not a vendor CA (or any certificate) that chains.
    if (ek.ca) throw new AttestationRefused('E0000_ATTESTATION_EK_UNTRUSTED', 'The certificate sent as the endorsement key certificate is a CA certificate, not an EK certificate.');
    if (!(ek.keyUsage ?? []).includes(EK_CERTIFICATE_EKU)) {
      throw new AttestationRefused('E0000_ATTESTATION_EK_UNTRUSTED', `The certificate sent as the endorsement key certificate lacks the EK extended key usage (${EK_CERTIFICATE_EKU}).`);
    }
    const now = Date.now();
    if (now < Date.parse(ek.validFrom) || now > Date.parse(ek.validTo)) {
      throw new AttestationRefused('E0000_ATTESTATION_EK_UNTRUSTED', `The endorsement key certificate is not valid now (valid ${ek.validFrom} to ${ek.validTo}).`);
    }
    const trusted = this.trustedEkCaPem.flatMap((p) => { try { return [new X509Certificate(p)]; } catch { return []; } });
    if (!chainToTrusted(ek, trusted)) {
      throw new AttestationRefused('E0000_ATTESTATION_EK_UNTRUSTED', `The TPM's endorsement key certificate (issued by ${ek.issuer.replace(/\n/g, ', ')}) does not chain to a TPM vendor CA this org trusts.`);
    }
    if (ek.publicKey.asymmetricKeyType !== 'rsa' || ek.publicKey.asymmetricKeyDetails?.modulusLength !== 2048) {
      throw new AttestationRefused('E0000_ATTESTATION_EK_UNTRUSTED', 'Only RSA 2048 endorsement keys are supported.');
    }
    const ak = parseTpmtPublic(Buffer.from(req.akPublic, 'base64'), 'attestation key');
    const need = TPMA.fixedTPM | TPMA.fixedParent | TPMA.sensitiveDataOrigin | TPMA.restricted | TPMA.sign;
    if ((ak.attributes & need) !== need || ak.attributes & TPMA.decrypt) {
      throw new AttestationRefused('E0000_ATTESTATION_AK_INVALID', 'The attestation key is not a restricted signing key that stays in its TPM (fixedTPM, fixedParent, sensitiveDataOrigin, restricted, sign).');
    }
    this.sweep();
    const ekId = ek.fingerprint256;
    const open = [...this.challenges.values()].filter((c) => c.ekId === ekId && !c.used && c.expires >= now).length;
    if (open >= this.maxOpenChallengesPerEk) {
      throw new AttestationRefused('E0000_ATTESTATION_TOO_MANY', `This TPM (endorsement key) already holds ${open} unanswered challenges; answer one or wait until they expire.`);
    }
    const akName = tpmName(ak.raw);
    const secret = crypto.randomBytes(32);
    const nonce = crypto.randomBytes(32);
    const { credentialBlob, encryptedSecret } = makeCredential(ek.publicKey, akName, secret);
    const challengeId = crypto.randomBytes(16).toString('hex');
    this.challenges.set(challengeId, { nonce, secret, ak, akName, ekSubject: ek.issuer.replace(/\n/g, ', '), ekId, expires: Date.now() + this.challengeTtlMs, used: false });
    return { challengeId, nonce: nonce.toString('base64'), credentialBlob: credentialBlob.toString('base64'), encryptedSecret: encryptedSecret.toString('base64') };
  }

  private sweep(): void {
    const now = Date.now();
    for (const [id, c] of this.challenges) if (c.expires < now - this.challengeTtlMs) this.challenges.delete(id);
    while (this.challenges.size >= 10_000) this.challenges.delete(this.challenges.keys().next().value!);
  }

  /** Round 2: the evidence for the key in the CSR (its DER SubjectPublicKeyInfo). Throws AttestationRefused. */
  verify(ev: Evidence, csrSpki: Buffer): VerifiedAttestation {
    const c = this.challenges.get(ev.challengeId);
    if (!c) throw new AttestationRefused('E0000_ATTESTATION_NONCE', 'The attestation answers a challenge this org did not issue (or no longer remembers).');
    if (c.used) throw new AttestationRefused('E0000_ATTESTATION_REPLAYED', 'The attestation answers a challenge that was already used (a replay).');
    c.used = true;
    if (Date.now() > c.expires) throw new AttestationRefused('E0000_ATTESTATION_NONCE', 'The attestation challenge expired before it was answered.');
    const secret = Buffer.from(ev.secret, 'base64');
    if (secret.length !== c.secret.length || !crypto.timingSafeEqual(secret, c.secret)) {
      throw new AttestationRefused('E0000_ATTESTATION_AK_NOT_BOUND', 'The attestation key is not bound to the endorsement key: the credential was not activated by the TPM that holds it.');
    }
    const attestRaw = Buffer.from(ev.certifyInfo, 'base64');
    if (!verifyTpmSignature(c.ak.key, attestRaw, Buffer.from(ev.signature, 'base64'))) {
      throw new AttestationRefused('E0000_ATTESTATION_SIGNATURE', 'The TPM2_Certify signature does not verify with the attestation key.');
    }
    const info = parseCertifyInfo(attestRaw);
    if (info.magic !== TPM_GENERATED_VALUE || info.type !== TPM_ST_ATTEST_CERTIFY) {
      throw new AttestationRefused('E0000_ATTESTATION_MALFORMED', 'The signed structure is not a TPM-generated certification (TPM_GENERATED_VALUE, TPM_ST_ATTEST_CERTIFY).');
    }
    if (!info.extraData.equals(c.nonce)) throw new AttestationRefused('E0000_ATTESTATION_NONCE', "The certification does not carry this challenge's nonce.");
    const tpmt = Buffer.from(ev.tpmtPublic, 'base64');
    const key = parseTpmtPublic(tpmt, 'device key TPMT_PUBLIC');
    if (!info.name.equals(tpmName(key.raw))) {
      throw new AttestationRefused('E0000_ATTESTATION_NAME_MISMATCH', 'The certified object is not the key described by the TPMT_PUBLIC sent (name mismatch).');
    }
    const need = TPMA.fixedTPM | TPMA.fixedParent | TPMA.sensitiveDataOrigin;
    if ((key.attributes & need) !== need) {
      throw new AttestationRefused('E0000_ATTESTATION_KEY_NOT_FIXED', 'The device key was not generated inside the TPM or can leave it (fixedTPM, fixedParent and sensitiveDataOrigin are required).');
    }
    const spki = key.key.export({ format: 'der', type: 'spki' });
    if (!spki.equals(csrSpki)) throw new AttestationRefused('E0000_ATTESTATION_KEY_MISMATCH', 'The attested TPM key is not the key in the certificate request.');
    const attributes = Object.entries(TPMA).filter(([, bit]) => key.attributes & bit).map(([n]) => n);
    return { ekIssuer: c.ekSubject, attributes };
  }
}
