import { X509Certificate } from 'node:crypto';
import { z } from 'zod';
import type { HttpClient } from '../net/http.js';
import type { LocalKey } from '../keys/keys.js';
import { ComplianceSchema, type Compliance, type PostureFile } from './snapshot.js';

/**
 * Signs for the device certificate. Today the software key in the agent's credential directory; the PKCS#11
 * key store provides the same shape (sign the bytes with the key behind the certificate, never exporting it).
 */
export interface DeviceSigner {
  algorithm: 'ES256' | 'RS256';
  certificatePem: string;
  /** JWS signature of `data`: ES256 as raw r‖s (IEEE P1363), RS256 as PKCS#1 v1.5. */
  sign(data: Uint8Array): Promise<Uint8Array>;
}

export function softwareSigner(key: LocalKey, certificatePem: string): DeviceSigner {
  const algorithm = key.algorithm === 'P-256' ? 'ES256' : 'RS256';
  return {
    algorithm,
    certificatePem,
    // The key signs itself (a token or the TPM; never read out): JWS format already.
    sign: async (data) => key.sign(Buffer.from(data)),
  };
}

export const POSTURE_REPORT_TYPE = 'posture+jwt';
export const POSTURE_REPORT_LIFETIME_S = 3600;

const b64u = (b: Uint8Array | string) => Buffer.from(b).toString('base64url');

/** The report's claims (PROTOCOL §9): the device, when, and each check's result without the user-facing remedy. */
export function postureClaims(file: PostureFile, deviceId: string, now: Date) {
  const iat = Math.floor(now.getTime() / 1000);
  return {
    device: deviceId,
    iat,
    exp: iat + POSTURE_REPORT_LIFETIME_S,
    posture: {
      checkedAt: file.at,
      platform: file.platform,
      results: file.results.map((r) => ({ check: r.check, status: r.status, summary: r.summary, ...(r.why ? { why: r.why } : {}), evidence: r.evidence, ...(r.facts ? { facts: r.facts } : {}), ...(r.source ? { source: r.source } : {}) })),
    },
  };
}

/** A compact JWS (RFC 7515) over the claims, with the device certificate in x5c. Built by hand so any signer fits. */
export async function signPostureReport(signer: DeviceSigner, claims: object): Promise<string> {
  const der = new X509Certificate(signer.certificatePem).raw.toString('base64');
  const input = `${b64u(JSON.stringify({ alg: signer.algorithm, typ: POSTURE_REPORT_TYPE, x5c: [der] }))}.${b64u(JSON.stringify(claims))}`;
  return `${input}.${b64u(await signer.sign(Buffer.from(input, 'ascii')))}`;
}

export const PostureAnswerSchema = z.object({ accepted: z.literal(true), receivedAt: z.string().max(40), compliance: ComplianceSchema });

export async function sendPostureReport(http: HttpClient, orgUrl: string, report: string): Promise<Compliance> {
  const { data } = await http.json(PostureAnswerSchema, { url: `${orgUrl.replace(/\/+$/, '')}/api/v1/device-trust/posture`, method: 'POST', json: { report }, what: 'the org' });
  return data.compliance;
}
