import { isAgentError, type AgentError } from '../../base/errors.js';
import { loadConfig, type LoadedConfig } from '../../core/config.js';
import type { Platform } from '../../platform/types.js';
import { redact } from '../../base/safe-text.js';
import { describeScheduleView } from '../../core/scheduler/view.js';
import { describeManaged } from '../../core/config.js';
import type { StatusReport } from '../../core/certificates/status.js';
import { describeDoctor, getDoctorStatus, statusExitCode, type DoctorStatus } from '../../core/fleet/doctor.js';
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
    // A doctor still reports every test it can run when the configuration files cannot be used: the
    // configuration test FAILs naming the file and setting, the others run on what the environment gives.
    let loaded: LoadedConfig;
    let configError: AgentError | undefined;
    let platform: Platform;
    try {
      loaded = ctx.config();
      platform = ctx.platform();
    } catch (e) {
      if (!isAgentError(e) || e.failure !== 'config') throw e;
      configError = e;
      loaded = loadConfig({ cli: ctx.settings, env: ctx.io.env, skipFiles: true });
      platform = ctx.context.platform(loaded.config);
    }
    const report = await getDoctorStatus(loaded, { check: Boolean(ctx.values.check), platform, context: ctx.context, ...(configError ? { configError } : {}) });
    if (ctx.json) ctx.io.out(JSON.stringify(report, null, 2));
    else ctx.io.out(describeStatus(report));
    // One fault, one exit code (base/errors.ts FAULT_CLASSES): interception 30, a PAC file or proxy
    // credentials this machine cannot use 78, a network that does not answer 20; a failed trust test 30.
    return statusExitCode(report);
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
