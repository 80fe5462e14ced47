/**
 * Linux: keys made in a PKCS#11 token (the TPM through tpm2-pkcs11, else the NSS software token) with their
 * certificates beside them; Chromium-family and Firefox policies; the device side over a Unix socket.
 */
import { emptyResult, mergeResults, removeChromiumPolicies, removeFirefoxPolicies, writeChromiumPolicies, writeFirefoxPolicies } from './browser-policy.js';
import { platformBasics, POSTURE, type PlatformDeps } from './common.js';
import { unixDeviceChannel } from './device-channel-unix.js';
import { firefoxOrigins, registerFirefoxModules } from './firefox.js';
import { LinuxKeyStore, TPM2_PKCS11_LIBRARIES, tpmStoreDir } from './linux-keys.js';
import { NssStore } from './nss.js';
import { removeNssDbModuleConfig } from './p11kit-bridge.js';
import { certificateExportingKeys, PemExportingStore } from './pem-export.js';
import { loadPkcs11js } from './pkcs11.js';
import { firefoxPolicies } from './policy-model.js';
import type { Platform, PlatformSettings, TpmFacts } from './types.js';

const LINUX_TPM: TpmFacts = { storeDir: (env, home) => tpmStoreDir({ home, env }), libraries: TPM2_PKCS11_LIBRARIES };

export function createLinuxPlatform(config: PlatformSettings, deps: PlatformDeps = {}): Platform {
  const platform = 'linux';
  const { run, env, home, workDir } = platformBasics(config, platform, deps);
  if (!pkcs11Available()) {
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

/** Whether the PKCS#11 binding (the optional native module pkcs11js) can be loaded here. */
function pkcs11Available(): boolean {
  try {
    loadPkcs11js();
    return true;
  } catch {
    return false;
  }
}
