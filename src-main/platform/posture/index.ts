import { runAdminCheck } from './admin-checks.js';
import { diskEncryption } from './disk-encryption.js';
import { endpointProtection } from './endpoint-protection.js';
import { firewall } from './firewall.js';
import { osVersion } from './os-version.js';
import { screenLock } from './screen-lock.js';
import { secureBoot } from './secure-boot.js';
import { result, type PostureCheck, type PostureContext, type PostureResult, type TimedResult } from './types.js';
import { monotonicMs } from '../../base/trace.js';

export * from './types.js';
export { machineContext } from './context.js';

export const POSTURE_CHECKS: PostureCheck[] = [diskEncryption, firewall, screenLock, osVersion, secureBoot, endpointProtection];

/** Runs every check (in parallel: each waits on its own tools); a check that throws is UNKNOWN, never a PASS. */
export async function runPostureChecks(ctx: PostureContext): Promise<TimedResult[]> {
  const timed = async (id: string, title: string, f: () => Promise<PostureResult>): Promise<TimedResult> => {
    const t0 = monotonicMs();
    let r: PostureResult;
    try {
      r = await f();
    } catch (e) {
      r = result({ check: id as PostureResult['check'], title, status: 'UNKNOWN', summary: `The ${title.toLowerCase()} check failed.`, why: `internal error: ${(e as Error).message}`, evidence: [] });
    }
    return { ...r, ms: Math.round((monotonicMs() - t0) * 10) / 10 };
  };
  return Promise.all([
    ...POSTURE_CHECKS.map((c) => timed(c.id, c.title, () => c.run(ctx))),
    ...ctx.options.adminChecks.map((s) => timed(`admin:${s.name}`, s.title ?? s.name, () => runAdminCheck(ctx, s))),
  ]);
}
