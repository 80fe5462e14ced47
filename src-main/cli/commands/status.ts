import { ExitCode } from '../../base/errors.js';
import { describeScheduleView } from '../../core/scheduler/view.js';
import { getStatus, type StatusReport } from '../../core/status.js';
import type { Command } from '../command.js';

export const statusCommand: Command = {
  name: 'status',
  summary: 'whether this device is trusted; --check also asks the org and the mTLS endpoint',
  usage: `device-trust-agent status [--check] [--json]
  --check   also check revocation with the org and present the certificate to the org's mTLS endpoint`,
  options: { check: { type: 'boolean' } },
  async run(ctx) {
    const report = await getStatus(ctx.config(), { check: Boolean(ctx.values.check), platform: ctx.platform() });
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

function describeStatus(r: StatusReport): string {
  const lines = [`${r.state}: ${r.summary}`, `  org:         ${r.orgUrl ?? '(not configured)'}`, `  device:      ${r.deviceId}`, `  store:       ${r.store}`];
  if (r.certificate) {
    lines.push(`  subject:     ${r.certificate.subject}`, `  issuer:      ${r.certificate.issuer}`, `  serial:      ${r.certificate.serialNumber}`,
      `  valid until: ${r.certificate.notAfter}`);
    if (r.certificate.renewFrom) lines.push(`  renews from: ${r.certificate.renewFrom}`);
  }
  if (r.certificatesInStore > 1) lines.push(`  note: ${r.certificatesInStore} device-trust certificates in the store; the next run keeps one.`);
  lines.push(...describeScheduleView(r.schedule));
  if (r.lastRun) lines.push(`  last run:    ${r.lastRun.at} ${r.lastRun.outcome}${r.lastRun.code ? ` (${r.lastRun.code})` : ''}: ${r.lastRun.message}`);
  for (const [name, c] of Object.entries(r.checks ?? {})) lines.push(`  check ${name}: ${c.ok ? 'ok' : 'FAILED'} — ${c.detail}`);
  return lines.join('\n');
}
