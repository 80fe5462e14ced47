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
  /** Unique per certificate, so an old and a new one can coexist during a swap. */
  label: string;
}

/** The user's personal certificate store: Linux NSS database, Windows CurrentUser\My, macOS login keychain. */
export interface CertificateStore {
  /** Human description for status output: which store, where. */
  readonly description: string;
  /** Certificates that have a private key in the store (personal certificates). */
  list(): Promise<StoredCertificate[]>;
  install(req: InstallRequest): Promise<StoredCertificate>;
  /** Removes the certificate and its private key. Removing one that is already gone is not an error. */
  remove(id: string): Promise<void>;
}
