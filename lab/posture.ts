import { X509Certificate } from 'node:crypto';
import { decodeProtectedHeader, jwtVerify, type JWTPayload } from 'jose';
import { z } from 'zod';

/**
 * The lab org's device-assurance side (PROTOCOL §9): it takes signed posture reports, keeps the newest per
 * device, and judges them against a policy an admin rolls out in stages — report-only, a grace period with a
 * deadline, then enforce — which the mTLS check answer carries.
 */
export const PosturePolicySchema = z.strictObject({
  mode: z.enum(['off', 'report-only', 'grace', 'enforce']),
  /** Checks that must PASS (e.g. disk-encryption, firewall, screen-lock, secure-boot, endpoint-protection, os-version, admin:<name>). */
  require: z.array(z.string().regex(/^[\w:.-]{1,80}$/)).max(50),
  /** Minimum facts.osVersion per OS name as the agent reports it (dotted numbers), e.g. {"Debian GNU/Linux": "12"}. */
  minOsVersion: z.record(z.string().max(100), z.string().regex(/^\d+(\.\d+)*$/)),
  /** grace: until when a non-compliant device is still let in (ISO date-time); after it, enforce. */
  graceDeadline: z.string().datetime().nullable(),
  /** A report older than this counts as no report. */
  maxReportAgeSeconds: z.number().int().positive(),
});
export type PosturePolicy = z.infer<typeof PosturePolicySchema>;

export const DEFAULT_POSTURE_POLICY: PosturePolicy = { mode: 'off', require: [], minOsVersion: {}, graceDeadline: null, maxReportAgeSeconds: 24 * 3600 };

const ResultSchema = z.object({ check: z.string().max(100), status: z.enum(['PASS', 'FAIL', 'UNKNOWN']), summary: z.string().max(1000), why: z.string().max(1000).optional(), evidence: z.array(z.string().max(1000)).max(20), facts: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])).optional(),
  // Who observed it (PROTOCOL §10): the device side or the user side; unmarked is the user side. Kept as stored.
  source: z.enum(['device', 'user']).default('user') });
const ClaimsSchema = z.object({ device: z.string().min(1), iat: z.number(), exp: z.number(), posture: z.object({ checkedAt: z.string(), platform: z.string().max(20), results: z.array(ResultSchema).max(100) }) });
export type PostureClaims = z.infer<typeof ClaimsSchema>;
export const PostureReportRequest = z.object({ report: z.string().max(256 * 1024).regex(/^[\w-]+\.[\w-]+\.[\w-]+$/, 'not a compact JWS') });

export interface StoredReport {
  deviceId: string;
  serialNumber: string;
  receivedAt: string;
  claims: PostureClaims;
}

export interface Compliance {
  status: 'compliant' | 'non-compliant' | 'not-evaluated';
  mode: PosturePolicy['mode'];
  failing: { check: string; reason: string }[];
  deadline?: string;
  message?: string;
}

export class ReportRefused extends Error {}

function versionBelow(have: string, min: string): boolean {
  const a = have.split('.').map(Number);
  const b = min.split('.').map(Number);
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const x = a[i] ?? 0;
    const y = b[i] ?? 0;
    if (Number.isNaN(x)) return true;
    if (x !== y) return x < y;
  }
  return false;
}

export class PostureDesk {
  policy: PosturePolicy = { ...DEFAULT_POSTURE_POLICY };
  private readonly reports = new Map<string, StoredReport>();

  constructor(private readonly issuingCa: X509Certificate, private readonly isRevoked: (serial: string) => boolean, private readonly normalizeSerial: (s: string) => string, private readonly now: () => number = Date.now) {}

