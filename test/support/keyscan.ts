import fs from 'node:fs';
import path from 'node:path';
import { Pkcs11Token } from '../../src-main/platform/pkcs11.js';
import { SOFTOKN_LIBRARIES, softoknParameters } from '../../src-main/platform/linux-keys.js';
import { loadPkcs11js } from '../../src-main/platform/pkcs11.js';

/** Token databases: they hold keys only inside the token (NSS key4.db, tpm2-pkcs11's TPM-wrapped blobs). */
const TOKEN_FILES = new Set(['key4.db', 'tpm2_pkcs11.sqlite3']);

/** PKCS#8 / SEC1 markers a private key leaves in a file: PEM armour, or the DER prefix of an EC/RSA PKCS#8. */
const MARKERS = [
  Buffer.from('PRIVATE KEY-----'),
  Buffer.from('020100301306072a8648ce3d020106082a8648ce3d030107', 'hex'), // PKCS#8 v0 + id-ecPublicKey + P-256
  Buffer.from('020100300d06092a864886f70d0101010500', 'hex'), // PKCS#8 v0 + rsaEncryption
];

/** Every file under `dirs` (except token databases) that contains private-key material markers, or is a PKCS#12 bundle. */
export function filesWithPrivateKeys(dirs: string[]): string[] {
  const hits: string[] = [];
  const walk = (d: string) => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile() && !TOKEN_FILES.has(e.name)) {
        const buf = fs.readFileSync(p);
        if (MARKERS.some((m) => buf.includes(m)) || /\.(p12|pfx)$/.test(e.name)) hits.push(p);
      }
    }
  };
  for (const d of dirs) walk(d);
  return hits;
}

/** The private-key objects in an NSS database and what the token says about them (read through PKCS#11). */
export function nssPrivateKeyFacts(nssDb: string): { id: string; sensitive: boolean; extractable: boolean; valueReadable: boolean }[] {
  const library = SOFTOKN_LIBRARIES.find((l) => fs.existsSync(l))!;
  const p = loadPkcs11js();
  const token = new Pkcs11Token({ library, libraryParameters: softoknParameters(nssDb), protection: 'software', tag: 'nss' });
  token.open();
  try {
    return token.privateKeyFacts().map((f) => ({ ...f, valueReadable: f.valueReadable }));
  } finally {
    token.close();
    void p;
  }
}
