import type { CertInfo } from '../base/certinfo.js';
import type { DeviceKeyStore } from './keystore.js';
import type { DeviceChannel } from './device-channel.js';
import type { PostureChecks } from './posture/contract.js';
export type { DeviceKeyStore, KeyStoreInfo, StoreKey, KeyProtection, KeyAlgorithmName, SignHash, OwnKeyEntry } from './keystore.js';

/** What a browser-setup step changed: files, registry keys, preference domains or profiles. */
export interface PolicyResult {
  written: string[];
  /** Targets we could not write (the user task is not root/admin; a profile is locked): the device task writes them. */
  skipped: { dir: string; reason: string }[];
}

/** The policy file name we own in each Chromium-family managed-policy directory (removed again on uninstall). */
export const POLICY_FILE = 'device-trust-agent.json';

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
  /** This OS's device posture checks (platform/posture). */
  posture: PostureChecks;
  /** Linux: the TPM token's facts for diagnostics (tpm2-pkcs11's store, where its module may be installed). */
  tpm?: TpmFacts;
  /** Brings per-user copies of the certificate (Firefox profiles on Linux) in line with the store, e.g. after removal. */
  syncCertificateCopies(issuerCN: string): Promise<PolicyResult>;
  /**
   * The user side's way to the device side (docs/PROTOCOL.md §13), which alone uses the machine credentials.
   * Absent: this process uses them itself (a platform without a channel yet, test platforms).
   */
  deviceChannel?: DeviceChannel;
}

export interface TpmFacts {
  storeDir(env: NodeJS.ProcessEnv, home: string): string;
  libraries: readonly string[];
}

/** What a platform log needs of an event (a subset of AgentEvent, so this file does not depend on the log). */
export interface SinkEvent {
  id: number;
  level: 'info' | 'warning' | 'error';
  title: string;
  message: string;
  time?: string;
  task?: string | undefined;
  data?: Record<string, unknown> | undefined;
  /** RFC 5424 structured data (SD-ID dta@32473), already redacted and bounded by the event log. */
  sd?: Record<string, string>;
}

/** Delivers an event to a log outside the agent; must never throw or block the task. */
export type EventSink = (e: SinkEvent) => void;

/** One place an admin deployed settings to, with the raw name/value pairs found there. */
export interface ManagedSource {
  /** Where it came from, shown by `--debug` and in errors (a file, a registry key, a preferences domain). */
  origin: string;
  values: Record<string, unknown>;
  /**
   * Names the agent does not know are skipped instead of refused: the registry key is shared with the original
   * registration task, which keeps values of its own there.
   */
  ignoreUnknown?: boolean;
}

/**
 * Managed configuration, read at run time. `read()` returns the sources lowest precedence first; later ones
 * win, and the whole of managed configuration ranks above the config file, the environment and the command line
 * (per setting: core/config.ts `loadConfig`).
 */
export interface ManagedConfigReader {
  readonly description: string;
  read(): ManagedSource[];
}

/** Builds the platform for a configuration: the composition roots pass this OS's (`loadPlatform`); the core never picks one. */
export type PlatformFactory = (settings: PlatformSettings) => Platform;
