import { createPrivateKey, randomBytes, webcrypto, X509Certificate } from 'node:crypto';
import type * as Pkijs from 'pkijs';

/**
 * PKCS#12 (PFX) built in-process: Windows has no OpenSSL, and certutil / Import-PfxCertificate accept only a
 * PFX. The format is the one Windows 10 1709+ and OpenSSL 3 write by default: PBES2 (PBKDF2-SHA256,
 * AES-256-CBC) for the key and certificates, HMAC-SHA256 for integrity.
 */
// pkijs and asn1js are loaded when a PKCS#12 is built, not with the platform: `status` and `help` never need them.
let libs: Promise<{ asn1js: typeof import('asn1js'); pkijs: typeof Pkijs; engine: Pkijs.CryptoEngine }> | undefined;
function loadLibs() {
  // One after another (pkijs imports asn1js): concurrent import()s of a shared graph can fail to link on Node 20.
  libs ??= import('asn1js').then(async (asn1js) => [asn1js, await import('pkijs')] as const).then(([asn1js, pkijs]) => ({
    asn1js, pkijs, engine: new pkijs.CryptoEngine({ name: 'node', crypto: webcrypto as unknown as Pkijs.CryptoEngineParameters['crypto'] }),
  }));
  return libs;
}

const BAG_SHROUDED_KEY = '1.2.840.113549.1.12.10.1.2';
const BAG_CERT = '1.2.840.113549.1.12.10.1.3';
const ATTR_FRIENDLY_NAME = '1.2.840.113549.1.9.20';
const ATTR_LOCAL_KEY_ID = '1.2.840.113549.1.9.21';
const ITERATIONS = 10_000;

function derOf(pem: string): ArrayBuffer {
  const raw = new X509Certificate(pem).raw;
  return raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength) as ArrayBuffer;
}

function bytes(b: Buffer): ArrayBuffer {
  return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
}

export interface Pkcs12Input {
  keyPem: string;
  certPem: string;
  /** Issuing CA certificates, added so the importer can build the chain. */
  chainPem?: string[];
  friendlyName: string;
  password: string;
}

/**
 * A one-time password for a PKCS#12 that lives for a moment in a private directory. Hex: it goes on command lines
 * (`certutil -p`), where a base64url value that began with "-" (one in 64) would be read as an option.
 */
export function oneTimePassword(): string {
  return randomBytes(24).toString('hex');
}

export async function buildPkcs12(input: Pkcs12Input): Promise<Buffer> {
  const { asn1js, pkijs, engine } = await loadLibs();
  const pkcs8 = createPrivateKey(input.keyPem).export({ format: 'der', type: 'pkcs8' });
  const password = bytes(Buffer.from(input.password, 'utf8'));
  const localKeyId = bytes(randomBytes(20));
  const attrs = (withName: boolean) => [
    ...(withName ? [new pkijs.Attribute({ type: ATTR_FRIENDLY_NAME, values: [new asn1js.BmpString({ value: input.friendlyName })] })] : []),
    new pkijs.Attribute({ type: ATTR_LOCAL_KEY_ID, values: [new asn1js.OctetString({ valueHex: localKeyId })] }),
  ];
  const keyBag = new pkijs.PKCS8ShroudedKeyBag({ parsedValue: pkijs.PrivateKeyInfo.fromBER(bytes(pkcs8)) });
  const certBags = [
    new pkijs.SafeBag({ bagId: BAG_CERT, bagValue: new pkijs.CertBag({ parsedValue: pkijs.Certificate.fromBER(derOf(input.certPem)) }), bagAttributes: attrs(true) }),
    ...(input.chainPem ?? []).map((pem) => new pkijs.SafeBag({ bagId: BAG_CERT, bagValue: new pkijs.CertBag({ parsedValue: pkijs.Certificate.fromBER(derOf(pem)) }) })),
  ];
  const pfx = new pkijs.PFX({
    parsedValue: {
      integrityMode: 0,
      authenticatedSafe: new pkijs.AuthenticatedSafe({
        parsedValue: {
          safeContents: [
            { privacyMode: 0, value: new pkijs.SafeContents({ safeBags: [new pkijs.SafeBag({ bagId: BAG_SHROUDED_KEY, bagValue: keyBag, bagAttributes: attrs(true) })] }) },
            { privacyMode: 1, value: new pkijs.SafeContents({ safeBags: certBags }) },
          ],
        },
      }),
    },
  });
  const pbes2 = { password, contentEncryptionAlgorithm: { name: 'AES-CBC', length: 256 }, hmacHashAlgorithm: 'SHA-256', iterationCount: ITERATIONS };
  await keyBag.makeInternalValues(pbes2, engine);
  await pfx.parsedValue!.authenticatedSafe!.makeInternalValues({ safeContents: [{}, pbes2] }, engine);
  await pfx.makeInternalValues({ password, iterations: ITERATIONS, pbkdf2HashAlgorithm: 'SHA-256', hmacHashAlgorithm: 'SHA-256' }, engine);
  return Buffer.from(pfx.toSchema().toBER(false));
}
