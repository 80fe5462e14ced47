import { execFileSync, spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { tempDir } from './agent.js';

/** Reads an NSS database directly with certutil (independent of the agent's own store code). */
export function nssUserCerts(db: string): { nickname: string; serial: string; issuer: string; subject: string }[] {
  let out: string;
  try {
    out = execFileSync('certutil', ['-L', '-d', `sql:${db}`], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  } catch {
    return [];
  }
  const res = [];
  for (const line of out.split('\n')) {
    const m = /^(.*\S)\s+(u,u,u)\s*$/.exec(line);
    if (!m) continue;
    const pem = execFileSync('certutil', ['-L', '-d', `sql:${db}`, '-n', m[1]!, '-a'], { encoding: 'utf8' });
    const c = new X509Certificate(pem);
    res.push({ nickname: m[1]!, serial: c.serialNumber.toLowerCase().replace(/^0+/, ''), issuer: c.issuer, subject: c.subject });
  }
  return res;
}

/** Nicknames of user certificates (u,u,u) on every token of the database, the registered TPM module's too. */
export function nssUserNicknamesAllTokens(db: string): string[] {
  const out = execFileSync('certutil', ['-L', '-d', `sql:${db}`, '-h', 'all'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  return out.split('\n').map((l) => /^(.*\S)\s+u,u,u\s*$/.exec(l)?.[1]).filter((n): n is string => !!n);
}

/**
 * Private keys in the database (`certutil -K`), to prove an old key was removed with its certificate. stdin is
 * closed rather than fed: certutil does not read it for an empty-password database, and writing to a process
 * that has already exited fails with EPIPE under load (which made this count 0 now and then).
 */
export function nssKeyCount(db: string): number {
  const r = spawnSync('certutil', ['-K', '-d', `sql:${db}`], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  if (r.status !== 0) {
    if (/no keys found/.test(`${r.stdout}${r.stderr}`)) return 0;
    throw new Error(`certutil -K failed (${r.status ?? r.error?.message}): ${r.stderr}`);
  }
  return r.stdout.split('\n').filter((l) => /^<\s*\d+>/.test(l)).length;
}

/** Trusts the lab root for TLS in a profile's NSS database (what an admin's managed root would be). */
export function nssTrustRoot(db: string, rootPemFile: string, nickname = 'Device Trust Lab Root CA'): void {
  execFileSync('certutil', ['-A', '-d', `sql:${db}`, '-n', nickname, '-t', 'C,,', '-i', rootPemFile]);
}

/**
 * Environment for a child process whose key store fails to file a certificate like a full disk: always, or
 * only the first time (src-main/base/test-faults.ts; the store is written in-process through PKCS#11).
 */
export function failingPk12util(mode: 'always' | 'once'): Record<string, string> {
  return { DTA_TEST_FAIL_STORE: `${mode}:${tempDir('fault')}` };
}
