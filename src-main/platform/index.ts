import path from 'node:path';

import { AgentError } from '../base/errors.js';
import { runCommand, type CommandRunner } from '../base/exec.js';
import { defaultPaths } from '../base/paths.js';
import { emptyResult, mergeResults, removeChromiumPolicies, removeFirefoxPolicies, writeChromiumPolicies, writeFirefoxPolicies, type PolicyResult } from './browser-policy.js';
import { MacBrowserSetup } from './darwin-browser.js';
import { MacDeviceCertificateStore, MacKeyStore } from './darwin-keys.js';
import { loginKeychain, MacKeychainStore } from './darwin-store.js';
import { firefoxOrigins, registerFirefoxModules } from './firefox.js';
import { removeNssDbModuleConfig } from './p11kit-bridge.js';
import { LinuxKeyStore, TPM2_PKCS11_LIBRARIES, tpmStoreDir } from './linux-keys.js';
import { NssStore } from './nss.js';
import { loadPkcs11js } from './pkcs11.js';
import { certificateExportingKeys, PemExportingStore } from './pem-export.js';
import { firefoxPolicies, policyModel } from './policy-model.js';
import type { CertificateStore, Platform, PlatformSettings, TpmFacts } from './types.js';
import { unixDeviceChannel } from './device-channel-unix.js';

import { machineContext, runPostureChecks } from './posture/index.js';

const POSTURE = { context: machineContext, run: runPostureChecks };
const LINUX_TPM: TpmFacts = { storeDir: (env, home) => tpmStoreDir({ home, env }), libraries: TPM2_PKCS11_LIBRARIES };

export type { Platform, PlatformFactory } from './types.js';
// What the composition roots hand the core besides the platform: managed configuration and the OS's log.
export { createManagedConfigReader } from './managed-config.js';
export { platformSink } from './event-sinks.js';
import { WindowsBrowserSetup } from './win32-browser.js';
import { WindowsCngKeyStore } from './win32-cng.js';
import { declaredAgentCommand } from '../base/self.js';
import { WindowsCertificateStore } from './win32-store.js';


export interface PlatformDeps {
  run?: CommandRunner;
  env?: NodeJS.ProcessEnv;
}

/** The headless program's `ps` folder (the shipped CNG scripts, issue 25.2), when this is the headless program. */
function cngScriptDir(): string | undefined {
  const script = declaredAgentCommand()?.[1];
  return script ? path.win32.join(path.win32.dirname(script), 'ps') : undefined;
}

