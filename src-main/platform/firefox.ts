import fs from 'node:fs';
import path from 'node:path';
import { ensurePrivateDir } from '../base/fsutil.js';
import { emptyResult, type PolicyResult } from './browser-policy.js';
import { SOFTOKN_LIBRARIES } from './linux-keys.js';
import { p11KitClientModule, startServerUnit, writeNssDbModuleConfig } from './p11kit-bridge.js';
import { LINUX_NAMES, systemdBooted } from './tasks/linux.js';
import { runCommand } from '../base/exec.js';
import { CLIENT_AUTH_FILE, rememberOrgCertificate } from './firefox-client-auth.js';

/**
 * Where Firefox keeps its profiles on Linux: the XDG location newer Firefox uses ($XDG_CONFIG_HOME/mozilla/firefox,
 * default ~/.config/mozilla/firefox), the classic ~/.mozilla/firefox, the snap and the flatpak.
 */
export function firefoxProfileRoots(home: string, env: NodeJS.ProcessEnv = {}): string[] {
  return [
    path.join(env.XDG_CONFIG_HOME || path.join(home, '.config'), 'mozilla', 'firefox'),
    path.join(home, '.mozilla', 'firefox'),
    path.join(home, 'snap', 'firefox', 'common', '.mozilla', 'firefox'),
    path.join(home, '.var', 'app', 'org.mozilla.firefox', '.mozilla', 'firefox'),
  ];
}

/** Profile directories listed in a profiles.ini ([ProfileN] sections: Path=, IsRelative=). */
export function parseProfilesIni(text: string, root: string): string[] {
  const out: string[] = [];
  let section = '';
  let entry: { path?: string; relative?: boolean } = {};
  const flush = () => {
    if (/^Profile\d+$/i.test(section) && entry.path) out.push(entry.relative === false ? entry.path : path.join(root, entry.path));
    entry = {};
  };
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    const s = /^\[(.+)\]$/.exec(line);
    if (s) {
      flush();
      section = s[1]!;
      continue;
    }
    const kv = /^([^=]+)=(.*)$/.exec(line);
    if (!kv) continue;
    if (kv[1] === 'Path') entry.path = kv[2]!;
    if (kv[1] === 'IsRelative') entry.relative = kv[2] !== '0';
  }
  flush();
  return [...new Set(out)];
}

export function findFirefoxProfiles(home: string, env: NodeJS.ProcessEnv = {}): string[] {
  return findFirefoxProfilesReport(home, env).profiles;
}

/** The profiles of every location, and the ones profiles.ini lists that do not exist (reported, not hidden). */
export function findFirefoxProfilesReport(home: string, env: NodeJS.ProcessEnv = {}): { profiles: string[]; missing: string[] } {
  const profiles: string[] = [];
  const missing: string[] = [];
  for (const root of firefoxProfileRoots(home, env)) {
    const ini = path.join(root, 'profiles.ini');
    if (!fs.existsSync(ini)) continue;
    for (const p of parseProfilesIni(fs.readFileSync(ini, 'utf8'), root)) (fs.existsSync(p) ? profiles : missing).push(p);
  }
  return { profiles: [...new Set(profiles)], missing };
}

/**
 * The origins Firefox remembers the device certificate for: the org's host patterns as exact origins (a
 * "[*.]" wildcard covers its base host only: Firefox remembers per host).
 */
export function firefoxOrigins(patterns: string[]): string[] {
  const out = new Set<string>();
  for (const p of patterns) {
    try {
      const u = new URL(p.replace('[*.]', '').replace('*.', ''));
      if (u.protocol === 'https:' && u.hostname) out.add(u.origin);
    } catch {
      /* not a URL pattern: nothing to remember */
    }
  }
  return [...out];
}

/** The PKCS#11 module that holds the device key, as an NSS module database (pkcs11.txt) entry. */
export interface BrowserModule {
  name: string;
  library: string;
}

