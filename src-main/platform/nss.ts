import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { describeCertificate, parseCertificate, splitPem } from '../base/certinfo.js';
import { AgentError } from '../base/errors.js';
import { runCommand, type Command, type CommandRunner } from '../base/exec.js';
import { ensurePrivateDir } from '../base/fsutil.js';
import type { CertificateStore, InstallRequest, StoredCertificate } from './types.js';

/** Command lines for NSS's certutil/pk12util and OpenSSL, kept as data so tests can assert them. */
export const nssCommands = {
  createDb: (db: string, pwFile: string): Command => ({ file: 'certutil', args: ['-N', '-d', `sql:${db}`, '-f', pwFile] }),
  list: (db: string): Command => ({ file: 'certutil', args: ['-L', '-d', `sql:${db}`] }),
  exportPem: (db: string, nickname: string): Command => ({ file: 'certutil', args: ['-L', '-d', `sql:${db}`, '-n', nickname, '-a'] }),
  /** The PKCS#12 password reaches OpenSSL through the environment, never the command line (ps shows argv). */
  makePkcs12: (keyFile: string, certFile: string, chainFile: string | undefined, label: string, out: string): Command => ({
    file: 'openssl',
    args: ['pkcs12', '-export', '-inkey', keyFile, '-in', certFile, ...(chainFile ? ['-certfile', chainFile] : []), '-name', label, '-passout', 'env:DTA_P12_PASSWORD', '-out', out],
  }),
  importPkcs12: (db: string, p12: string, pwFile: string, dbPwFile: string): Command => ({
    file: 'pk12util', args: ['-i', p12, '-d', `sql:${db}`, '-w', pwFile, '-k', dbPwFile],
  }),
  /** Certificate, chain and key of one nickname as PKCS#12 (to copy them into a Firefox profile's database). */
  exportPkcs12: (db: string, nickname: string, p12: string, pwFile: string, dbPwFile: string): Command => ({
    file: 'pk12util', args: ['-o', p12, '-n', nickname, '-d', `sql:${db}`, '-w', pwFile, '-k', dbPwFile],
  }),
  /** -F deletes the private key together with its certificate. */
  deleteKeyAndCert: (db: string, nickname: string, dbPwFile: string): Command => ({ file: 'certutil', args: ['-F', '-d', `sql:${db}`, '-n', nickname, '-f', dbPwFile] }),
  deleteCert: (db: string, nickname: string): Command => ({ file: 'certutil', args: ['-D', '-d', `sql:${db}`, '-n', nickname] }),
};

/** Parses `certutil -L`: nickname, then trust flags as the last column. */
export function parseCertutilList(stdout: string): { nickname: string; trust: string }[] {
  const out: { nickname: string; trust: string }[] = [];
  for (const line of stdout.split('\n')) {
    const m = /^(.*\S)\s+([a-zA-Z]*,[a-zA-Z]*,[a-zA-Z]*)\s*$/.exec(line);
    if (!m || /^Certificate Nickname/.test(line)) continue;
    out.push({ nickname: m[1]!, trust: m[2]! });
  }
  return out;
}

/**
 * The Linux NSS database that Chromium, Chrome and Firefox (with the system database) read. The key is
 * imported from the agent's owner-only key file through a short-lived PKCS#12 in a private directory.
 */
export class NssStore implements CertificateStore {
  readonly description: string;

  constructor(private readonly dbDir: string, private readonly workDir: string, private readonly run: CommandRunner = runCommand) {
    this.description = `NSS database ${dbDir}`;
  }

