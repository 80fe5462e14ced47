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

/**
 * Plants what an earlier version left after a kill inside key generation: a key pair with the agent's label and
 * no CKA_ID (that version set the id only after C_GenerateKeyPair). Raw pkcs11js, none of the agent's code.
 */
export function plantUnidentifiedKey(nssDb: string, label: string): void {
  const library = SOFTOKN_LIBRARIES.find((l) => fs.existsSync(l))!;
  const p = loadPkcs11js();
  const mod = new p.PKCS11();
  mod.load(library);
  mod.C_Initialize({ libraryParameters: softoknParameters(nssDb) });
  try {
    const slot = mod.C_GetSlotList(true).find((s: Buffer) => /Certificate DB|Private Key/i.test(mod.C_GetTokenInfo(s).label))!;
    const session = mod.C_OpenSession(slot, p.CKF_RW_SESSION | p.CKF_SERIAL_SESSION);
    try {
      mod.C_Login(session, p.CKU_USER, '');
    } catch {
      /* already logged in / no PIN */
    }
    const common = [{ type: p.CKA_TOKEN, value: true }, { type: p.CKA_LABEL, value: label }];
    mod.C_GenerateKeyPair(session, { mechanism: p.CKM_EC_KEY_PAIR_GEN, parameter: null as never },
      [...common, { type: p.CKA_VERIFY, value: true }, { type: p.CKA_EC_PARAMS, value: Buffer.from('06082a8648ce3d030107', 'hex') }],
      [...common, { type: p.CKA_PRIVATE, value: true }, { type: p.CKA_SENSITIVE, value: true }, { type: p.CKA_EXTRACTABLE, value: false }, { type: p.CKA_SIGN, value: true }]);
    mod.C_CloseSession(session);
  } finally {
    mod.C_Finalize();
    mod.close();
  }
}
