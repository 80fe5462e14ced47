import { execFile, spawnSync } from 'node:child_process';

/** A platform command as data, so unit tests can assert the exact command line without running it. */
export interface Command {
  file: string;
  args: string[];
  env?: Record<string, string>;
  /** Written to the command's standard input. */
  input?: string;
  /** Kills the command after this long (default 60 s); a killed command answers code 124. */
  timeoutMs?: number;
  /** false: the command gets only `env` (posture tools: a fixed environment), not even the allow-listed one. */
  inheritEnv?: false;
}

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

export type CommandRunner = (cmd: Command) => Promise<CommandResult>;

/**
 * The environment every child process gets: only what tools need to find the user, the locale, the session,
 * Kerberos, the TPM and the PKCS#11 and NSS stores — never the agent's own settings (`DTA_HTTP_PROXY` with its
 * password, `DTA_SCEP_CHALLENGE`), the proxy variables, or whatever else the parent was started with. One list,
 * used by every place the agent starts a command. A command's own `env` is added on top.
 */
const CHILD_ENV_NAMES = new Set([
  'PATH', 'HOME', 'USER', 'LOGNAME', 'SHELL', 'LANG', 'LANGUAGE', 'TZ', 'TMPDIR', 'TEMP', 'TMP',
  'XDG_RUNTIME_DIR', 'XDG_CONFIG_HOME', 'XDG_DATA_HOME', 'XDG_STATE_HOME', 'XDG_CACHE_HOME', 'XDG_CURRENT_DESKTOP', 'XDG_SESSION_TYPE',
  'DBUS_SESSION_BUS_ADDRESS', 'DBUS_SYSTEM_BUS_ADDRESS', 'DISPLAY', 'WAYLAND_DISPLAY',
  'KRB5_CONFIG', 'KRB5CCNAME', 'KRB5_KTNAME', 'KRB5_CLIENT_KTNAME', 'SOFTHSM2_CONF', 'SSL_CERT_FILE', 'SSL_CERT_DIR',
  // Windows: what PowerShell and the OS tools need to start at all.
  'SYSTEMROOT', 'WINDIR', 'SYSTEMDRIVE', 'PROGRAMDATA', 'PROGRAMFILES', 'PROGRAMFILES(X86)', 'APPDATA', 'LOCALAPPDATA',
  'USERPROFILE', 'COMSPEC', 'PATHEXT', 'USERNAME', 'USERDOMAIN', 'COMPUTERNAME', 'PSMODULEPATH', 'PROCESSOR_ARCHITECTURE',
]);
// DTA_TEST_: the test suite's hooks for its stand-in tools (never a setting, never a secret).
const CHILD_ENV_PREFIXES = ['LC_', 'TPM2TOOLS_', 'TPM2_PKCS11_', 'TSS2_', 'P11_KIT_', 'NSS_', 'DTA_TEST_'];

export function childEnv(extra: Record<string, string> = {}, env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined) continue;
    const upper = k.toUpperCase();
    if (CHILD_ENV_NAMES.has(upper) || CHILD_ENV_PREFIXES.some((p) => upper.startsWith(p))) out[k] = v;
  }
  return { ...out, ...extra };
}

/** Runs a command without a shell; never rejects for a non-zero exit (callers read `code`). */
export const runCommand: CommandRunner = (cmd) =>
  new Promise((resolve, reject) => {
    const child = execFile(
      cmd.file,
      cmd.args,
      { env: cmd.inheritEnv === false ? { ...cmd.env } : childEnv(cmd.env), timeout: cmd.timeoutMs ?? 60_000, maxBuffer: 16 * 1024 * 1024, windowsHide: true },
      (err, stdout, stderr) => {
        if (err && typeof (err as NodeJS.ErrnoException).code === 'string') {
          reject(err); // ENOENT and friends: the command itself could not run
          return;
        }
        if (err && (err as { killed?: boolean }).killed && cmd.timeoutMs !== undefined) {
          resolve({ code: 124, stdout: String(stdout), stderr: `${String(stderr)}\n(killed after ${cmd.timeoutMs} ms)` });
          return;
        }
        const code = err ? ((err as { code?: number }).code ?? 1) : 0;
        resolve({ code: typeof code === 'number' ? code : 1, stdout: String(stdout), stderr: String(stderr) });
      },
    );
    child.stdin?.on('error', () => undefined); // a command that exits without reading its input: not our error
    if (cmd.input !== undefined) child.stdin?.end(cmd.input);
    else child.stdin?.end();
  });

export type SyncCommandRunner = (cmd: Command) => CommandResult;

/**
 * The synchronous form, for the few reads that happen while configuration loads (managed configuration from
 * the Windows registry or macOS preferences). Throws only when the command itself could not run.
 */
export const runCommandSync: SyncCommandRunner = (cmd) => {
  const r = spawnSync(cmd.file, cmd.args, {
    env: cmd.inheritEnv === false ? { ...cmd.env } : childEnv(cmd.env), timeout: 30_000, maxBuffer: 4 * 1024 * 1024, windowsHide: true, encoding: 'utf8',
    ...(cmd.input !== undefined ? { input: cmd.input } : {}),
  });
  if (r.error) throw r.error;
  return { code: r.status ?? 1, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
};
