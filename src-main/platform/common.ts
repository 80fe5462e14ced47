/**
 * What every OS's platform (linux.ts, win32.ts, darwin.ts) shares: how it is handed its command runner and
 * environment, where it works, the posture checks, and the shape of a platform whose browser setup is a writer.
 */
import path from 'node:path';
import { AgentError } from '../base/errors.js';
import { runCommand, type CommandRunner } from '../base/exec.js';
import { defaultPaths } from '../base/paths.js';
import { emptyResult, type PolicyResult } from './browser-policy.js';
import { policyModel } from './policy-model.js';
import { machineContext } from './posture/context.js';
import type { PostureChecks } from './posture/contract.js';
import type { CertificateStore, Platform, PlatformSettings } from './types.js';

export interface PlatformDeps {
  run?: CommandRunner;
  env?: NodeJS.ProcessEnv;
}

/** The posture checks, loaded when they first run (a command that runs none never loads them). */
export const POSTURE: PostureChecks = {
  context: machineContext,
  run: async (ctx) => (await import('./posture/index.js')).runPostureChecks(ctx),
};

/** What each OS's platform starts from: its command runner, environment, home and working directory. */
export function platformBasics(config: PlatformSettings, platform: NodeJS.Platform, deps: PlatformDeps) {
  const env = deps.env ?? process.env;
  if (config.exportPemDir && platform !== 'linux') {
    throw new AgentError('config', 'EXPORT_PEM_UNSUPPORTED', `exportPemDir is set, but on ${platform === 'win32' ? 'Windows' : 'macOS'} the device key is non-exportable by design, so no PEM copy can exist.`,
      'Remove exportPemDir; tools on this platform should use the certificate from the OS store.');
  }
  return { run: deps.run ?? runCommand, env, home: defaultPaths(env, platform).home, workDir: path.join(config.stateDir, 'tmp') };
}

/** Windows and macOS: the OS store plus a browser-setup writer; there are no per-user certificate copies to sync. */
export function withBrowserSetup(
  name: NodeJS.Platform,
  store: CertificateStore,
  browsers: { apply(m: ReturnType<typeof policyModel>): Promise<PolicyResult>; remove(issuer: string): Promise<PolicyResult> },
): Platform {
  return {
    name,
    store,
    posture: POSTURE,
    configureBrowsers: (patterns, issuer) => browsers.apply(policyModel(patterns, issuer)),
    removeBrowserSetup: (issuerCN) => browsers.remove(issuerCN),
    syncCertificateCopies: async () => emptyResult(),
  };
}
