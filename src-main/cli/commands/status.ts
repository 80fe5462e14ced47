import { ExitCode } from '../../base/errors.js';
import { redact } from '../../core/redact.js';
import { describeScheduleView } from '../../core/scheduler/view.js';
import { describeManaged } from '../../core/config.js';
import type { StatusReport } from '../../core/status.js';
import { describeDoctor, getDoctorStatus, type DoctorStatus } from '../../core/fleet/doctor.js';
import type { Command } from '../command.js';

export const statusCommand: Command = {
  name: 'status',
  summary: 'whether this device is trusted, as named tests (PASS/FAIL/SKIPPED); --check also asks the network',
  usage: `device-trust-agent status [--check] [--json]
  Named tests with evidence (configuration, Kerberos tickets, certificate, key and a live signing test,
  browser policy, schedule) and the last failure's phase, codes and correlation ID.
  --check   also ask the org (and its IWA web app), check revocation and present the certificate to the
            org's mTLS endpoint
  --json    the same as JSON (schema "device-trust-agent/status", schemaVersion 1)`,
  options: { check: { type: 'boolean' } },
  async run(ctx) {
    const report = await getDoctorStatus(ctx.config(), { check: Boolean(ctx.values.check), platform: ctx.platform() });
    if (ctx.json) ctx.io.out(JSON.stringify(report, null, 2));
    else ctx.io.out(describeStatus(report));
    // A certificate the mTLS endpoint does not accept (or never sees: interception) is not a working device
    // trust; a check that could not be made (network, proxy) is "try again later".
    const checks = Object.values(report.checks ?? {});
    if ((report.checks?.mtls && !report.checks.mtls.ok) || checks.some((c) => !c.ok && 'code' in c && c.code === 'TLS_INTERCEPTED')) return ExitCode.NEEDS_ATTENTION;
    if (checks.some((c) => !c.ok)) return ExitCode.RETRY_LATER;
    return report.state === 'ENROLLED' || report.state === 'RENEWAL_DUE' ? ExitCode.OK : ExitCode.NEEDS_ATTENTION;
  },
};

function describeStatus(r: StatusReport & Partial<DoctorStatus>): string {
  const lines = [`${r.state}: ${r.summary}`, `  org:         ${r.orgUrl ?? '(not configured)'}`, `  device:      ${r.deviceId}`, `  store:       ${r.store}`];
  if (r.certificate) {
    lines.push(`  subject:     ${r.certificate.subject}`, `  issuer:      ${r.certificate.issuer}`, `  serial:      ${r.certificate.serialNumber}`,
      `  valid until: ${r.certificate.notAfter}`);
    if (r.certificate.renewFrom) lines.push(`  renews from: ${r.certificate.renewFrom}`);
  }
  if (r.keyProtection) lines.push(`  key:         ${r.keyProtection.label ?? r.keyProtection.protection} — ${r.keyProtection.reason} (${r.keyProtection.store})`);
  if (r.keyProtection?.attestation) lines.push(`  attestation: ${r.keyProtection.attested ? 'attested' : 'not attested'} — ${r.keyProtection.attestation}`);
  if (r.certificatesInStore > 1) lines.push(`  note: ${r.certificatesInStore} device-trust certificates in the store; the next run keeps one.`);
  if (r.configuration) lines.push(...describeManaged(r.configuration));
  lines.push(...describeScheduleView(r.schedule));
  if (r.lastRun) lines.push(`  last run:    ${r.lastRun.at} ${r.lastRun.outcome}${r.lastRun.code ? ` (${r.lastRun.code})` : ''}: ${r.lastRun.message}`);
  if (r.posture) {
    const p = r.posture;
    lines.push(`  posture:     ${p.pass} pass, ${p.fail} fail, ${p.unknown} unknown (${p.at}; details: device-trust-agent posture)`);
    for (const x of p.problems) lines.push(`    ${x.status} ${x.check}: ${x.summary}`);
    if (p.compliance) lines.push(redact(`    org: ${p.compliance.status} (${p.compliance.mode})${p.compliance.deadline ? `, deadline ${p.compliance.deadline}` : ''}`));
  }
  for (const [name, c] of Object.entries(r.checks ?? {})) lines.push(`  check ${name}: ${c.ok ? 'ok' : 'FAILED'} — ${c.detail}`);
  if (r.tests) lines.push(...describeDoctor(r as DoctorStatus));
  return lines.join('\n');
}
