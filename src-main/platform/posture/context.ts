/**
 * This machine as the posture checks see it: kept apart from the checks (index.ts) so that a platform can hand it
 * out without loading them.
 */
import fs from 'node:fs';
import { postureRunner } from './runner.js';
import { DEFAULT_POSTURE_OPTIONS, type PostureContext, type PostureOptions } from './types.js';

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
