import type { CertInfo } from '../certificates/certificate.js';
import type { KeyAlgorithm, LocalKey } from '../keys/keys.js';
import type { KeyAttestationRecord } from '../keys/attestation.js';

/** Chromium's AutoSelectCertificateForUrls ISSUER filter: CN, or O/OU for a CA without a common name. */
export type { IssuerFilter } from '../../platform/types.js';
import type { IssuerFilter } from '../../platform/types.js';

/**
 * Everything the shared part of the agent (reconcile, checks, store, browser setup, renewal schedule) needs to
 * know about whoever issues the certificate. The identity-provider backend learns it from org discovery; the
 * SCEP backend from the pinned CA certificate (GetCACert) and the configuration.
 */
export interface Authority {
  /** For messages and the trace: "the org https://…", "the SCEP CA at http://…". */
  name: string;
  /** One line for the trace after discovery. */
  summary: string;
  /** CN of the issuing CA ('' when it has none). */
  issuerCN: string;
  issuerFilter: IssuerFilter;
  /** Which certificates in the store are ours (issued by this authority). */
  owns(info: CertInfo): boolean;
  /** CA certificates an issued certificate must chain to (fetched over verified TLS, or pinned). */
  chainPem: string[];
  /** A CA trusted because it is pinned (SCEP): issued certificates may chain to it without a root. */
  pinnedPem?: string | undefined;
  /** Browser URL patterns that should be given the certificate without asking. */
  hostPatterns: string[];
  /** Patterns the server sent that failed the host-pattern rules (core/certificates/host-patterns.ts): reported, never written. */
  refusedHostPatterns?: { pattern: string; reason: string }[];
  /** Where a browser presents the certificate (the IdP's mTLS endpoint), checked after install for interception. */
  mtlsUrl?: string | undefined;
  /** SPKI pins of the CAs issuing the org's own TLS certificates (discovery serverTls): other chains are interception. */
  serverTlsPins?: string[] | undefined;
  renewalWindowSeconds: number;
  /** The longest lifetime an issued certificate may have (plus LIFETIME_SLACK_SECONDS), and where that limit comes from. */
  maxValiditySeconds: number;
  lifetimeSource: string;
  crlUrl?: string | undefined;
  /** Enrollment is impossible for now (read-only org): retry later, change nothing. */
  readOnly: boolean;
}

export interface IssueRequest {
  /** The new key, generated on this machine (its private half never leaves it). */
  key: LocalKey;
  deviceId: string;
}

export interface RenewRequest extends IssueRequest {
  currentCertPem: string;
  currentKey: LocalKey;
}

export interface Issued {
  certificatePem: string;
  /** Whether the org verified a TPM attestation of the key, and why (not) (core/keys/attestation.ts). */
  attestation?: KeyAttestationRecord;
}

export type BackendKind = 'idp' | 'scep';

/** One way of getting a certificate issued. Chosen by the `backend` setting (backends/index.ts). */
export interface EnrollmentBackend {
  readonly kind: BackendKind;
  /** What the agent talks to, in words: "the org", "the SCEP CA". */
  readonly target: string;
  /** The key type this backend can use (SCEP needs RSA: the CA encrypts its answer to the key). */
  readonly keyAlgorithm: KeyAlgorithm;
  /**
   * A hash of the settings that decide whether a request can succeed (URL, challenge, pin…); a rejection is
   * held against the same settings only, so fixing the configuration lifts the hold at once.
   */
  readonly requestIdentity: string;
  /** The same settings' hash as an earlier version stored it (unkeyed): matched once, then rewritten. */
  readonly legacyRequestIdentity?: string;
  /** After a rejection, how long the agent waits before sending the same request again (0: no hold). */
  readonly holdAfterRejectionSeconds: number;
  /** Replaces org discovery: who issues, its CA chain, host patterns, renewal window. */
  authority(): Promise<Authority>;
  enroll(req: IssueRequest): Promise<Issued>;
  renew(req: RenewRequest): Promise<Issued>;
  /** Asks about a request the CA left pending in an earlier run (only backends whose CA can answer PENDING). */
  resume?(req: IssueRequest): Promise<Issued>;
}

/** The code every backend uses for "the CA is holding the request for approval": the agent keeps the key. */
export const PENDING_CODE = 'CA_PENDING';
