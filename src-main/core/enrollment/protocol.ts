import { z } from 'zod';
import { serverText } from '../../base/safe-text.js';

/** Schemas of every server answer the agent uses (docs/PROTOCOL.md). Anything else is refused. */
const pem = z.string().max(64 * 1024).regex(/-----BEGIN CERTIFICATE-----[\s\S]+-----END CERTIFICATE-----/, 'not a PEM certificate');
const url = z.url({ protocol: /^https$/ });
/** Text a server sends that may reach a message: one line, no control characters, capped (base/safe-text.ts). */
const text = (max: number, min = 1) => z.string().min(min).max(max).transform((s) => serverText(s, max));

export const FailoverModeSchema = z.enum(['REDIRECT_TO_BACKUP', 'PRIMARY_ONLY', 'FIXED_URL']);
export type FailoverMode = z.infer<typeof FailoverModeSchema>;

export const OrgConfigSchema = z.object({
  orgId: z.string().min(1).max(200),
  orgName: text(200),
  lab: z.boolean().optional(),
  readOnly: z.boolean(),
  iwa: z.object({
    primary: url,
    backups: z.array(url).max(20),
    failoverMode: FailoverModeSchema,
  }),
  mtls: z.object({ url, hostPatterns: z.array(z.string().min(1).max(500)).max(50) }),
  ca: z.object({ issuerCN: text(200), chainPem: z.array(pem).min(1).max(10) }),
  crlUrl: url.optional(),
  certificate: z.object({
    validitySeconds: z.number().int().positive(),
    renewalWindowSeconds: z.number().int().nonnegative(),
  }),
  iwaJwksUrl: url.optional(),
  /**
   * The org's own TLS servers (PROTOCOL §1): SPKI SHA-256 pins (base64) of the CAs that issue the TLS certificates
   * of the org host and the mTLS host. A chain presented for those hosts with none of them is TLS interception,
   * even by a CA this machine trusts.
   */
  serverTls: z.object({ issuerSpkiSha256: z.array(z.string().regex(/^[A-Za-z0-9+/]{43}=$/, 'not a base64 SHA-256')).min(1).max(20) }).optional(),
});
export type OrgConfig = z.infer<typeof OrgConfigSchema>;

const jwt = z.string().min(10).max(16 * 1024).regex(/^[\w-]+\.[\w-]+\.[\w-]+$/, 'not a JWT');
export const DeviceTokenAnswerSchema = z.object({ deviceToken: jwt });
export const UserTokenAnswerSchema = z.object({ userToken: jwt });

export const IssuedAnswerSchema = z.object({
  certificate: pem,
  chainPem: z.array(pem).max(10).optional(),
  deviceId: z.string().max(200).optional(),
  serialNumber: z.string().max(200).optional(),
  /** The org verified the request's TPM attestation and recorded it in the certificate (PROTOCOL §11). */
  keyAttested: z.boolean().optional(),
});
export type IssuedAnswer = z.infer<typeof IssuedAnswerSchema>;

/**
 * An error answer: the code must look like a code (it becomes the agent's error code); the summary is any length
 * but is cut to SERVER_TEXT_MAX characters and cleaned where it enters.
 */
export const ErrorAnswerSchema = z.object({
  errorCode: z.string().regex(/^[A-Za-z0-9_.-]{1,100}$/),
  errorSummary: z.string().transform((s) => serverText(s)),
});

export const MtlsCheckAnswerSchema = z.object({
  trusted: z.boolean(),
  deviceId: z.string().max(200).optional(),
  serialNumber: z.string().max(200).optional(),
  subject: text(1000, 0).optional(),
  reason: text(200, 0).optional(),
  /** The certificate records a TPM-attested key (PROTOCOL §11). */
  keyAttested: z.boolean().optional(),
});
export type MtlsCheckAnswer = z.infer<typeof MtlsCheckAnswerSchema>;

/** Round 1 of TPM key attestation (PROTOCOL §11): the org's challenge for the EK and AK sent. */
const b64 = (max: number) => z.string().min(1).max(max).regex(/^[A-Za-z0-9+/]+={0,2}$/, 'not base64');
export const AttestationChallengeSchema = z.object({
  challengeId: z.string().regex(/^[0-9a-f]{32}$/, 'not a challenge id'),
  nonce: b64(200).refine((s) => Buffer.from(s, 'base64').length >= 16 && Buffer.from(s, 'base64').length <= 64, 'nonce of 16 to 64 bytes'),
  credentialBlob: b64(2048),
  encryptedSecret: b64(2048),
});
