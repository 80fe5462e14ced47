import { spawn, type ChildProcessByStdio } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const AGENT_BIN = path.join(REPO, 'bin', 'device-trust-agent.js');

export function tempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `dta-${prefix}-`));
}

export interface AgentResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Starts the real command line in a child process with `env` (and this PATH unless `env` has its own); output piped. */
export function spawnAgent(args: string[], env: Record<string, string>): ChildProcessByStdio<null, Readable, Readable> {
  return spawn(process.execPath, [AGENT_BIN, ...args], { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
}

/**
 * Runs the real command line in a child process, as a user or the installer would, to its end. `onStart` sees the
 * process as it starts (to watch it while it runs).
 */
export function runAgent(args: string[], env: Record<string, string>, opts: { timeoutMs?: number; onStart?: (pid: number) => void } = {}): Promise<AgentResult> {
  return new Promise((resolve, reject) => {
    const child = spawnAgent(args, env);
    opts.onStart?.(child.pid!);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`agent ${args.join(' ')} timed out\n${stdout}\n${stderr}`));
    }, opts.timeoutMs ?? 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    });
  });
}

/** A user profile for one test: its own HOME (so its own NSS database), state and policy directories. */
export interface Profile {
  home: string;
  stateDir: string;
  nssDb: string;
  /** Root of a fake /etc/chromium: policies/managed/ holds what the agent writes. */
  chromiumEtc: string;
  policyDir: string;
  env: Record<string, string>;
}

export function makeProfile(opts: { orgUrl: string; rootCaFile: string; extraEnv?: Record<string, string> }): Profile {
  const home = tempDir('home');
  const chromiumEtc = path.join(home, 'etc-chromium');
  const policyDir = path.join(chromiumEtc, 'policies', 'managed');
  const stateDir = path.join(home, '.local', 'state', 'device-trust-agent');
  const env: Record<string, string> = {
    HOME: home,
    USER: 'alice',
    DTA_ORG_URL: opts.orgUrl,
    DTA_TLS_CA_FILE: opts.rootCaFile,
    DTA_BROWSER_POLICY_DIRS: policyDir,
    // Never the machine's /etc/firefox (tests run as root).
    DTA_FIREFOX_POLICY_DIRS: path.join(home, 'etc-firefox', 'policies'),
    DTA_MANAGED_CONFIG_DIR: path.join(home, 'managed-config'),
    // Never the machine's node_exporter directory (tests run as root); the fleet tests give their own.
    DTA_METRICS_DIR: 'off',
    ...opts.extraEnv,
  };
  return { home, stateDir, nssDb: path.join(home, '.pki', 'nssdb'), chromiumEtc, policyDir, env };
}

/** Writes a lab's root CA to a fresh file: the agent's `tlsCaFile` (trust anchor for the lab's TLS). */
export function writeRootCa(pem: string): string {
  const file = path.join(tempDir('ca'), 'root.pem');
  fs.writeFileSync(file, pem);
  return file;
}
