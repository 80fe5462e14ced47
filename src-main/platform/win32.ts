/** Windows: keys in CNG (the TPM's Platform Crypto Provider, else the software KSP), certificates in CurrentUser\\My. */
import { platformBasics, withBrowserSetup, type PlatformDeps } from './common.js';
import path from 'node:path';
import { declaredAgentCommand } from '../base/self.js';
import { WindowsBrowserSetup } from './win32-browser.js';
import { WindowsCngKeyStore } from './win32-cng.js';
import { WindowsCertificateStore } from './win32-store.js';
import type { Platform, PlatformSettings } from './types.js';

/** The headless program's `ps` folder (the shipped CNG scripts, issue 25.2), when this is the headless program. */
function cngScriptDir(): string | undefined {
  const script = declaredAgentCommand()?.[1];
  return script ? path.win32.join(path.win32.dirname(script), 'ps') : undefined;
}

export function createWin32Platform(config: PlatformSettings, deps: PlatformDeps = {}): Platform {
  const platform = 'win32';
  const { run, workDir } = platformBasics(config, platform, deps);
  const store = new WindowsCertificateStore({ skipTpm: config.skipTpm ?? false, workDir, run });
  // Keys are created in the TPM (Platform Crypto Provider), else the software KSP, and never leave it: no key.pem.
  const keys = new WindowsCngKeyStore({ skipTpm: config.skipTpm ?? false, workDir, run, certificates: store, ...(cngScriptDir() ? { scriptDir: cngScriptDir()! } : {}) });
  return { ...withBrowserSetup(platform, store, new WindowsBrowserSetup(run)), keys };
}
