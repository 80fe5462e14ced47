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
}

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

export type CommandRunner = (cmd: Command) => Promise<CommandResult>;

/** Runs a command without a shell; never rejects for a non-zero exit (callers read `code`). */
export const runCommand: CommandRunner = (cmd) =>
  new Promise((resolve, reject) => {
    const child = execFile(
      cmd.file,
      cmd.args,
      { env: { ...process.env, ...cmd.env }, timeout: cmd.timeoutMs ?? 60_000, maxBuffer: 16 * 1024 * 1024, windowsHide: true },
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
    env: { ...process.env, ...cmd.env }, timeout: 30_000, maxBuffer: 4 * 1024 * 1024, windowsHide: true, encoding: 'utf8',
    ...(cmd.input !== undefined ? { input: cmd.input } : {}),
  });
  if (r.error) throw r.error;
  return { code: r.status ?? 1, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
};
