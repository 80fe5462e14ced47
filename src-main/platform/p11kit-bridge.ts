import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Command } from '../base/exec.js';
import type { BrowserModule } from './firefox.js';

/**
 * Firefox and a device key in the NSS software token, without a copy. Firefox opens only its profile's own NSS
 * database, and NSS cannot load the software token a second time as a module in the same process. p11-kit can
 * serve it from another process: `p11-kit server` opens the user's database (~/.pki/nssdb) through softokn with
 * the same parameters the agent uses, and listens on the user's runtime socket ($XDG_RUNTIME_DIR/p11-kit/pkcs11,
 * owner-only); each Firefox profile loads p11-kit's client module, which reaches that socket by default. The key
 * stays in the one database; Firefox asks the server to sign.
 */
export const P11KIT_CLIENT_LIBRARIES = [
  '/usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-client.so', '/usr/lib/aarch64-linux-gnu/pkcs11/p11-kit-client.so',
  '/usr/lib64/pkcs11/p11-kit-client.so', '/usr/lib/pkcs11/p11-kit-client.so',
];

/** The module file p11-kit reads (user configuration: ~/.config/pkcs11/modules/). */
export const NSSDB_MODULE_FILE = 'device-trust-agent-nssdb.module';

/** What the server exports: the database's token (softokn's other slot holds no objects). */
export const NSSDB_TOKEN_URI = 'pkcs11:token=NSS%20Certificate%20DB';

export function p11KitClientModule(candidates = P11KIT_CLIENT_LIBRARIES): BrowserModule | undefined {
  const library = candidates.find((p) => fs.existsSync(p));
  return library ? { name: 'Device Trust (NSS database via p11-kit)', library } : undefined;
}

/** p11-kit's per-user module directory. (p11-kit ignores it for root, which then needs /etc/pkcs11/modules.) */
export function p11KitUserModuleDir(env: NodeJS.ProcessEnv): string {
  return path.join(env.XDG_CONFIG_HOME || path.join(env.HOME || os.homedir(), '.config'), 'pkcs11', 'modules');
}

/**
 * The module configuration: softokn on the user's database, read-only (Firefox may sign, never change the token),
 * kept out of p11-kit's proxy module (which many programs load). (`enable-in` cannot name the server: p11-kit does
 * not see its program name as "p11-kit-server", and the module is then loaded nowhere.)
 */
export function nssDbModuleConfig(softokn: string, nssDbDir: string): string {
  return [
    '# Written by device-trust-agent: serves the device key in this NSS database to Firefox (p11-kit server).',
    `module: ${softokn}`,
    `x-init-reserved: configdir='sql:${nssDbDir}' certPrefix='' keyPrefix='' secmod='secmod.db' flags=readOnly`,
    'disable-in: p11-kit-proxy',
    '',
  ].join('\n');
}

/** Writes the module file when it differs; returns its path and whether it was (re)written. */
export function writeNssDbModuleConfig(env: NodeJS.ProcessEnv, softokn: string, nssDbDir: string): { file: string; changed: boolean } {
  const dir = p11KitUserModuleDir(env);
  const file = path.join(dir, NSSDB_MODULE_FILE);
  const text = nssDbModuleConfig(softokn, nssDbDir);
  let current: string | undefined;
  try {
    current = fs.readFileSync(file, 'utf8');
  } catch {
    /* not written yet */
  }
  if (current !== text) {
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(file, text, { mode: 0o644 });
  }
  return { file, changed: current !== text };
}

/**
 * The user unit's start command (it is enabled at install, but its condition — the module file — is only met once
 * a pass has set Firefox up): started then, so Firefox need not wait for the next login.
 */
export function startServerUnit(unit: string): Command {
  return { file: 'systemctl', args: ['--user', '--no-block', 'start', unit], timeoutMs: 5_000 };
}

export function removeNssDbModuleConfig(env: NodeJS.ProcessEnv): void {
  fs.rmSync(path.join(p11KitUserModuleDir(env), NSSDB_MODULE_FILE), { force: true });
}

/** The server's command line: in the foreground (systemd supervises it), on the socket the client module finds by default. */
export function p11KitServerArgs(socket: string): string[] {
  return ['server', '--foreground', '--name', socket, NSSDB_TOKEN_URI];
}
