import path from 'node:path';
import type { LoadedConfig } from '../core/config.js';
import { runPosturePass } from '../core/posture/pass.js';
import { POSTURE_FILE, readPostureFile, type PostureFile } from '../core/posture/snapshot.js';
import { redact } from '../base/safe-text.js';
import type { AgentContext } from '../core/context.js';
import type { PostureView } from './contract.js';

/** The Posture card's view of a posture file: the user-facing fields only (facts and timings stay in main). */
export function toPostureView(file: PostureFile): PostureView {
  const rep = file.report;
  return {
    at: file.at,
    results: file.results.map((r) => ({
      check: r.check, title: r.title, status: r.status, summary: redact(r.summary), evidence: r.evidence.map((e) => redact(e)),
      ...(r.why ? { why: redact(r.why) } : {}), ...(r.remedy ? { remedy: redact(r.remedy) } : {}), ...(r.source ? { source: r.source } : {}),
    })),
    ...(rep?.compliance ? { compliance: { ...rep.compliance, failing: rep.compliance.failing.map((f) => ({ check: redact(f.check), reason: redact(f.reason) })), ...(rep.compliance.message ? { message: redact(rep.compliance.message) } : {}) } } : {}),
    ...(rep ? { report: { at: rep.at, ok: rep.ok, ...(rep.error ? { error: redact(rep.error) } : {}) } } : {}),
  };
}

export function lastPosture(loaded: LoadedConfig): PostureView | null {
  const file = readPostureFile(path.join(loaded.config.stateDir, POSTURE_FILE));
  return file ? toPostureView(file) : null;
}

export async function runPostureView(loaded: LoadedConfig, context: AgentContext): Promise<PostureView> {
  const r = await runPosturePass({ loaded, side: 'user', context });
  return toPostureView(r.file);
}