/** Adds (once) an external module to an NSS database's pkcs11.txt; NSS reads it when the database is opened. */
export function registerModule(dbDir: string, module: BrowserModule): boolean {
  const file = path.join(dbDir, 'pkcs11.txt');
  let text = '';
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    /* a database without a module list yet: NSS adds its internal module itself */
  }
  if (text.split(/\r?\n/).some((l) => l.trim() === `library=${module.library}`)) return false;
  const entry = `library=${module.library}\nname=${module.name}\nNSS=trustOrder=100 cipherOrder=0\n`;
  fs.writeFileSync(file, (text && !text.endsWith('\n\n') ? text.replace(/\n?$/, '\n\n') : text) + entry, { mode: 0o600 });
  return true;
}

/**
 * Browsers reach the device key through the module that holds it, never through a copy: with a TPM, the
 * tpm2-pkcs11 module is registered in the user's NSS database (Chromium) and in every Firefox profile's module
 * list. With the NSS software token the key is in ~/.pki/nssdb itself, which Chromium reads; Firefox reads only
 * its profile's own database, so each profile loads p11-kit's client module instead, and `p11-kit server` (the
 * user unit device-trust-agent-p11-kit.service) serves the database's token to it (see p11kit-bridge.ts).
 */
export async function registerFirefoxModules(opts: {
  home: string;
  env?: NodeJS.ProcessEnv;
  keys: { info(): Promise<{ protection: string }>; browserModule(): BrowserModule | undefined; nssDbDir: string };
  /** Where p11-kit's client module and softokn are looked for (tests). */
  p11KitClient?: () => BrowserModule | undefined;
  /** The device certificate and the org's origins Firefox presents it to without asking (firefox-client-auth.ts). */
  orgCertificate?: { certPem: string; origins: string[] } | undefined;
}): Promise<PolicyResult> {
  const result = emptyResult();
  const found = findFirefoxProfilesReport(opts.home, opts.env ?? process.env);
  const profiles = found.profiles;
  for (const m of found.missing) result.skipped.push({ dir: m, reason: 'listed in profiles.ini but the directory does not exist' });
  let module = opts.keys.browserModule();
  if (module) {
    ensurePrivateDir(opts.keys.nssDbDir);
    registerModule(opts.keys.nssDbDir, module);
    result.written.push(path.join(opts.keys.nssDbDir, 'pkcs11.txt'));
  } else if (profiles.length > 0) {
    const client = (opts.p11KitClient ?? p11KitClientModule)();
    const softokn = SOFTOKN_LIBRARIES.find((p) => fs.existsSync(p));
    if (!client || !softokn) {
      const info = await opts.keys.info();
      const reason = `the device key is in the NSS software token of ${opts.keys.nssDbDir} (${info.protection}); Firefox reaches it through p11-kit, whose client module is not installed (Debian/Ubuntu: apt install p11-kit p11-kit-modules; Fedora: dnf install p11-kit-server)`;
      for (const profile of profiles) result.skipped.push({ dir: profile, reason });
      return result;
    }
    const written = writeNssDbModuleConfig(opts.env ?? process.env, softokn, opts.keys.nssDbDir);
    result.written.push(written.file);
    // The server unit waits for that file: start it now where a user manager runs (a failure only delays Firefox to the next login).
    if (written.changed && systemdBooted()) await runCommand(startServerUnit(LINUX_NAMES.userP11Kit)).catch(() => undefined);
    module = client;
  }
  for (const profile of profiles) {
    try {
      registerModule(profile, module!);
      result.written.push(path.join(profile, 'pkcs11.txt'));
      // The device certificate for the org's hosts only (not "Select Automatically" for every site).
      if (opts.orgCertificate?.origins.length) {
        rememberOrgCertificate(profile, opts.orgCertificate.origins, opts.orgCertificate.certPem);
        result.written.push(path.join(profile, CLIENT_AUTH_FILE));
      }
    } catch (e) {
      result.skipped.push({ dir: profile, reason: (e as Error).message });
    }
  }
  return result;
}
