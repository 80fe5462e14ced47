import fs from 'node:fs';
import path from 'node:path';
import { POLICY_FILE, type IssuerFilter, type PolicyResult } from './types.js';
export type { PolicyResult } from './types.js';
import { writeFileAtomic } from '../base/fsutil.js';
import * as model from './policy-model.js';
import type { FirefoxPolicies } from './policy-model.js';

export { POLICY_FILE } from './types.js';
/** Firefox reads exactly one file of this name per directory, shared with the admin's other policies. */
export const FIREFOX_POLICY_FILE = 'policies.json';

/** Chromium-family `AutoSelectCertificateForUrls` entries (the model's, kept here for existing callers). */
export function autoSelectEntries(patterns: string[], issuer: string | IssuerFilter): string[] {
  return model.autoSelectEntries(model.policyModel(patterns, issuer));
}

export function emptyResult(): PolicyResult {
  return { written: [], skipped: [] };
}

export function mergeResults(...results: PolicyResult[]): PolicyResult {
  return { written: results.flatMap((r) => r.written), skipped: results.flatMap((r) => r.skipped) };
}

function reason(e: unknown): string {
  return (e as NodeJS.ErrnoException).code ?? (e as Error).message;
}

/** Writes the Chromium-family managed policy JSON into each directory (Linux layout). */
export function writeChromiumPolicies(dirs: string[], patterns: string[], issuer: string | IssuerFilter): PolicyResult {
  const body = model.chromiumPolicyJson(model.policyModel(patterns, issuer));
  const result = emptyResult();
  for (const dir of dirs) {
    const file = path.join(dir, POLICY_FILE);
    try {
      if (fs.existsSync(file) && fs.readFileSync(file, 'utf8') === body) {
        result.written.push(file);
        continue;
      }
      fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
      // Browsers run as the user and must read it; it holds no secret.
      writeFileAtomic(file, body, 0o644);
      result.written.push(file);
    } catch (e) {
      result.skipped.push({ dir, reason: reason(e) });
    }
  }
  return result;
}

/** Uninstall: our own policy file goes; the directories (shared with other policies) stay. */
export function removeChromiumPolicies(dirs: string[]): PolicyResult {
  const result = emptyResult();
  for (const dir of dirs) {
    const file = path.join(dir, POLICY_FILE);
    try {
      if (fs.existsSync(file)) {
        fs.rmSync(file);
        result.written.push(file);
      }
    } catch (e) {
      result.skipped.push({ dir, reason: reason(e) });
    }
  }
  return result;
}

function readPolicies(file: string): unknown {
  if (!fs.existsSync(file)) return undefined;
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    // Never overwrite an admin's file we cannot understand: Firefox would lose every policy in it.
    throw Object.assign(new Error(`the existing ${file} is not valid JSON (${(e as Error).message}); it was left as it is`), { code: 'EXISTING_FILE_INVALID' });
  }
}

/**
 * Firefox's `policies.json` in each directory: our leaves are merged into what is there (the admin may
 * have other policies in the same file), and the file is rewritten only when it changes.
 */
export function writeFirefoxPolicies(dirs: string[], ours: FirefoxPolicies): PolicyResult {
  const result = emptyResult();
  for (const dir of dirs) {
    const file = path.join(dir, FIREFOX_POLICY_FILE);
    try {
      const existing = readPolicies(file);
      // Nothing of ours to put in (Linux without the admin's opt-in): no file is created for it.
      if (existing === undefined && !ours.Certificates && Object.keys(ours.Preferences).length === 0) continue;
      const body = JSON.stringify(model.mergeFirefoxPolicies(existing, ours), null, 2) + '\n';
      if (existing === undefined || JSON.stringify(existing, null, 2) + '\n' !== body) {
        fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
        writeFileAtomic(file, body, 0o644);
      }
      result.written.push(file);
    } catch (e) {
      result.skipped.push({ dir, reason: (e as NodeJS.ErrnoException).code === 'EXISTING_FILE_INVALID' ? (e as Error).message : reason(e) });
    }
  }
  return result;
}

/** Uninstall: takes our leaves out again; a file left with no policies at all is removed. */
export function removeFirefoxPolicies(dirs: string[], ours: FirefoxPolicies): PolicyResult {
  const result = emptyResult();
  for (const dir of dirs) {
    const file = path.join(dir, FIREFOX_POLICY_FILE);
    try {
      const existing = readPolicies(file);
      if (existing === undefined) continue;
      const doc = model.unmergeFirefoxPolicies(existing, ours);
      const policies = doc.policies;
      const empty = Object.keys(doc).length === 1 && typeof policies === 'object' && policies !== null && Object.keys(policies).length === 0;
      if (empty) fs.rmSync(file);
      else writeFileAtomic(file, JSON.stringify(doc, null, 2) + '\n', 0o644);
      result.written.push(file);
    } catch (e) {
      result.skipped.push({ dir, reason: (e as NodeJS.ErrnoException).code === 'EXISTING_FILE_INVALID' ? (e as Error).message : reason(e) });
    }
  }
  return result;
}
