import type { LoadedConfig } from '../config.js';
import { IdpBackend, type BackendDeps } from './idp.js';
import { ScepBackend } from './scep.js';
import type { EnrollmentBackend } from './types.js';

export type { Authority, EnrollmentBackend, IssuerFilter } from './types.js';
export { PENDING_CODE } from './types.js';

/** The one place that picks the enrollment backend, from the `backend` setting. */
export function createBackend(loaded: LoadedConfig, deps: Omit<BackendDeps, 'config'>): EnrollmentBackend {
  const config = loaded.config;
  return config.backend === 'scep' ? new ScepBackend({ ...deps, config }, loaded) : new IdpBackend({ ...deps, config }, loaded);
}

export { backendConfigured } from './configured.js';
