import fs from 'node:fs';
import { postureRunner } from './runner.js';
import { runAdminCheck } from './admin-checks.js';
import { diskEncryption } from './disk-encryption.js';
import { endpointProtection } from './endpoint-protection.js';
import { firewall } from './firewall.js';
import { osVersion } from './os-version.js';
import { screenLock } from './screen-lock.js';
import { secureBoot } from './secure-boot.js';
import { DEFAULT_POSTURE_OPTIONS, result, type PostureCheck, type PostureContext, type PostureOptions, type PostureResult, type TimedResult } from './types.js';
import { monotonicMs } from '../../base/trace.js';

export * from './types.js';

export const POSTURE_CHECKS: PostureCheck[] = [diskEncryption, firewall, screenLock, osVersion, secureBoot, endpointProtection];

function processNames(): string[] {
  try {
    return fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p)).flatMap((p) => {
      try {
        return [fs.readFileSync(`/proc/${p}/comm`, 'utf8').trim()];
      } catch {
        return [];
      }
    });
  } catch {
    return [];
  }
}

/** This machine, as the checks see it. */
export function machineContext(opts: Partial<PostureOptions> = {}, overrides: Partial<PostureContext> = {}): PostureContext {
  return {
    platform: process.platform,
    // Absolute tools from the allow-list, a fixed environment: the user's PATH and environment change no fact.
    run: postureRunner(process.platform, process.env),
    readFile: (f) => { try { return fs.readFileSync(f, 'utf8'); } catch { return undefined; } },
    readBytes: (f) => { try { return fs.readFileSync(f); } catch { return undefined; } },
    exists: (f) => fs.existsSync(f),
    mtime: (f) => { try { return fs.statSync(f).mtime; } catch { return undefined; } },
    processes: processNames,
    env: process.env,
    privileged: typeof process.getuid === 'function' ? process.getuid() === 0 : false,
    now: new Date(),
    options: { ...DEFAULT_POSTURE_OPTIONS, ...opts },
    ...overrides,
  };
}


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
