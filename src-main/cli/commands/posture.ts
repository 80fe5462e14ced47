import { ExitCode } from '../../base/errors.js';
import { redact } from '../../base/safe-text.js';
import { runPosturePass, type PosturePassResult } from '../../core/posture/pass.js';
import { deviceStateDir } from '../../core/posture/settings.js';
import type { StoredPostureResult } from '../../core/posture/snapshot.js';
import type { Command } from '../command.js';
import { sideOf } from '../side-option.js';

export const postureCommand: Command = {
  name: 'posture',
  summary: 'device posture: disk encryption, firewall, screen lock, updates, Secure Boot, endpoint protection',
  usage: `device-trust-agent posture [--report] [--device] [--json]
  --report   also sign the results with the device key and send them to the org now (PROTOCOL §9)
  --device   run as the device task (root/SYSTEM): answer what only root can see and write the shared
             posture file the user task reads (state directory: the device task's, unless given)
  Exit code 0 when no check fails, 30 when one fails or the org finds the device non-compliant.`,
  options: { report: { type: 'boolean' }, device: { type: 'boolean' }, user: { type: 'boolean' } },
  async run(ctx) {
    const side = sideOf(ctx);
    let loaded = ctx.config();
    // As the device task, the installed device task's state directory (and so the shared file) unless one is given.
    const devDir = deviceStateDir();
    if (side === 'device' && devDir && typeof ctx.values['state-dir'] !== 'string' && !ctx.settings.stateDir && !ctx.io.env.DTA_STATE_DIR) loaded = { ...loaded, config: { ...loaded.config, stateDir: devDir } };
    const r = await runPosturePass({ loaded, side, context: ctx.context, report: ctx.values.report ? 'always' : 'never' });
    if (ctx.json) ctx.io.out(JSON.stringify({ ...r.file, file: r.path, ...(r.reported ? { reported: r.reported } : {}) }, null, 2));
    else {
      ctx.io.out(describePosture(r));
      if (ctx.debug) for (const x of r.file.results) ctx.io.err(`  ${x.check}: ${x.ms ?? '?'} ms`);
    }
    const failing = r.file.results.some((x) => x.status === 'FAIL') || r.file.report?.compliance?.status === 'non-compliant';
    return failing ? ExitCode.NEEDS_ATTENTION : ExitCode.OK;
  },
};

const MARK: Record<StoredPostureResult['status'], string> = { PASS: 'PASS   ', FAIL: 'FAIL   ', UNKNOWN: 'UNKNOWN' };

/** The text form: one block per check, the fix under each one that is not passing. */
export function describePosture(r: Pick<PosturePassResult, 'file' | 'reported'>): string {
  const lines: string[] = [];
  const counts = { PASS: 0, FAIL: 0, UNKNOWN: 0 };
  for (const x of r.file.results) counts[x.status]++;
  lines.push(`Device posture (${r.file.task} task, ${r.file.at}): ${counts.PASS} pass, ${counts.FAIL} fail, ${counts.UNKNOWN} unknown`);
  for (const x of r.file.results) {
    lines.push(`  ${MARK[x.status]} ${x.title}: ${x.summary}${x.source === 'device' ? ' [device task]' : ''}`);
    if (x.why) lines.push(`          why: ${x.why}`);
    for (const e of x.evidence) lines.push(`          · ${e}`);
    if (x.remedy && x.status !== 'PASS') lines.push(`          what to do: ${x.remedy}`);
  }
  const rep = r.file.report;
  if (rep?.compliance) {
    const c = rep.compliance;
    // The org's words: through the one output-safety function before they reach the terminal.
    lines.push(redact(`  org (${rep.at}): ${c.status}, policy ${c.mode}${c.deadline ? `, deadline ${c.deadline}` : ''}${c.message ? ` — ${c.message}` : ''}`));
    for (const f of c.failing) lines.push(redact(`    ${f.check}: ${f.reason}`));
  }
  if (r.reported && !r.reported.ok) lines.push(`  report not delivered: ${r.reported.error ?? 'unknown error'}`);
  return lines.join('\n');
}
