import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { ensurePrivateDir, writeFileAtomic } from '../../base/fsutil.js';

const line = z.string().max(1000);

/** One check's result as stored and shown (platform/posture/types.ts PostureResult, plus where it came from). */
export const PostureResultSchema = z.object({
  check: z.string().regex(/^(disk-encryption|firewall|screen-lock|os-version|secure-boot|endpoint-protection|admin:[\w.-]{1,64})$/),
  title: z.string().max(200),
  status: z.enum(['PASS', 'FAIL', 'UNKNOWN']),
  summary: line,
  why: line.optional(),
  needsPrivilege: z.boolean().optional(),
  evidence: z.array(line).max(20),
  facts: z.record(z.string().max(64), z.union([z.string().max(300), z.number(), z.boolean()])).optional(),
  remedy: line.optional(),
  /** `device`: answered by the device side (root/SYSTEM) through the shared file. */
  source: z.enum(['user', 'device']).optional(),
  ms: z.number().optional(),
});
export type StoredPostureResult = z.infer<typeof PostureResultSchema>;

/** What the org answered to the last posture report (lab org: PROTOCOL §9). */
export const ComplianceSchema = z.object({
  status: z.enum(['compliant', 'non-compliant', 'not-evaluated']),
  mode: z.enum(['off', 'report-only', 'grace', 'enforce']),
  failing: z.array(z.object({ check: z.string().max(100), reason: z.string().max(500) })).max(50),
  deadline: z.string().max(40).optional(),
  message: z.string().max(500).optional(),
});
export type Compliance = z.infer<typeof ComplianceSchema>;

export const PostureFileSchema = z.object({
  version: z.literal(1),
  at: z.string(),
  task: z.enum(['user', 'device']),
  platform: z.string().max(20),
  results: z.array(PostureResultSchema).max(100),
  /** Hysteresis: the announced status per check, and a different status seen `count` times in a row. */
  confirmed: z.record(z.string(), z.enum(['PASS', 'FAIL', 'UNKNOWN'])).default({}),
  pending: z.record(z.string(), z.object({ status: z.enum(['PASS', 'FAIL', 'UNKNOWN']), count: z.number().int() })).default({}),
  /** The last report: when, delivered or not, for which certificate (SHA-256), and the org's answer. */
  report: z.object({ at: z.string(), ok: z.boolean(), error: z.string().max(500).optional(), certificate: z.string().max(64).optional(), compliance: ComplianceSchema.optional() }).optional(),
});
export type PostureFile = z.infer<typeof PostureFileSchema>;

export const POSTURE_FILE = 'posture.json';

export function readPostureFile(file: string): PostureFile | undefined {
  try {
    const parsed = PostureFileSchema.safeParse(JSON.parse(fs.readFileSync(file, 'utf8')));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The device side's shared file, trusted only when root wrote it where only root could: file and directory
 * owned by root and writable by nobody else (otherwise any local user could plant a PASS). Windows relies on
 * ProgramData's ACL (only SYSTEM/Administrators may write a directory the device side created).
 */
export function readSharedPostureFile(file: string): PostureFile | undefined {
  if (process.platform !== 'win32') {
    try {
      for (const p of [file, path.dirname(file)]) {
        const st = fs.statSync(p);
        if (st.uid !== 0 || (st.mode & 0o022) !== 0) return undefined;
      }
    } catch {
      return undefined;
    }
  }
  return readPostureFile(file);
}

/**
 * The user side's copy is owner-only; the device side's (the shared file) is world-readable (0644) in its
 * root-owned state directory, so every user can read what only root could see. Nothing in it is secret.
 */
export function writePostureFile(file: string, data: PostureFile, shared: boolean): void {
  const dir = path.dirname(file);
  if (shared) {
    fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
    if (process.platform !== 'win32') fs.chmodSync(dir, 0o755);
  }
  else ensurePrivateDir(dir);
  writeFileAtomic(file, JSON.stringify(data, null, 2) + '\n', shared ? 0o644 : 0o600);
}

/** For the fleet's Prometheus metrics: one row per check. */
export function postureMetrics(file: PostureFile | undefined): { check: string; status: 'PASS' | 'FAIL' | 'UNKNOWN' }[] {
  return (file?.results ?? []).map((r) => ({ check: r.check, status: r.status }));
}
