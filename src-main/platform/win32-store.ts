import { createHash, X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { describeCertificate, parseCertificate } from '../base/certinfo.js';
import { AgentError } from '../base/errors.js';
import { runCommand, type Command, type CommandResult, type CommandRunner } from '../base/exec.js';
import { ensurePrivateDir } from '../base/fsutil.js';
import { buildPkcs12, oneTimePassword } from './pkcs12.js';
import type { CertificateStore, InstallRequest, StoredCertificate } from './types.js';

export const TPM_PROVIDER = 'Microsoft Platform Crypto Provider';
export const SOFTWARE_PROVIDER = 'Microsoft Software Key Storage Provider';

/** PowerShell scripts run with -EncodedCommand; their inputs come through the environment, never the command line. */
export const win32Scripts = {
  /** Personal certificates with a private key, as JSON (an array even for one or none). */
  list: [
    "$ErrorActionPreference = 'Stop'",
    "$items = @(Get-ChildItem -LiteralPath 'Cert:\\CurrentUser\\My' | Where-Object { $_.HasPrivateKey } | ForEach-Object { [pscustomobject]@{ Thumbprint = $_.Thumbprint; RawData = [Convert]::ToBase64String($_.RawData) } })",
    'ConvertTo-Json -InputObject $items -Compress',
  ].join('\n'),
  /** Software key: Import-PfxCertificate marks the key non-exportable unless -Exportable is given (it is not). */
  importSoftware: [
    "$ErrorActionPreference = 'Stop'",
    '$password = ConvertTo-SecureString -String $env:DTA_PFX_PASSWORD -AsPlainText -Force',
    "$cert = Import-PfxCertificate -FilePath $env:DTA_PFX_PATH -CertStoreLocation 'Cert:\\CurrentUser\\My' -Password $password",
    '$cert.Thumbprint',
  ].join('\n'),
};

const POWERSHELL_ARGS = ['-NoLogo', '-NoProfile', '-NonInteractive', '-ExecutionPolicy', 'Bypass', '-EncodedCommand'];

export function powershell(script: string, env?: Record<string, string>): Command {
  return { file: 'powershell.exe', args: [...POWERSHELL_ARGS, Buffer.from(script, 'utf16le').toString('base64')], ...(env ? { env } : {}) };
}

/** Windows certificate-store commands as data (certutil.exe and Windows PowerShell 5.1, both in every Windows). */
export const win32Commands = {
  list: (): Command => powershell(win32Scripts.list),
  importSoftware: (pfx: string, password: string): Command => powershell(win32Scripts.importSoftware, { DTA_PFX_PATH: pfx, DTA_PFX_PASSWORD: password }),
  /**
   * TPM: only certutil can put an imported key into the Platform Crypto Provider, and it takes the PFX password
   * only as -p. The password is random, used once, for a file in the user's private directory that is deleted
   * straight after; reading another user's command line needs administrator rights, which could read the file too.
   */
  importTpm: (pfx: string, password: string): Command => ({ file: 'certutil.exe', args: ['-user', '-f', '-p', password, '-csp', TPM_PROVIDER, '-importPFX', 'My', pfx, 'NoExport'] }),
  /** Issuing CAs go to the user's Intermediate store so browsers can build the chain. */
  addIntermediate: (certFile: string): Command => ({ file: 'certutil.exe', args: ['-user', '-f', '-addstore', 'CA', certFile] }),
  show: (thumbprint: string): Command => ({ file: 'certutil.exe', args: ['-user', '-store', 'My', thumbprint] }),
  deleteCert: (thumbprint: string): Command => ({ file: 'certutil.exe', args: ['-user', '-delstore', 'My', thumbprint] }),
  /** Deleting the certificate leaves its key (a TPM key especially): it is deleted by container name. */
  deleteKey: (provider: string, container: string): Command => ({ file: 'certutil.exe', args: ['-user', '-csp', provider, '-delkey', container] }),
};

/** One certificate block of `certutil -store` output. */
export interface CertutilEntry {
  serialNumber: string;
  issuer: string;
  subject: string;
  notBefore: string;
  notAfter: string;
  /** SHA-1 thumbprint, upper-case hex. */
  thumbprint: string;
  keyContainer?: string;
  provider?: string;
  /** false when certutil says "Private key is NOT exportable". */
  exportable: boolean;
  /** Whether certutil could use the key (signature/encryption test); false when it reports a mismatch. */
  keyUsable?: boolean;
  missingKey: boolean;
}

/** Parses `certutil [-user] -store My [id]`: "==== Certificate N ====" blocks of "Name: value" lines. */
export function parseCertutilStore(stdout: string): CertutilEntry[] {
  const out: CertutilEntry[] = [];
  const blocks = stdout.split(/^=+ Certificate \d+ =+\s*$/m).slice(1);
  for (const block of blocks) {
    const field = (re: RegExp) => re.exec(block)?.[1]?.trim() ?? '';
    const usable = /(Encryption|Signature) test passed/.test(block) ? true : /Could not verify certificate public key against private key|(Encryption|Signature) test FAILED/i.test(block) ? false : undefined;
    out.push({
      serialNumber: field(/^Serial Number: (.*)$/m).toLowerCase(),
      issuer: field(/^Issuer: (.*)$/m),
      subject: field(/^Subject: (.*)$/m),
      notBefore: field(/^ NotBefore: (.*)$/m),
      notAfter: field(/^ NotAfter: (.*)$/m),
      thumbprint: field(/^Cert Hash\(sha1\): (.*)$/m).replace(/\s/g, '').toUpperCase(),
      ...(field(/^ +Key Container = (.*)$/m) ? { keyContainer: field(/^ +Key Container = (.*)$/m) } : {}),
      ...(field(/^ +Provider = (.*)$/m) ? { provider: field(/^ +Provider = (.*)$/m) } : {}),
      exportable: !/Private key is NOT exportable/i.test(block) && /^ +Provider = /m.test(block),
      ...(usable !== undefined ? { keyUsable: usable } : {}),
      missingKey: /Missing stored keyset/i.test(block),
    });
  }
  return out;
}

export type WindowsFailure = 'access-denied' | 'wrong-password' | 'already-exists' | 'key-not-exportable' | 'not-found' | 'tpm-unavailable' | 'tpm-import-unsupported' | 'other';

export interface ParsedWindowsError {
  kind: WindowsFailure;
  /** 0x8009xxxx when the tool printed one. */
  hresult?: string;
  /** The symbolic name certutil prints (NTE_BAD_KEY_STATE…). */
  symbol?: string;
  message: string;
}

const BY_HRESULT: Record<string, WindowsFailure> = {
  '0x80070005': 'access-denied', // E_ACCESSDENIED
  '0x80070056': 'wrong-password', // ERROR_INVALID_PASSWORD
  '0x800700b7': 'already-exists', // ERROR_ALREADY_EXISTS
  '0x80092005': 'already-exists', // CRYPT_E_EXISTS
  '0x8009000f': 'already-exists', // NTE_EXISTS
  '0x8009000b': 'key-not-exportable', // NTE_BAD_KEY_STATE: "Key not valid for use in specified state."
  '0x80092004': 'not-found', // CRYPT_E_NOT_FOUND
  '0x80090016': 'not-found', // NTE_BAD_KEYSET
  '0x80090011': 'not-found', // NTE_NOT_FOUND
  '0x80090030': 'tpm-unavailable', // NTE_DEVICE_NOT_READY
  '0x80090035': 'tpm-unavailable', // NTE_DEVICE_NOT_FOUND
  '0x80090027': 'tpm-import-unsupported', // NTE_INVALID_PARAMETER (certutil's TPM import of some keys)
  '0x80090029': 'tpm-import-unsupported', // NTE_NOT_SUPPORTED
  '0x8009000a': 'tpm-import-unsupported', // NTE_BAD_TYPE (ECDSA keys into the TPM via certutil)
};

/**
 * Reads a failure of certutil ("CertUtil: -verb command FAILED: 0x80090027 (-2146893785 NTE_INVALID_PARAMETER)"
 * then "CertUtil: <message>") or of a PowerShell cmdlet ("Import-PfxCertificate : <message>" … error record).
 */
export function parseWindowsError(res: Pick<CommandResult, 'stdout' | 'stderr'>): ParsedWindowsError {
  const text = `${res.stdout}\n${res.stderr}`;
  const certutil = /command FAILED: (0x[0-9a-fA-F]{8}) \((?:-?\d+|WIN32: \d+) ?([A-Z_0-9]*)\)/.exec(text);
  let hresult = certutil?.[1]?.toLowerCase();
  const symbol = certutil?.[2] || undefined;
  let message = '';
  if (certutil) {
    message = /^CertUtil: (?!.*command FAILED)(.+)$/m.exec(text)?.[1]?.trim() ?? '';
  } else {
    message = /^[\w-]+ : (.+)$/m.exec(text)?.[1]?.trim() ?? text.trim().split(/\r?\n/)[0] ?? '';
    hresult = /\b(0x8[0-9a-fA-F]{7})\b/.exec(text)?.[1]?.toLowerCase();
  }
  let kind: WindowsFailure = (hresult && BY_HRESULT[hresult]) || 'other';
  if (kind === 'other' && hresult?.startsWith('0x8028')) kind = 'tpm-unavailable'; // TBS_E_* / TPM_E_*
  if (kind === 'other') {
    if (/access is denied/i.test(message)) kind = 'access-denied';
    else if (/different password|network password is not correct/i.test(message)) kind = 'wrong-password';
    else if (/already exists/i.test(message)) kind = 'already-exists';
    else if (/not valid for use in specified state|not exportable/i.test(message)) kind = 'key-not-exportable';
    else if (/cannot find|not found|does not exist/i.test(message)) kind = 'not-found';
  }
  return { kind, ...(hresult ? { hresult } : {}), ...(symbol ? { symbol } : {}), message: message || `exit code ${'code' in res ? (res as CommandResult).code : '?'}` };
}

const ListSchema = z.array(z.object({ Thumbprint: z.string().regex(/^[0-9A-Fa-f]{40}$/), RawData: z.string().min(1) }));

export function parsePowershellList(stdout: string): { thumbprint: string; pem: string }[] {
  const text = stdout.trim();
  if (!text) return [];
  let raw: unknown = JSON.parse(text);
  if (raw && !Array.isArray(raw)) raw = [raw]; // Windows PowerShell may unwrap a one-element array
  return ListSchema.parse(raw).map((c) => ({
    thumbprint: c.Thumbprint.toUpperCase(),
    pem: `-----BEGIN CERTIFICATE-----\n${c.RawData.match(/.{1,64}/g)!.join('\n')}\n-----END CERTIFICATE-----\n`,
  }));
}

export function sha1Thumbprint(pem: string): string {
  return createHash('sha1').update(new X509Certificate(pem).raw).digest('hex').toUpperCase();
}

export interface WindowsStoreOptions {
  /** SkipTPM=true: always a software key. */
  skipTpm: boolean;
  workDir: string;
  run?: CommandRunner;
}

/**
 * The user's personal store `CurrentUser\My`: the key goes into the TPM (Microsoft Platform Crypto Provider)
 * when one is present and SkipTPM is not set, otherwise into the software key storage provider; always
 * non-exportable, which is checked after every import.
 */
export class WindowsCertificateStore implements CertificateStore {
  private readonly run: CommandRunner;
  private lastProvider: string | undefined;
  /** Why the TPM was not used for the last import, for status and --debug. */
  tpmFallbackReason: string | undefined;

  constructor(private readonly opts: WindowsStoreOptions) {
    this.run = opts.run ?? runCommand;
  }

  get description(): string {
    const where = this.lastProvider === TPM_PROVIDER ? ' (key in the TPM)' : this.lastProvider ? ` (key in ${this.lastProvider})` : '';
    return `Windows certificate store CurrentUser\\My${where}`;
  }

  private async exec(cmd: Command, what: string): Promise<CommandResult> {
    let res: CommandResult;
    try {
      res = await this.run(cmd);
    } catch (e) {
      throw new AgentError('local', 'STORE_TOOL_MISSING', `${cmd.file} could not be started to ${what}: ${(e as Error).message}.`,
        'certutil.exe and powershell.exe are part of Windows; check that System32 is on PATH and not blocked by policy.');
    }
    return res;
  }

  private fail(what: string, err: ParsedWindowsError): AgentError {
    const detail = `${err.message}${err.hresult ? ` (${err.hresult}${err.symbol ? ` ${err.symbol}` : ''})` : ''}`;
    const remedy: Record<WindowsFailure, string> = {
      'access-denied': 'The user task must run as the signed-in user; check that security software does not block certutil/PowerShell from the user\'s certificate store.',
      'wrong-password': 'This Windows version cannot read the PKCS#12 format (AES-256, Windows 10 1709 or later is needed); update Windows.',
      'already-exists': 'Run again; the agent removes the existing entry first.',
      'key-not-exportable': 'The key is non-exportable by design; nothing to do.',
      'not-found': 'Run again with --debug; the store changed while the agent was working.',
      'tpm-unavailable': 'Set SkipTPM=true to keep keys in software, or check the TPM in tpm.msc.',
      'tpm-import-unsupported': 'Set SkipTPM=true, or use keyAlgorithm RSA-2048 on Windows 11, where certutil imports RSA keys into the TPM.',
      other: 'Run again with --debug and give the output to the help desk.',
    };
    return new AgentError('local', `WINDOWS_STORE_${err.kind.toUpperCase().replace(/-/g, '_')}`, `Could not ${what} in CurrentUser\\My: ${detail}.`, remedy[err.kind]);
  }

  async list(): Promise<StoredCertificate[]> {
    const res = await this.exec(win32Commands.list(), 'list certificates');
    if (res.code !== 0) throw this.fail('list certificates', parseWindowsError(res));
    let items: { thumbprint: string; pem: string }[];
    try {
      items = parsePowershellList(res.stdout);
    } catch (e) {
      throw new AgentError('local', 'WINDOWS_STORE_OTHER', `The certificate list from PowerShell could not be read: ${(e as Error).message}.`, 'Run again with --debug.');
    }
    return items.map(({ thumbprint, pem }) => ({ id: thumbprint, pem, info: describeCertificate(parseCertificate(pem)) }));
  }

  /** certutil's view of one certificate: where its key is and whether it is exportable. */
  async inspect(thumbprint: string): Promise<CertutilEntry | undefined> {
    const res = await this.exec(win32Commands.show(thumbprint), 'read the certificate');
    if (res.code !== 0) {
      const err = parseWindowsError(res);
      if (err.kind === 'not-found') return undefined;
      throw this.fail('read the certificate', err);
    }
    return parseCertutilStore(res.stdout).find((e) => e.thumbprint === thumbprint);
  }

  async install(req: InstallRequest): Promise<StoredCertificate> {
    const thumbprint = sha1Thumbprint(req.certPem);
    const tmp = fs.mkdtempSync(path.join(ensurePrivateDir(this.opts.workDir), 'pfx-'));
    try {
      for (const [i, pem] of req.chainPem.entries()) {
        const f = path.join(tmp, `ca-${i}.cer`);
        fs.writeFileSync(f, pem, { mode: 0o600 });
        const res = await this.exec(win32Commands.addIntermediate(f), 'add the issuing CA');
        if (res.code !== 0 && parseWindowsError(res).kind !== 'already-exists') throw this.fail('add the issuing CA to the Intermediate store', parseWindowsError(res));
      }
      const password = oneTimePassword();
      const pfx = path.join(tmp, 'device.pfx');
      fs.writeFileSync(pfx, await buildPkcs12({ keyPem: req.keyPem, certPem: req.certPem, friendlyName: req.label, password }), { mode: 0o600 });

      this.tpmFallbackReason = this.opts.skipTpm ? 'SkipTPM=true' : undefined;
      let imported = false;
      if (!this.opts.skipTpm) imported = await this.tryTpm(pfx, password, thumbprint);
      if (!imported) {
        const res = await this.exec(win32Commands.importSoftware(pfx, password), 'import the certificate');
        if (res.code !== 0 && parseWindowsError(res).kind !== 'already-exists') throw this.fail('import the certificate', parseWindowsError(res));
      }
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
    const entry = await this.inspect(thumbprint);
    if (!entry || entry.missingKey) {
      throw new AgentError('local', 'WINDOWS_STORE_OTHER', 'The certificate was imported into CurrentUser\\My but is not listed with its private key afterwards.', 'Run again with --debug; if it repeats, run with --forceRenewal.');
    }
    if (entry.exportable) {
      // Never leave an exportable device key behind.
      await this.remove(thumbprint);
      throw new AgentError('local', 'WINDOWS_KEY_EXPORTABLE', 'Windows imported the device key as exportable, so it was removed again.', 'Report this with the --debug output; the previous certificate is restored.');
    }
    this.lastProvider = entry.provider;
    const installed = (await this.list()).find((c) => c.id === thumbprint);
    if (!installed) throw new AgentError('local', 'WINDOWS_STORE_OTHER', 'The certificate was imported into CurrentUser\\My but is not listed afterwards.', 'Run again with --debug.');
    return installed;
  }

  /** Imports into the TPM; true when the key is there and usable, false (with a reason) to fall back to software. */
  private async tryTpm(pfx: string, password: string, thumbprint: string): Promise<boolean> {
    const res = await this.exec(win32Commands.importTpm(pfx, password), 'import the certificate into the TPM');
    if (res.code !== 0) {
      const err = parseWindowsError(res);
      if (err.kind === 'tpm-unavailable' || err.kind === 'tpm-import-unsupported' || err.kind === 'other') {
        this.tpmFallbackReason = `the TPM import failed: ${err.message}${err.symbol ? ` (${err.symbol})` : ''}`;
        return false;
      }
      throw this.fail('import the certificate into the TPM', err);
    }
    // certutil can report success for an ECDSA key it then cannot use: check, and fall back if so.
    const entry = await this.inspect(thumbprint);
    if (entry && entry.provider === TPM_PROVIDER && entry.keyUsable !== false && !entry.missingKey) return true;
    this.tpmFallbackReason = `the TPM import could not be verified (${entry ? `provider ${entry.provider ?? 'none'}, key ${entry.keyUsable === false ? 'unusable' : 'missing'}` : 'not listed'})`;
    await this.remove(thumbprint);
    return false;
  }

  async remove(id: string): Promise<void> {
    const entry = await this.inspect(id);
    if (!entry) return;
    const res = await this.exec(win32Commands.deleteCert(id), 'remove the certificate');
    if (res.code !== 0 && parseWindowsError(res).kind !== 'not-found') throw this.fail('remove the certificate', parseWindowsError(res));
    if (entry.provider && entry.keyContainer) {
      const del = await this.exec(win32Commands.deleteKey(entry.provider, entry.keyContainer), 'remove the private key');
      if (del.code !== 0 && parseWindowsError(del).kind !== 'not-found') throw this.fail('remove the private key', parseWindowsError(del));
    }
  }
}
