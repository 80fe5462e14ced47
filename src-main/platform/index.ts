import path from 'node:path';
import type { IssuerFilter } from '../core/backends/types.js';
import type { Config } from '../core/config.js';
import { AgentError } from '../core/errors.js';
import { writeChromiumPolicies, type PolicyResult } from './browser-policy.js';
import { NssStore } from './nss.js';
import type { CertificateStore } from './types.js';

export interface Platform {
  name: NodeJS.Platform;
  store: CertificateStore;
  /** Makes the browsers present our certificate to the org's mTLS hosts without asking. */
  configureBrowsers(patterns: string[], issuer: string | IssuerFilter): PolicyResult;
}

/** The one place that picks the platform's implementations. */
export function createPlatform(config: Config, platform: NodeJS.Platform = process.platform): Platform {
  if (platform === 'linux') {
    return {
      name: platform,
      store: new NssStore(config.nssDbDir, path.join(config.stateDir, 'tmp')),
      configureBrowsers: (patterns, issuer) => writeChromiumPolicies(config.browserPolicyDirs, patterns, issuer),
    };
  }
  throw new AgentError('local', 'PLATFORM_UNSUPPORTED',
    `The certificate store for ${platform} is not implemented in this build (Windows and macOS stores are tracked work).`,
    'Use the Linux build, or follow the project for Windows/macOS support.');
}
