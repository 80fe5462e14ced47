import fs from 'node:fs';
import path from 'node:path';
import { ensurePrivateDir, writeFileAtomic } from '../../base/fsutil.js';
import type { DeviceKeyStore } from '../../platform/keystore.js';
// keys.js (with @peculiar/x509 and jose) is loaded only when a key is used: diagnose and status read these files
// without it, and start faster.
import type { LocalKey } from '../keys/keys.js';
import { privateKeyPem } from '../keys/key-pem.js';

/**
 * The agent's own record of each credential, one owner-only directory per key thumbprint: key-ref.json (which
 * key-store key it is: no private data), cert.pem, chain.pem. On platforms whose key store does not make keys
 * yet, and for installations made before the key stores, key.pem (0600) stands in for key-ref.json; it is
 * deleted when the next renewal moves the device to a key in the store.
 * A directory with a key but no certificate is a pending enrollment.
 */
export class CredentialFiles {
  readonly root: string;

  constructor(stateDir: string) {
    this.root = path.join(stateDir, 'credentials');
  }

  private dir(thumbprint: string): string {
    if (!/^[\w-]{20,}$/.test(thumbprint)) throw new Error(`invalid thumbprint ${thumbprint}`);
    return path.join(this.root, thumbprint);
  }

  writeKey(key: LocalKey): void {
    ensurePrivateDir(this.root);
    const dir = ensurePrivateDir(this.dir(key.thumbprint));
    writeFileAtomic(path.join(dir, 'key.pem'), privateKeyPem(key), 0o600);
  }

  /** Records which key-store key belongs to this thumbprint (written right after the key is made, before any request). */
  writeKeyRef(thumbprint: string, storeId: string): void {
    ensurePrivateDir(this.root);
    const dir = ensurePrivateDir(this.dir(thumbprint));
    writeFileAtomic(path.join(dir, 'key-ref.json'), JSON.stringify({ storeId }) + '\n', 0o600);
  }

  readKeyRef(thumbprint: string): string | undefined {
    try {
      const v = JSON.parse(fs.readFileSync(path.join(this.dir(thumbprint), 'key-ref.json'), 'utf8')) as { storeId?: unknown };
      return typeof v.storeId === 'string' && /^[\w:.-]{1,200}$/.test(v.storeId) ? v.storeId : undefined;
    } catch {
      return undefined;
    }
  }

  /** A key.pem from before the key stores (or a platform without one). */
  hasKeyFile(thumbprint: string): boolean {
    return this.readKeyPem(thumbprint) !== undefined;
  }

  writeCertificate(thumbprint: string, certPem: string, chainPem: string[]): void {
    const dir = this.dir(thumbprint);
    writeFileAtomic(path.join(dir, 'chain.pem'), chainPem.join('\n') + '\n', 0o644);
    writeFileAtomic(path.join(dir, 'cert.pem'), certPem.trim() + '\n', 0o644);
  }

  async readKey(thumbprint: string): Promise<LocalKey | undefined> {
    try {
      const pem = fs.readFileSync(path.join(this.dir(thumbprint), 'key.pem'), 'utf8');
      const { keyFromPem } = await import('../keys/keys.js');
      return await keyFromPem(pem);
    } catch {
      return undefined;
    }
  }

  readKeyPem(thumbprint: string): string | undefined {
    try {
      return fs.readFileSync(path.join(this.dir(thumbprint), 'key.pem'), 'utf8');
    } catch {
      return undefined;
    }
  }

  readCertificate(thumbprint: string): string | undefined {
    try {
      return fs.readFileSync(path.join(this.dir(thumbprint), 'cert.pem'), 'utf8');
    } catch {
      return undefined;
    }
  }

  /** Credentials with both a key (file or key-store reference) and a certificate, i.e. ones that could be (re)installed. */
  complete(): { thumbprint: string; certPem: string; chainPem: string[] }[] {
    const out = [];
    for (const thumbprint of this.list()) {
      const certPem = this.readCertificate(thumbprint);
      if (!certPem || (this.readKeyPem(thumbprint) === undefined && this.readKeyRef(thumbprint) === undefined)) continue;
      let chain = '';
      try {
        chain = fs.readFileSync(path.join(this.dir(thumbprint), 'chain.pem'), 'utf8');
      } catch {
        /* the chain only helps browsers build the path */
      }
      out.push({ thumbprint, certPem, chainPem: chain.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [] });
    }
    return out;
  }

  list(): string[] {
    try {
      return fs.readdirSync(this.root).filter((n) => !n.startsWith('.'));
    } catch {
      return [];
    }
  }

  remove(thumbprint: string): void {
    fs.rmSync(this.dir(thumbprint), { recursive: true, force: true });
  }
}

/**
 * A credential's device key, wherever it is kept: in the key store when the agent recorded a reference (or the
 * store knows the certificate), else a key file from an older version (or SCEP). Used by the pass, the doctor's
 * signing test and the posture report, so all three prove the same key.
 */
export async function loadDeviceKey(creds: CredentialFiles, keys: DeviceKeyStore | undefined, thumbprint: string, storeId?: string): Promise<LocalKey | undefined> {
  const ref = creds.readKeyRef(thumbprint) ?? (storeId ? keys?.keyIdOf(storeId) : undefined);
  if (ref && keys) {
    const sk = await keys.find(ref);
    if (sk) return (await import('../keys/keys.js')).keyInStore(keys, sk);
  }
  return creds.readKey(thumbprint);
}
