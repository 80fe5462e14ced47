import type { RunResult } from '../../core/enrollment/pass.js';
import { sideOf } from '../side-option.js';
import { AgentError, ExitCode, exitCodeForFault, worstExitCode } from '../../base/errors.js';
import { createPassEngine, passRunningError } from '../../core/scheduler/create-pass-engine.js';
import { Trace } from '../../base/trace.js';
import type { Command } from '../command.js';

export const runCommand: Command = {
  name: 'run',
  summary: 'one pass: enroll, renew, or nothing (the default command)',
  usage: `device-trust-agent run [--user | --device] [--forceRenewal] [--debug [--show-tokens]] [--json]
  --user          the user side (default): enrolls the logged-on user's certificate
  --device        the device side (root/SYSTEM): writes the machine-wide browser policy
  --forceRenewal  remove the current certificate and enroll afresh (fixes a revoked or corrupted
                  certificate, or a lost private key)
  --show-tokens   with --debug, print the device and user tokens (for support only)`,
  options: {
    user: { type: 'boolean' },
    device: { type: 'boolean' },
    forceRenewal: { type: 'boolean' },
    'force-renewal': { type: 'boolean' },
    'show-tokens': { type: 'boolean' },
  },
  async run(ctx) {
    const v = ctx.values;
    const side = sideOf(ctx);
    const trace = new Trace(ctx.debug ? ctx.io.err : undefined, Boolean(v['show-tokens']));
    // Under the state directory's lock, recorded in the schedule like any pass: a second concurrent pass
    // (the daemon, the UI, another run) is refused with "retry later" instead of racing this one.
    const loaded = ctx.config();
    const { engine } = createPassEngine({ loadConfig: () => loaded, context: ctx.context, stateDir: loaded.config.stateDir, side, trace: () => trace,
      force: Boolean(v.forceRenewal || v['force-renewal']), respectRenewalMoment: false });
    const res = await engine.attempt('manual');
    if (!res.ran) throw res.why === 'busy' ? passRunningError(res) : new AgentError('internal', 'INTERNAL', res.detail);
    if (res.error) throw res.error;
    const result = res.result!;
    if (ctx.json) ctx.io.out(JSON.stringify({ ok: true, ...result }, null, 2));
    else ctx.io.out(describeRun(result));
    if (ctx.debug) {
      ctx.io.err('Timings:');
      for (const s of trace.steps) ctx.io.err(`  ${s.ok ? '✓' : '✗'} ${s.name.padEnd(72)} ${s.ms.toFixed(1).padStart(8)} ms`);
    }
    // A fault found on the way (a TLS interceptor) decides the exit code, as it does for status --check,
    // proxy-check and diagnose (base/errors.ts FAULT_CLASSES).
    const done = result.outcome === 'nothing-to-do' ? ExitCode.NOTHING_TO_DO : ExitCode.OK;
    return worstExitCode([done, ...(result.faults ?? []).map((f) => exitCodeForFault(f.code, ExitCode.NEEDS_ATTENTION))]);
  },
};

function describeRun(r: RunResult): string {
  const lines = [r.message];
  if (r.certificate && r.outcome !== 'nothing-to-do') {
    lines.push(`  device:      ${r.deviceId}`, `  subject:     ${r.certificate.subject}`, `  issuer:      ${r.certificate.issuer}`,
      `  valid until: ${r.certificate.notAfter}`, `  stored in:   ${r.certificate.store} as "${r.certificate.storeId}"`);
  }
  for (const w of r.warnings) lines.push(`  warning: ${w}`);
  return lines.join('\n');
}
