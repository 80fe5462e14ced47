import fs from 'node:fs';
import path from 'node:path';
import { describeCertificate, parseCertificate } from '../base/certinfo.js';
import { ensurePrivateDir, writeFileAtomic } from '../base/fsutil.js';
import type { CertificateStore, DeviceKeyStore, InstallRequest, StoredCertificate } from './types.js';

export const PEM_FILES = { cert: 'cert.pem', key: 'key.pem', chain: 'chain.pem' } as const;

/**
 * `exportPemDir`: besides the store, the current certificate, its issuing chain and its key as PEM files for
 * tools that cannot read the store (curl --cert/--key, VPN clients). The directory is 0700 and every file 0600,
 * rewritten atomically on every install and removed with the certificate.
 */
export class PemExportingStore implements CertificateStore {
  readonly description: string;

  constructor(private readonly inner: CertificateStore, private readonly dir: string) {
    this.description = `${inner.description}, with a PEM copy in ${dir}`;
  }

  list(): Promise<StoredCertificate[]> {
    return this.inner.list();
  }

  async install(req: InstallRequest): Promise<StoredCertificate> {
    const stored = await this.inner.install(req);
    ensurePrivateDir(this.dir);
    writeFileAtomic(path.join(this.dir, PEM_FILES.key), req.keyPem.trim() + '\n', 0o600);  // SCEP's software key only
    writeFileAtomic(path.join(this.dir, PEM_FILES.chain), req.chainPem.map((p) => p.trim()).join('\n') + '\n', 0o600);
    // The certificate last: a tool that sees the new cert.pem finds its key already in place.
    writeFileAtomic(path.join(this.dir, PEM_FILES.cert), req.certPem.trim() + '\n', 0o600);
    return stored;
  }

  async remove(id: string): Promise<void> {
    const removed = new Set((await this.inner.list()).filter((c) => c.id === id).map((c) => c.info.sha256));
    await this.inner.remove(id);
    const certFile = path.join(this.dir, PEM_FILES.cert);
    if (!fs.existsSync(certFile)) return;
    let sha: string | undefined;
    try {
      sha = describeCertificate(parseCertificate(fs.readFileSync(certFile, 'utf8'))).sha256;
    } catch {
      sha = undefined;
    }
    if (sha === undefined || removed.has(sha)) for (const f of Object.values(PEM_FILES)) fs.rmSync(path.join(this.dir, f), { force: true });
  }
}

/**
 * `exportPemDir` with a key in a key store: the certificate and its chain are written (0600, atomically) when
 * they are attached to the key; the key itself cannot be exported, so there is no key.pem (a stale one from
 * an earlier version is deleted). Tools that need the key use the PKCS#11 module (e.g. curl --cert 'pkcs11:…').
 */
export function certificateExportingKeys(keys: DeviceKeyStore, dir: string): DeviceKeyStore {
  return {
    info: () => keys.info(),
    generate: (a, l) => keys.generate(a, l),
    find: (id) => keys.find(id),
    sign: (id, d, h) => keys.sign(id, d, h),
    ...(keys.decrypt ? { decrypt: (id: string, c: Buffer) => keys.decrypt!(id, c) } : {}),
    ...(keys.listOwnKeys ? { listOwnKeys: (prefix: string) => keys.listOwnKeys!(prefix) } : {}),
    ...(keys.removeUnidentifiedKeys ? { removeUnidentifiedKeys: (prefix: string) => keys.removeUnidentifiedKeys!(prefix) } : {}),
    ...(keys.unusable ? { unusable: () => keys.unusable!() } : {}),
    ...(keys.replaceUnusable ? { replaceUnusable: () => keys.replaceUnusable!() } : {}),
    keyIdOf: (s) => keys.keyIdOf(s),
    remove: (id) => keys.remove(id),
    close: () => keys.close(),
    async attach(id, req) {
      const stored = await keys.attach(id, req);
      ensurePrivateDir(dir);
      fs.rmSync(path.join(dir, PEM_FILES.key), { force: true });
      writeFileAtomic(path.join(dir, PEM_FILES.chain), req.chainPem.map((p) => p.trim()).join('\n') + '\n', 0o600);
      writeFileAtomic(path.join(dir, PEM_FILES.cert), req.certPem.trim() + '\n', 0o600);
      return stored;
    },
  };
}