  private async exec(cmd: Command, what: string): Promise<string> {
    let res;
    try {
      res = await this.run(cmd);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new AgentError('local', 'NSS_TOOLS_MISSING', `${cmd.file} is not installed, so the certificate cannot be put into the NSS database.`,
          'Install the NSS tools and OpenSSL (Debian/Ubuntu: apt install libnss3-tools openssl; Fedora: dnf install nss-tools openssl).');
      }
      throw e;
    }
    if (res.code !== 0) {
      const detail = (res.stderr || res.stdout).trim().split('\n').slice(-2).join(' ');
      const full = /No space left|SEC_ERROR_IO|database disk image is full/i.test(detail);
      throw new AgentError('local', full ? 'DISK_FULL' : 'NSS_FAILED', `Could not ${what} in the NSS database ${this.dbDir}: ${detail || `exit ${res.code}`}.`,
        full ? 'Free some disk space; the agent tries again on its next run and the previous certificate is unchanged.' : 'Check that the database is not locked by a running browser process with a different profile, and that you own it.');
    }
    return res.stdout;
  }

  private emptyPasswordFile(): string {
    const f = path.join(ensurePrivateDir(this.workDir), 'nss-empty-password');
    if (!fs.existsSync(f)) fs.writeFileSync(f, '\n', { mode: 0o600 });
    return f;
  }

  private async ensureDb(): Promise<void> {
    if (fs.existsSync(path.join(this.dbDir, 'cert9.db'))) return;
    ensurePrivateDir(this.dbDir);
    await this.exec(nssCommands.createDb(this.dbDir, this.emptyPasswordFile()), 'create the database');
    this.tightenModes();
  }

  /** NSS creates its files with the umask's mode; the key database must be owner-only. */
  private tightenModes(): void {
    for (const f of ['cert9.db', 'key4.db', 'pkcs11.txt']) {
      const p = path.join(this.dbDir, f);
      if (fs.existsSync(p)) fs.chmodSync(p, 0o600);
    }
  }

  async list(): Promise<StoredCertificate[]> {
    if (!fs.existsSync(path.join(this.dbDir, 'cert9.db'))) return [];
    const entries = parseCertutilList(await this.exec(nssCommands.list(this.dbDir), 'list certificates'));
    const out: StoredCertificate[] = [];
    for (const { nickname, trust } of entries) {
      if (!trust.startsWith('u')) continue; // 'u' = the private key is in this database
      const pems = splitPem(await this.exec(nssCommands.exportPem(this.dbDir, nickname), `read "${nickname}"`));
      for (const pem of pems) out.push({ id: nickname, pem, info: describeCertificate(parseCertificate(pem)) });
    }
    return out;
  }

  async install(req: InstallRequest): Promise<StoredCertificate> {
    await this.ensureDb();
    const tmp = fs.mkdtempSync(path.join(ensurePrivateDir(this.workDir), 'p12-'));
    try {
      const keyFile = path.join(tmp, 'key.pem');
      const certFile = path.join(tmp, 'cert.pem');
      const chainFile = path.join(tmp, 'chain.pem');
      const p12 = path.join(tmp, 'bundle.p12');
      const pwFile = path.join(tmp, 'password');
      const password = crypto.randomBytes(24).toString('base64url');
      fs.writeFileSync(keyFile, req.keyPem, { mode: 0o600 });
      fs.writeFileSync(certFile, req.certPem, { mode: 0o600 });
      fs.writeFileSync(pwFile, password, { mode: 0o600 });
      if (req.chainPem.length) fs.writeFileSync(chainFile, req.chainPem.join('\n'), { mode: 0o600 });
      const mk = nssCommands.makePkcs12(keyFile, certFile, req.chainPem.length ? chainFile : undefined, req.label, p12);
      await this.exec({ ...mk, env: { DTA_P12_PASSWORD: password } }, 'package the certificate');
      await this.exec(nssCommands.importPkcs12(this.dbDir, p12, pwFile, this.emptyPasswordFile()), 'import the certificate');
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
    this.tightenModes();
    // Found by fingerprint: NSS may have filed it under an existing nickname of the same subject.
    const sha256 = describeCertificate(parseCertificate(req.certPem)).sha256;
    const installed = (await this.list()).find((c) => c.info.sha256 === sha256);
    if (!installed) {
      throw new AgentError('local', 'NSS_FAILED', `The certificate was imported into ${this.dbDir} but is not listed with its private key afterwards.`,
        'Run again with --debug; if it repeats, the NSS database may be damaged (move it aside and run with --forceRenewal).');
    }
    return installed;
  }

  /** Writes the certificate(s) and key filed under `id` to a PKCS#12 protected by the password in `pwFile`. */
  async exportIdentity(id: string, p12: string, pwFile: string): Promise<void> {
    await this.exec(nssCommands.exportPkcs12(this.dbDir, id, p12, pwFile, this.emptyPasswordFile()), `export "${id}"`);
  }

  /** Imports a PKCS#12 (creating the database if needed), as install() does for its own bundle. */
  async importIdentity(p12: string, pwFile: string): Promise<void> {
    await this.ensureDb();
    await this.exec(nssCommands.importPkcs12(this.dbDir, p12, pwFile, this.emptyPasswordFile()), 'import the certificate');
    this.tightenModes();
  }

  /**
   * NSS gives every certificate with the same subject the same nickname, so a nickname can name an old and a
   * new certificate at once: removal takes them all (the agent reinstalls the one it keeps).
   */
  async remove(id: string): Promise<void> {
    for (let i = 0; i < 10; i++) {
      if (!(await this.list()).some((c) => c.id === id)) return;
      try {
        await this.exec(nssCommands.deleteKeyAndCert(this.dbDir, id, this.emptyPasswordFile()), `remove "${id}"`);
      } catch {
        // The key may already be gone (a lost key is one reason for --forceRenewal): drop the certificate alone.
        await this.exec(nssCommands.deleteCert(this.dbDir, id), `remove "${id}"`);
      }
    }
    throw new AgentError('local', 'NSS_FAILED', `The certificate "${id}" could not be removed from ${this.dbDir}.`);
  }
}