  /** Verifies a report like a renewal token: x5c issued by our CA, valid, not revoked; signed by its key; names its CN. */
  async accept(jws: string): Promise<StoredReport> {
    let x5c: unknown;
    try {
      x5c = decodeProtectedHeader(jws).x5c;
    } catch {
      throw new ReportRefused('has no readable header');
    }
    if (!Array.isArray(x5c) || typeof x5c[0] !== 'string') throw new ReportRefused('has no x5c device certificate');
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(Buffer.from(x5c[0], 'base64'));
    } catch {
      throw new ReportRefused('carries an x5c certificate that cannot be parsed');
    }
    if (!cert.checkIssued(this.issuingCa) || !cert.verify(this.issuingCa.publicKey)) throw new ReportRefused('is signed for a certificate this org did not issue');
    const serialNumber = this.normalizeSerial(cert.serialNumber);
    if (this.isRevoked(serialNumber)) throw new ReportRefused(`is signed for certificate ${serialNumber}, which is revoked`);
    const t = this.now();
    if (t < Date.parse(cert.validFrom) || t > Date.parse(cert.validTo)) throw new ReportRefused(`is signed for certificate ${serialNumber}, which is not valid now`);
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(jws, cert.publicKey, { algorithms: ['ES256', 'RS256'], typ: 'posture+jwt', requiredClaims: ['iat', 'exp'], clockTolerance: 300, currentDate: new Date(t) }));
    } catch (e) {
      throw new ReportRefused(`is not valid: ${(e as Error).message}`);
    }
    const claims = ClaimsSchema.safeParse(payload);
    if (!claims.success) throw new ReportRefused(`does not carry the posture claims: ${claims.error.issues[0]?.path.join('.')}`);
    const deviceId = /(?:^|\n)CN=([^\n]*)/.exec(cert.subject)?.[1] ?? '';
    if (claims.data.device !== deviceId) throw new ReportRefused(`names device ${claims.data.device}, but the certificate is for ${deviceId}`);
    const stored = { deviceId, serialNumber, receivedAt: new Date(t).toISOString(), claims: claims.data };
    this.reports.set(deviceId, stored);
    return stored;
  }

  latest(deviceId: string): StoredReport | undefined {
    return this.reports.get(deviceId);
  }

  all(): StoredReport[] {
    return [...this.reports.values()];
  }

  /** The policy's verdict for a device, from its newest report. */
  judge(deviceId: string): Compliance {
    const p = this.policy;
    if (p.mode === 'off') return { status: 'not-evaluated', mode: 'off', failing: [] };
    const failing: Compliance['failing'] = [];
    const rep = this.reports.get(deviceId);
    if (!rep) failing.push({ check: 'posture-report', reason: 'no posture report received from this device' });
    else if (this.now() - Date.parse(rep.receivedAt) > p.maxReportAgeSeconds * 1000) failing.push({ check: 'posture-report', reason: `the last posture report (${rep.receivedAt}) is too old` });
    else {
      const results = rep.claims.posture.results;
      for (const id of p.require) {
        const r = results.find((x) => x.check === id);
        if (!r) failing.push({ check: id, reason: 'not reported' });
        else if (r.status !== 'PASS') failing.push({ check: id, reason: `${r.status}: ${r.summary}` });
      }
      const os = results.find((x) => x.check === 'os-version')?.facts;
      const name = typeof os?.osName === 'string' ? os.osName : undefined;
      const min = name ? p.minOsVersion[name] : undefined;
      if (min && versionBelow(String(os?.osVersion ?? ''), min)) failing.push({ check: 'os-version', reason: `${name} ${String(os?.osVersion)} is older than the minimum ${min}` });
    }
    const deadline = p.mode === 'grace' && p.graceDeadline ? p.graceDeadline : undefined;
    if (!failing.length) return { status: 'compliant', mode: p.mode, failing };
    const message = p.mode === 'report-only' ? 'Reported to IT; access is not affected.' : p.mode === 'grace' ? (this.enforced() ? 'The grace period has ended; access is refused until fixed.' : `Fix by ${deadline ?? 'the deadline'} to keep access.`) : 'Access is refused until fixed.';
    return { status: 'non-compliant', mode: p.mode, failing, ...(deadline ? { deadline } : {}), message };
  }

  /** Whether non-compliance refuses access now: enforce, or a grace period that has ended. */
  enforced(): boolean {
    const p = this.policy;
    return p.mode === 'enforce' || (p.mode === 'grace' && p.graceDeadline !== null && this.now() > Date.parse(p.graceDeadline));
  }

  /** The mTLS check answer for a trusted certificate, with the device-assurance verdict folded in. */
  mtlsAnswer(answer: { trusted: true; deviceId: string; [k: string]: unknown }): Record<string, unknown> {
    const c = this.judge(answer.deviceId);
    if (c.status === 'not-evaluated') return answer;
    const checks = c.failing.map((f) => f.check);
    if (c.status === 'non-compliant' && this.enforced()) return { ...answer, trusted: false, reason: 'non-compliant', compliance: c, verdict: `not trusted, non-compliant: ${checks.join(', ')}` };
    return { ...answer, compliance: c, verdict: c.status === 'compliant' ? 'trusted' : `trusted, non-compliant: ${checks.join(', ')}` };
  }
}
