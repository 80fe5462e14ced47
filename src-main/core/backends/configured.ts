import type { LoadedConfig } from '../config.js';

/**
 * Whether the backend has what it needs to try at all (status shows NOT_CONFIGURED otherwise). In a module of
 * its own so `status` and the schedule view need not load the backends' HTTP, X.509 and SCEP code.
 */
export function backendConfigured(loaded: LoadedConfig): boolean {
  const c = loaded.config;
  return c.backend === 'scep' ? Boolean(c.scepUrl && c.scepCaFingerprint) : Boolean(c.orgUrl);
}
