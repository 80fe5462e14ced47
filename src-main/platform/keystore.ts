import type { StoredCertificate } from './types.js';
/** What the org answers to round 1 (validated by the caller's schema). */
export interface AttestationChallenge {
  challengeId: string;
  nonce: string;
  credentialBlob: string;
  encryptedSecret: string;
}

/** What the enrollment/renewal request carries (all base64 TPM structures). */
export interface KeyAttestationEvidence {
  challengeId: string;
  secret: string;
  tpmtPublic: string;
  certifyInfo: string;
  signature: string;
}

/** Round 1: the EK certificate and the new AK go to the org, which answers a challenge. */
export type AskChallenge = (req: { ekCert: string; akPublic: string }) => Promise<AttestationChallenge>;

/** Why attestation could not be made on this machine (enrollment goes on, unattested). */
export class AttestationUnavailable extends Error {
  constructor(readonly code: string, message: string) {
    super(message);
  }
}

/**
 * The device key lives in a key store that cannot hand it out: a PKCS#11 token on Linux (TPM 2.0 through
 * tpm2-pkcs11, else the NSS software token), the Platform Crypto Provider on Windows, the keychain / Secure
 * Enclave on macOS. The agent never sees the private key: it asks the store to generate one, to sign with it
 * (CSR, renewal token), to file the issued certificate beside it, and to remove both.
 *
 * Lifecycle: generate → sign(CSR) → [CA issues] → attach(certificate) → sign(renewal token)… → remove.
 */
export type KeyAlgorithmName = 'P-256' | 'RSA-2048';
/** Digest an RSA signature is made over (SCEP CAs may offer only SHA-1 or SHA-512); ECDSA is always SHA-256. */
export type SignHash = 'sha1' | 'sha256' | 'sha512';

/** One of the agent's keys in a store, for the orphan sweep (core/keys/orphan-keys.ts): never any private value. */
export interface OwnKeyEntry {
  id: string;
  label: string;
  /** A certificate is filed under the key's id. */
  hasCertificate: boolean;
}

/** How the key is protected, as `status` shows it. */
export type KeyProtection = 'tpm' | 'software';

export interface KeyStoreInfo {
  protection: KeyProtection;
  /** Why this store was chosen, e.g. "TPM 2.0 through tpm2-abrmd" or "no TPM (no /dev/tpmrm0, no tpm2-abrmd)", "SkipTPM=true". */
  reason: string;
  /** Human description: module and token. */
  description: string;
}

/** A key held by the store. */
export interface StoreKey {
  /** Store-specific handle, stable across runs (PKCS#11 CKA_ID as hex, CNG key name, keychain application label). */
  id: string;
  algorithm: KeyAlgorithmName;
  /** DER SubjectPublicKeyInfo: the agent builds CSRs, thumbprints and checks from it. */
  spki: Buffer;
  protection: KeyProtection;
}


export interface DeviceKeyStore {
  /** Which store and why: computed once per process (cheap to call again). */
  info(): Promise<KeyStoreInfo>;
  /** Creates a new non-extractable key inside the store. `label` is what the store shows (NSS nickname). */
  generate(algorithm: KeyAlgorithmName, label: string): Promise<StoreKey>;
  /** The key with this id, or undefined when the store no longer has it. */
  find(id: string): Promise<StoreKey | undefined>;
  /**
   * Signs `data` with the key: ECDSA P-256 over SHA-256 returning raw r‖s (64 bytes, the JWS/WebCrypto form),
   * RSA PKCS#1 v1.5 over SHA-256 (or `hash`, RSA only). The hash is taken by the store.
   */
  sign(id: string, data: Buffer, hash?: SignHash): Promise<Buffer>;
  /**
   * RSA keys only: PKCS#1 v1.5 decryption inside the store (CKM_RSA_PKCS), returning the unpadded plaintext.
   * SCEP needs it: the CA encrypts its answer to the device key. A store without it keeps SCEP on a software key.
   */
  decrypt?(id: string, ciphertext: Buffer): Promise<Buffer>;
  /** The keys this agent made (label prefix `labelPrefix`) with whether a certificate is filed with each. */
  listOwnKeys?(labelPrefix: string): Promise<OwnKeyEntry[]>;
  /**
   * Why the keys this store already holds cannot be used on this machine, when it knows (a TPM token made by another
   * TPM, or by this one before it was cleared): code TPM_NOT_THIS_ONE and a sentence. Undefined when fine.
   */
  unusable?(): Promise<{ code: string; message: string } | undefined>;
  /** Sets such a store aside and starts a new one on this machine's TPM (a forced renewal then enrolls a new key). */
  replaceUnusable?(): Promise<string>;
  /** Removes our keys (label prefix) that have no id at all (earlier versions, killed mid-generation); how many. */
  removeUnidentifiedKeys?(labelPrefix: string): Promise<number>;
  /** Files the issued certificate (and its issuing CAs, no private data) beside its key, where browsers find the pair. */
  attach(id: string, req: { certPem: string; chainPem: string[]; label: string }): Promise<StoredCertificate>;
  /** The key id behind a certificate-store entry (StoredCertificate.id) when that key is in this store. */
  keyIdOf(storeId: string): string | undefined;
  /** Removes the key and every certificate filed with it. Already gone is not an error. */
  remove(id: string): Promise<void>;
  /**
   * Proof that the key is TPM-resident (docs/PROTOCOL.md §11), for stores that can give it: `ask` takes the EK
   * certificate and a fresh AK to the org and returns its challenge. Throws AttestationUnavailable (platform/tpm-attest.ts)
   * with the reason when this machine cannot attest (no TPM key, python3-tpm2-pytss missing, no EK certificate).
   */
  attest?(id: string, ask: AskChallenge): Promise<KeyAttestationEvidence>;
  /**
   * How the agent's own mTLS checks present this key (a child process: Node's TLS cannot use a token key);
   * undefined when the key is not in this store or this machine lacks the tools (the reason then).
   */
  tlsPresenter?(id: string): { presenter: TokenTlsPresenter } | { unavailable: string } | undefined;
  /** Releases the module (tests and short-lived commands). */
  close(): Promise<void>;
}

/** The agent's own TLS client for a key held in a token (platform/token-tls.ts implements it). */
/** One TLS connection presenting the token key; `stream` carries the plaintext. */
export interface TokenTlsConnection {
  stream: import('node:stream').Duplex;
  /** Why the handshake or the child failed (its last lines of output), once it has ended. */
  failure(): string | undefined;
  close(): Promise<void>;
}

export interface TokenTlsOpen {
  /** Where the child connects (a loopback relay of the agent's route to the server). */
  connect: { host: string; port: number };
  /** The server's name (SNI and the verified name). */
  serverName: string;
  certPem: string;
  chainPem?: string[];
  /** Trust anchors, PEM. */
  caPem: string[];
  deadlineMs: number;
}

export interface TokenTlsPresenter {
  description: string;
  open(o: TokenTlsOpen): Promise<TokenTlsConnection>;
}


