import fs from 'node:fs';
import path from 'node:path';
import type { IssuerFilter } from '../core/backends/types.js';
import { writeFileAtomic } from '../core/fsutil.js';

/** The policy file name we own in each managed-policy directory (removed again on uninstall). */
export const POLICY_FILE = 'device-trust-agent.json';

/**
 * Chrome/Edge/Chromium `AutoSelectCertificateForUrls`: each entry is a JSON string of
 * {"pattern": <content-settings pattern>, "filter": {"ISSUER": {"CN": <issuer CN>}}}. A CA without a common
 * name (some SCEP CAs) is matched by its O and OU instead, which the ISSUER filter also accepts.
 */
export function autoSelectEntries(patterns: string[], issuer: string | IssuerFilter): string[] {
  const filter = typeof issuer === 'string' ? { CN: issuer } : issuer;
  return patterns.map((pattern) => JSON.stringify({ pattern, filter: { ISSUER: filter } }));
}

export interface PolicyResult {
  written: string[];
  /** Directories we could not write (the user task is not root): the device task writes them. */
  skipped: { dir: string; reason: string }[];
}

/** Writes the Chromium-family managed policy JSON into each directory (Linux layout). */
export function writeChromiumPolicies(dirs: string[], patterns: string[], issuer: string | IssuerFilter): PolicyResult {
  const body = JSON.stringify({ AutoSelectCertificateForUrls: autoSelectEntries(patterns, issuer) }, null, 2) + '\n';
  const result: PolicyResult = { written: [], skipped: [] };
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
      result.skipped.push({ dir, reason: (e as NodeJS.ErrnoException).code ?? (e as Error).message });
    }
  }
  return result;
}
