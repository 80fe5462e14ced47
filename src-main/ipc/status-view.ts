import { redact } from '../base/safe-text.js';
import type { StatusReport } from '../core/certificates/status.js';
import type { DoctorSection } from '../core/fleet/doctor.js';
import type { Activity, StatusView, TrustState } from './contract.js';

const DAY_MS = 24 * 60 * 60 * 1000;

/**
 * The four states the tray icon and the dashboard header show. "attention" means a person must act
 * (revoked, key lost, not configured, rejected by the CA); "not-trusted" means no usable certificate yet,
 * which the agent fixes on its own once it can reach the org (or the CA approves a pending request).
 */
export function trustStateOf(state: StatusReport['state'], busy: Activity | null): TrustState {
  if (busy && busy !== 'diagnostics') return 'renewing';
  switch (state) {
    case 'ENROLLED':
    case 'RENEWAL_DUE':
      return 'trusted';
    case 'KEY_MISSING':
    case 'REVOKED':
    case 'NOT_CONFIGURED':
    case 'REJECTED': // the CA said no: a person must act
    case 'CLOCK_WRONG': // a person (or time synchronisation) fixes the clock
      return 'attention';
    default:
      return 'not-trusted';
  }
}

export function headlineOf(trust: TrustState, hasCertificate: boolean): string {
  switch (trust) {
    case 'trusted':
      return 'This device is trusted';
    case 'renewing':
      return hasCertificate ? 'Renewing the device certificate…' : 'Enrolling this device…';
    case 'attention':
      return 'This device needs attention';
    case 'not-trusted':
      return 'This device is not trusted yet';
  }
}

export function toStatusView(r: StatusReport & Partial<DoctorSection>, opts: { busy: Activity | null; deviceName: string; next?: { at: string; why: string } | undefined; now?: number }): StatusView {
  const now = opts.now ?? Date.now();
  const trust = trustStateOf(r.state, opts.busy);
  const c = r.certificate;
  return {
    trust,
    headline: headlineOf(trust, Boolean(c)),
    state: r.state,
    summary: r.summary,
    ...(r.orgUrl ? { orgUrl: r.orgUrl } : {}),
    deviceId: r.deviceId,
    deviceName: opts.deviceName,
    ...(c
      ? {
          certificate: {
            subject: c.subject,
            subjectCN: c.subjectCN,
            issuer: c.issuer,
            issuerCN: c.issuerCN,
            serialNumber: c.serialNumber,
            notBefore: c.notBefore,
            notAfter: c.notAfter,
            sha256: c.sha256,
            daysToExpiry: Math.floor((Date.parse(c.notAfter) - now) / DAY_MS),
            store: r.store,
          },
        }
      : {}),
    certificatesInStore: r.certificatesInStore,
    ...(r.keyProtection ? { keyProtection: { protection: r.keyProtection.protection, reason: redact(r.keyProtection.reason).slice(0, 300),
      ...(r.keyProtection.attested !== undefined ? { attested: r.keyProtection.attested } : {}),
      ...(r.keyProtection.attestation ? { attestation: redact(r.keyProtection.attestation).slice(0, 300) } : {}) } } : {}),
    ...(c?.renewFrom ? { plannedRenewal: c.renewFrom } : {}),
    ...(r.lastRun ? { lastRun: r.lastRun } : {}),
    busy: opts.busy,
    // The persisted schedule answers when no scheduler is hosted here (a daemon or a timer does the passes).
    ...(opts.next ? { nextRun: opts.next } : r.schedule?.nextAttempt ? { nextRun: { at: r.schedule.nextAttempt.at, why: `${r.schedule.nextAttempt.reason}: ${r.schedule.nextAttempt.why}`.slice(0, 300) } } : {}),
    ...(r.tests ? { tests: r.tests.map((t) => ({ name: t.name, title: t.title, result: t.result, evidence: t.evidence.slice(0, 1000) })) } : {}),
    ...(r.lastFailure ? { lastFailure: { ...r.lastFailure, message: r.lastFailure.message.slice(0, 2000) } } : {}),
  };
}
