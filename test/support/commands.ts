import fs from 'node:fs';
import path from 'node:path';
import type { Command, CommandResult } from '../../src-main/base/exec.js';
import { REPO } from './agent.js';

/** A fixture file under test/fixtures (outputs of Windows/macOS tools; see the README beside them). */
export function fixture(platform: 'win32' | 'darwin', name: string): string {
  return fs.readFileSync(path.join(REPO, 'test', 'fixtures', platform, name), 'utf8');
}

export const ok = (stdout = ''): CommandResult => ({ code: 0, stdout, stderr: '' });
export const fail = (stderr: string, code = 1, stdout = ''): CommandResult => ({ code, stdout, stderr });

/**
 * Stands in for a platform tool that cannot run on Linux: answers each command with a recorded output chosen by
 * `answer`, and records every command line so tests can assert exactly what the adapter ran.
 */
export function scripted(answer: (cmd: Command, n: number) => CommandResult) {
  const calls: Command[] = [];
  const run = async (cmd: Command) => {
    calls.push(cmd);
    return answer(cmd, calls.length - 1);
  };
  const runSync = (cmd: Command) => {
    calls.push(cmd);
    return answer(cmd, calls.length - 1);
  };
  return { run, runSync, calls, lines: () => calls.map((c) => [c.file, ...c.args].join(' ')) };
}

/** The script inside `powershell.exe … -EncodedCommand <base64 UTF-16LE>`. */
export function decodePowershell(cmd: Command): string {
  const i = cmd.args.indexOf('-EncodedCommand');
  return Buffer.from(cmd.args[i + 1] ?? '', 'base64').toString('utf16le');
}