/** The one place that picks the platform's implementations. */
export function createPlatform(config: PlatformSettings, platform: NodeJS.Platform = process.platform, deps: PlatformDeps = {}): Platform {
  const run = deps.run ?? runCommand;
  const env = deps.env ?? process.env;
  const home = defaultPaths(env, platform).home;
  const workDir = path.join(config.stateDir, 'tmp');
  if (config.exportPemDir && platform !== 'linux') {
    throw new AgentError('config', 'EXPORT_PEM_UNSUPPORTED', `exportPemDir is set, but on ${platform === 'win32' ? 'Windows' : 'macOS'} the device key is non-exportable by design, so no PEM copy can exist.`,
      'Remove exportPemDir; tools on this platform should use the certificate from the OS store.');
  }

  if (platform === 'win32') {
    const store = new WindowsCertificateStore({ skipTpm: config.skipTpm ?? false, workDir, run });
    // Keys are created in the TPM (Platform Crypto Provider), else the software KSP, and never leave it: no key.pem.
    const keys = new WindowsCngKeyStore({ skipTpm: config.skipTpm ?? false, workDir, run, certificates: store, ...(cngScriptDir() ? { scriptDir: cngScriptDir()! } : {}) });
    return { ...withBrowserSetup(platform, store, new WindowsBrowserSetup(run)), keys };
  }

  if (platform === 'darwin') {
    const store = new MacKeychainStore({ keychain: loginKeychain(home), workDir, agentPath: process.execPath, run });
    // Keys are created in the Secure Enclave (a CTK identity), else non-extractable in the login keychain: no key.pem.
    const keys = new MacKeyStore({ skipTpm: config.skipTpm ?? false, workDir, keychain: store, keychainPath: loginKeychain(home), run });
    const device = new MacDeviceCertificateStore(store, keys);
    return { ...withBrowserSetup(platform, device, new MacBrowserSetup({ run, store, identities: () => device.list(), stateDir: config.stateDir })), keys, ...unixDeviceChannel(platform, env) };
  }

  if (platform === 'linux' && !pkcs11Available()) {
    // Without the PKCS#11 binding (an install without its native part: `npm install --omit=optional`, no compiler),
    // the agent still works the way it did before the key stores: a software key, imported into the NSS database
    // with pk12util, and an owner-only key file that status reports as "key: file" with the fix.
    const nss = new NssStore(config.nssDbDir, workDir, run);
    return {
      name: platform,
      store: config.exportPemDir ? new PemExportingStore(nss, config.exportPemDir) : nss,
      tpm: LINUX_TPM,
      posture: POSTURE,
      configureBrowsers: async (patterns, issuer) =>
        mergeResults(writeChromiumPolicies(config.browserPolicyDirs, patterns, issuer), writeFirefoxPolicies(config.firefoxPolicyDirs, firefoxPolicies('linux'))),
      removeBrowserSetup: async () => mergeResults(removeChromiumPolicies(config.browserPolicyDirs), removeFirefoxPolicies(config.firefoxPolicyDirs, firefoxPolicies('linux'))),
      syncCertificateCopies: async () => emptyResult(),
      ...unixDeviceChannel(platform, env),
    };
  }

  if (platform === 'linux') {
    // Keys are made in a PKCS#11 token (TPM, else the NSS software token) and certificates filed beside them.
    const keys = new LinuxKeyStore({ nssDbDir: config.nssDbDir, home, skipTpm: config.skipTpm ?? false, env });
    const store = config.exportPemDir ? new PemExportingStore(keys, config.exportPemDir) : keys;
    // Firefox presents the device certificate to the org's hosts only: each profile remembers it for them.
    let orgOrigins: string[] = [];
    const orgCertificate = async (issuerCN: string) => {
      const certs = (await keys.list()).filter((c) => !issuerCN || c.info.issuerCN === issuerCN).sort((a, b) => Date.parse(b.info.notAfter) - Date.parse(a.info.notAfter));
      return certs[0] && orgOrigins.length ? { certPem: certs[0].pem, origins: orgOrigins } : undefined;
    };
    const syncProfiles = async (issuerCN: string) => registerFirefoxModules({ home, env, keys, orgCertificate: await orgCertificate(issuerCN).catch(() => undefined) });
    const ffPolicies = firefoxPolicies('linux', { selectAutomatically: config.firefoxSelectAutomatically === true });
    return {
      name: platform,
      store,
      tpm: LINUX_TPM,
      posture: POSTURE,
      keys: config.exportPemDir ? certificateExportingKeys(keys, config.exportPemDir) : keys,
      configureBrowsers: async (patterns, issuer) => {
        orgOrigins = firefoxOrigins(patterns);
        return mergeResults(
          writeChromiumPolicies(config.browserPolicyDirs, patterns, issuer),
          writeFirefoxPolicies(config.firefoxPolicyDirs, ffPolicies),
          await syncProfiles(typeof issuer === 'string' ? issuer : (issuer.CN ?? '')),
        );
      },
      removeBrowserSetup: async () => {
        removeNssDbModuleConfig(env);
        return mergeResults(removeChromiumPolicies(config.browserPolicyDirs), removeFirefoxPolicies(config.firefoxPolicyDirs, ffPolicies));
      },
      syncCertificateCopies: syncProfiles,
      ...unixDeviceChannel(platform, env),
    };
  }

  throw new AgentError('local', 'PLATFORM_UNSUPPORTED', `This agent has no certificate store for ${platform}.`,
    'Use it on Windows, macOS or Linux.');
}

/** Windows and macOS: the OS store plus a browser-setup writer; there are no per-user certificate copies to sync. */
function withBrowserSetup(
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

/** Whether the PKCS#11 binding (the optional native module pkcs11js) can be loaded here. */
function pkcs11Available(): boolean {
  try {
    loadPkcs11js();
    return true;
  } catch {
    return false;
  }
}
