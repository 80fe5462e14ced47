import type { PolicyResult } from './browser-policy.js';
import type { CertInfo } from '../base/certinfo.js';
import type { DeviceKeyStore } from './keystore.js';
import type { DeviceChannel } from './device-channel.js';
export type { DeviceKeyStore, KeyStoreInfo, StoreKey, KeyProtection, KeyAlgorithmName, SignHash, OwnKeyEntry } from './keystore.js';

/** Which issuer a browser's auto-select policy matches (Chromium's ISSUER filter). */
export interface IssuerFilter {
  CN?: string;
  O?: string;
  OU?: string;
}

/** What the platform needs from the configuration; the composition root passes the agent's config. */
export interface PlatformSettings {
  stateDir: string;
  skipTpm?: boolean | undefined;
  exportPemDir?: string | undefined;
  nssDbDir: string;
  browserPolicyDirs: string[];
  firefoxPolicyDirs: string[];
  /** Firefox (Linux): the global "Select Automatically" (an admin's opt-in) instead of per-host decisions. */
  firefoxSelectAutomatically?: boolean | undefined;
}

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

export interface Platform {
  name: NodeJS.Platform;
  store: CertificateStore;
  /**
   * Where device keys are made and used without ever leaving (see keystore.ts). Absent on a platform that does
   * not have one yet: the agent then makes a software key and hands the store its PEM (InstallRequest.keyPem).
   */
  keys?: DeviceKeyStore;
  /**
   * Makes the browsers present our certificate to the org's mTLS hosts without asking: machine-wide policy
   * (written where this process may: root/administrator) and the user's own part (Firefox profiles on Linux,
   * Safari's identity preference on macOS).
   */
  configureBrowsers(patterns: string[], issuer: string | IssuerFilter): Promise<PolicyResult>;
  /** Undoes configureBrowsers (uninstall): our entries only; others' policies stay. */
  removeBrowserSetup(issuerCN: string): Promise<PolicyResult>;
  /** Brings per-user copies of the certificate (Firefox profiles on Linux) in line with the store, e.g. after removal. */
  syncCertificateCopies(issuerCN: string): Promise<PolicyResult>;
  /**
   * The user side's way to the device side (docs/PROTOCOL.md §13), which alone uses the machine credentials.
   * Absent: this process uses them itself (a platform without a channel yet, test platforms).
   */
  deviceChannel?: DeviceChannel;
}

/** Builds the platform for a configuration: the composition roots pass `createPlatform`; the core never picks one. */
export type PlatformFactory = (settings: PlatformSettings) => Platform;
