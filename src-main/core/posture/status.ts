import path from 'node:path';
import type { Config } from '../config.js';
import { resolvePostureSettings } from './settings.js';
import { POSTURE_FILE, postureMetrics, readPostureFile, readSharedPostureFile, type Compliance } from './snapshot.js';

export interface PostureSection {
  at: string;
  pass: number;
  fail: number;
  unknown: number;
  /** Checks not passing: "firewall: FAIL — No firewall filters incoming traffic." */
  problems: { check: string; status: 'FAIL' | 'UNKNOWN'; summary: string; remedy?: string }[];
  compliance?: Compliance;
}

/** `status`'s posture section, from the user side's last pass (or the shared file when only the device side ran). */
export function postureSection(config: Config): { posture?: PostureSection } {
  const file = readPostureFile(path.join(config.stateDir, POSTURE_FILE)) ?? readSharedPostureFile(resolvePostureSettings(config.posture).deviceFile);
  if (!file) return {};
  const count = (s: string) => file.results.filter((r) => r.status === s).length;
  return {
    posture: {
      at: file.at, pass: count('PASS'), fail: count('FAIL'), unknown: count('UNKNOWN'),
      problems: file.results.filter((r) => r.status !== 'PASS').map((r) => ({ check: r.check, status: r.status as 'FAIL' | 'UNKNOWN', summary: r.summary, ...(r.remedy ? { remedy: r.remedy } : {}) })),
      ...(file.report?.compliance ? { compliance: file.report.compliance } : {}),
    },
  };
}

/**
 * For the fleet's Prometheus metrics: the last pass's results as `{check, status}` rows (the user side's file,
 * else the device side's shared file); empty before the first pass.
 */
export function postureMetricsOf(config: Config): { check: string; status: 'PASS' | 'FAIL' | 'UNKNOWN' }[] {
  return postureMetrics(readPostureFile(path.join(config.stateDir, POSTURE_FILE)) ?? readSharedPostureFile(resolvePostureSettings(config.posture).deviceFile));
}
