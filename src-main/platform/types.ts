import type { CertInfo } from '../core/certificate.js';

/** One certificate with a private key in the OS store the browsers read. */
export interface StoredCertificate {
  /** Store-specific handle (NSS nickname, Windows thumbprint, keychain label). */
  id: string;
  pem: string;
  info: CertInfo;
}

export interface InstallRequest {
  certPem: string;
  /** Issuing CA certificates (not trust anchors): lets browsers build the chain. */
  chainPem: string[];
  keyPem: string;
  /** Preferred label; a store may file it under another (NSS shares one nickname per subject). */
  label: string;
}

/** The user's personal certificate store: Linux NSS database, Windows CurrentUser\My, macOS login keychain. */
export interface CertificateStore {
  /** Human description for status output: which store, where. */
  readonly description: string;
  /** Certificates that have a private key in the store (personal certificates). */
  list(): Promise<StoredCertificate[]>;
  install(req: InstallRequest): Promise<StoredCertificate>;
  /** Removes every certificate filed under `id`, with its private key. Already gone is not an error. */
  remove(id: string): Promise<void>;
}
