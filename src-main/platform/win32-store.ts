import { createHash, createPrivateKey, X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { describeCertificate, parseCertificate } from '../base/certinfo.js';
import { AgentError } from '../base/errors.js';
import { runCommand, type Command, type CommandResult, type CommandRunner } from '../base/exec.js';
import { ensurePrivateDir } from '../base/fsutil.js';
import { buildPkcs12, oneTimePassword } from './pkcs12.js';
import type { CertificateStore, InstallRequest, StoredCertificate } from './types.js';
import { classifyPsFailure, envelope, parsePsAnswer, powershell, type PsFailure } from './win32-powershell.js';

export { powershell } from './win32-powershell.js';

export const TPM_PROVIDER = 'Microsoft Platform Crypto Provider';
export const SOFTWARE_PROVIDER = 'Microsoft Software Key Storage Provider';

/**
 * PowerShell scripts (run with -EncodedCommand, inputs through the environment). Each runs in
 * ConstrainedLanguage and answers with the JSON envelope of win32-powershell.ts.
 */
export const win32Scripts = {
  /** Every personal certificate: thumbprint, whether Windows has its private key, and the DER (a byte array in JSON). */
  list: envelope(
    "$result = @(Get-ChildItem -LiteralPath 'Cert:\\CurrentUser\\My' | ForEach-Object { @{ Thumbprint = $_.Thumbprint; HasPrivateKey = $_.HasPrivateKey; RawData = $_.RawData } })",
  ),
  /** Software key: Import-PfxCertificate marks the key non-exportable unless -Exportable is given (it is not). */
  importSoftware: envelope([
    '$password = ConvertTo-SecureString -String $env:DTA_PFX_PASSWORD -AsPlainText -Force',
    "$cert = Import-PfxCertificate -FilePath $env:DTA_PFX_PATH -CertStoreLocation 'Cert:\\CurrentUser\\My' -Password $password",
    '$result = @{ Thumbprint = $cert.Thumbprint }',
  ].join('\n')),
  /** The certificate and its private key (whichever provider holds it: -DeleteKey asks the provider). */
  remove: envelope([
    "$path = 'Cert:\\CurrentUser\\My\\' + $env:DTA_THUMBPRINT",
    'Remove-Item -LiteralPath $path -DeleteKey',
    "$result = 'removed'",
  ].join('\n')),
};

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
  /** Used for one fact only: whether the TPM provider's name (never translated) appears in the certificate's block. */
  show: (thumbprint: string): Command => ({ file: 'certutil.exe', args: ['-user', '-store', 'My', thumbprint] }),
  /** The exportability check: an export attempt whose exit code answers (0 = the key CAN leave: not acceptable). */
  tryExport: (thumbprint: string, out: string, password: string): Command => ({ file: 'certutil.exe', args: ['-user', '-f', '-p', password, '-exportPFX', 'My', thumbprint, out] }),
  remove: (thumbprint: string): Command => powershell(win32Scripts.remove, { DTA_THUMBPRINT: thumbprint }),
};

export type WindowsFailure = 'access-denied' | 'wrong-password' | 'already-exists' | 'key-not-exportable' | 'not-found' | 'tpm-unavailable' | 'tpm-import-unsupported' | 'other';

export interface ParsedWindowsError {
  kind: WindowsFailure;
  /** 0x8xxxxxxx: what the decision is taken from. */
  hresult?: string;
  /** The symbolic name certutil prints (NTE_BAD_KEY_STATE…): not translated either. */
  symbol?: string;
  /** For people only (Windows translates it). */
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
  '0x80070002': 'not-found', // ERROR_FILE_NOT_FOUND
  '0x80090030': 'tpm-unavailable', // NTE_DEVICE_NOT_READY
  '0x80090035': 'tpm-unavailable', // NTE_DEVICE_NOT_FOUND
  '0x80090027': 'tpm-import-unsupported', // NTE_INVALID_PARAMETER (certutil's TPM import of RSA keys on Windows 10)
  '0x80090029': 'tpm-import-unsupported', // NTE_NOT_SUPPORTED
  '0x8009000a': 'tpm-import-unsupported', // NTE_BAD_TYPE (ECDSA keys into the TPM via certutil)
};

function kindOf(hresult: string | undefined): WindowsFailure {
  if (!hresult) return 'other';
  const k = BY_HRESULT[hresult];
  if (k) return k;
  if (hresult.startsWith('0x8028')) return 'tpm-unavailable'; // TBS_E_* / TPM_E_*
  return 'other';
}

/**
 * A certutil failure: the exit code says it failed; the HRESULT (`0x80090027`, printed as hex in every
 * language: "command FAILED: 0x…" / "Befehl ist fehlgeschlagen: 0x…") says why. The text around it is
 * translated and only shown to people.
 */
export function parseCertutilError(res: Pick<CommandResult, 'stdout' | 'stderr'>): ParsedWindowsError {
  const text = `${res.stdout}\n${res.stderr}`;
  const m = /\b(0x8[0-9a-fA-F]{7})\b(?:\s*\((?:-?\d+|WIN32: \d+)\s*([A-Z][A-Z_0-9]+)?\))?/.exec(text);
  const hresult = m?.[1]?.toLowerCase();
  const symbol = m?.[2];
  const lines = text.split(/\r?\n/).map((l) => l.trim()).filter(Boolean);
  // certutil's last line names the failed verb; the one before it is the system message.
  const message = lines.filter((l) => !/0x8[0-9a-fA-F]{7}/.test(l)).pop()?.replace(/^CertUtil: /, '') ?? '';
  return { kind: kindOf(hresult), ...(hresult ? { hresult } : {}), ...(symbol ? { symbol } : {}), message: message || 'certutil failed' };
}

/** A PowerShell envelope failure in the same terms. */
export function psToWindowsError(f: PsFailure): ParsedWindowsError {
  let kind = kindOf(f.hresult);
  if (kind === 'other') {
    const c = classifyPsFailure(f);
    if (c !== 'other') kind = c;
  }
  return { kind, ...(f.hresult ? { hresult: f.hresult } : {}), message: f.message };
}

const ListSchema = z.array(z.object({
  Thumbprint: z.string().regex(/^[0-9A-Fa-f]{40}$/),
  HasPrivateKey: z.boolean().optional(),
  RawData: z.union([z.array(z.number().int().min(0).max(255)).min(1), z.string().min(1)]),
}));

export interface ListedCertificate {
  thumbprint: string;
  hasPrivateKey: boolean;
  pem: string;
}

/** The `data` of the list script: an array (or one unwrapped object, or null for none). */
export function parsePowershellList(data: unknown): ListedCertificate[] {
  if (data === null || data === undefined || data === '') return [];
  const raw = Array.isArray(data) ? data : [data];
  return ListSchema.parse(raw).map((c) => {
    const b64 = typeof c.RawData === 'string' ? c.RawData : Buffer.from(c.RawData).toString('base64');
    return {
      thumbprint: c.Thumbprint.toUpperCase(),
      hasPrivateKey: c.HasPrivateKey ?? true,
      pem: `-----BEGIN CERTIFICATE-----\n${b64.match(/.{1,64}/g)!.join('\n')}\n-----END CERTIFICATE-----\n`,
    };
  });
}

export function sha1Thumbprint(pem: string): string {
  return createHash('sha1').update(new X509Certificate(pem).raw).digest('hex').toUpperCase();
}

/** Whether certutil's view of the certificate names the TPM provider (a registered name, the same in every language). */
export function showsTpmProvider(stdout: string): boolean {
  return stdout.includes(TPM_PROVIDER);
}

export interface WindowsStoreOptions {
  /** SkipTPM=true: always a software key. */
  skipTpm: boolean;
  workDir: string;
  run?: CommandRunner;
}

/**
 * The user's personal store `CurrentUser\My`, for a key that arrives as PEM (the SCEP path's PKCS#12; the device
 * key itself is created in place by win32-cng.ts). RSA keys go into the TPM
 * (Microsoft Platform Crypto Provider) when SkipTPM is not set; ECDSA keys never do, because certutil's TPM
 * import of ECDSA keys is known to fail or leave an unusable key on Windows 10. Every other case, and every
 * TPM failure, uses the software key storage provider. The key must be non-exportable, which is checked by
 * trying to export it after every import. Decisions come from exit codes, HRESULTs and JSON only.
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
    try {
      return await this.run(cmd);
    } catch (e) {
      throw new AgentError('local', 'STORE_TOOL_MISSING', `${cmd.file} could not be started to ${what}: ${(e as Error).message}.`,
        'certutil.exe and powershell.exe are part of Windows; check that System32 is on PATH and not blocked by policy.');
    }
  }

  private fail(what: string, err: ParsedWindowsError): AgentError {
    const detail = `${err.message}${err.hresult ? ` (${err.hresult}${err.symbol ? ` ${err.symbol}` : ''})` : ''}`;
    const remedy: Record<WindowsFailure, string> = {
      'access-denied': 'The user task must run as the signed-in user; check that security software does not block certutil/PowerShell from the user\'s certificate store.',
      'wrong-password': 'Windows before 10 1709 (e.g. LTSB 2016) cannot read the AES-256 PKCS#12 format; update Windows, or use the key created in place (no PKCS#12).',
      'already-exists': 'Run again; the agent removes the existing entry first.',
      'key-not-exportable': 'The key is non-exportable by design; nothing to do.',
      'not-found': 'Run again with --debug; the store changed while the agent was working.',
      'tpm-unavailable': 'Set SkipTPM=true to keep keys in software, or check the TPM in tpm.msc.',
      'tpm-import-unsupported': 'Set SkipTPM=true; the agent falls back to software keys where the TPM import is known to fail.',
      other: 'Run again with --debug and give the output to the help desk.',
    };
    return new AgentError('local', `WINDOWS_STORE_${err.kind.toUpperCase().replace(/-/g, '_')}`, `Could not ${what} in CurrentUser\\My: ${detail}.`, remedy[err.kind]);
  }

  private async ps(cmd: Command, what: string): Promise<{ ok: true; data: unknown } | { ok: false; err: ParsedWindowsError }> {
    const answer = parsePsAnswer(await this.exec(cmd, what));
    return answer.ok ? answer : { ok: false, err: psToWindowsError(answer) };
  }

  private async listAll(): Promise<ListedCertificate[]> {
    const a = await this.ps(win32Commands.list(), 'list certificates');
    if (!a.ok) throw this.fail('list certificates', a.err);
    try {
      return parsePowershellList(a.data);
    } catch (e) {
      throw new AgentError('local', 'WINDOWS_STORE_OTHER', `The certificate list from PowerShell could not be read: ${(e as Error).message}.`, 'Run again with --debug.');
    }
  }

  async list(): Promise<StoredCertificate[]> {
    return (await this.listAll()).filter((c) => c.hasPrivateKey).map(({ thumbprint, pem }) => ({ id: thumbprint, pem, info: describeCertificate(parseCertificate(pem)) }));
  }

  /** True when the key can be exported (an export attempt succeeded): never acceptable for the device key. */
  async isExportable(thumbprint: string): Promise<boolean> {
    const tmp = fs.mkdtempSync(path.join(ensurePrivateDir(this.opts.workDir), 'exp-'));
    try {
      const res = await this.exec(win32Commands.tryExport(thumbprint, path.join(tmp, 'probe.pfx'), oneTimePassword()), 'check that the key cannot be exported');
      return res.code === 0;
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  }

  async install(req: InstallRequest): Promise<StoredCertificate> {
    const thumbprint = sha1Thumbprint(req.certPem);
    const tmp = fs.mkdtempSync(path.join(ensurePrivateDir(this.opts.workDir), 'pfx-'));
    let provider = SOFTWARE_PROVIDER;
    try {
      for (const [i, pem] of req.chainPem.entries()) {
        const f = path.join(tmp, `ca-${i}.cer`);
        fs.writeFileSync(f, pem, { mode: 0o600 });
        const res = await this.exec(win32Commands.addIntermediate(f), 'add the issuing CA');
        if (res.code !== 0 && parseCertutilError(res).kind !== 'already-exists') throw this.fail('add the issuing CA to the Intermediate store', parseCertutilError(res));
      }
      const password = oneTimePassword();
      const pfx = path.join(tmp, 'device.pfx');
      fs.writeFileSync(pfx, await buildPkcs12({ keyPem: req.keyPem, certPem: req.certPem, friendlyName: req.label, password }), { mode: 0o600 });

      const rsa = createPrivateKey(req.keyPem).asymmetricKeyType === 'rsa';
      this.tpmFallbackReason = this.opts.skipTpm ? 'SkipTPM=true' : !rsa ? 'certutil cannot import ECDSA keys into the TPM (known Windows 10 failure); the key created in place avoids the import' : undefined;
      if (!this.tpmFallbackReason && (await this.tryTpm(pfx, password, thumbprint))) provider = TPM_PROVIDER;
      else {
        const a = await this.ps(win32Commands.importSoftware(pfx, password), 'import the certificate');
        if (!a.ok && a.err.kind !== 'already-exists') throw this.fail('import the certificate', a.err);
      }
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
    const listed = (await this.listAll()).find((c) => c.thumbprint === thumbprint);
    if (!listed || !listed.hasPrivateKey) {
      throw new AgentError('local', 'WINDOWS_STORE_OTHER', 'The certificate was imported into CurrentUser\\My but is not listed with its private key afterwards.', 'Run again with --debug; if it repeats, run with --forceRenewal.');
    }
    if (await this.isExportable(thumbprint)) {
      // Never leave an exportable device key behind.
      await this.remove(thumbprint);
      throw new AgentError('local', 'WINDOWS_KEY_EXPORTABLE', 'Windows imported the device key as exportable, so it was removed again.', 'Report this with the --debug output; the previous certificate is restored.');
    }
    this.lastProvider = provider;
    return { id: thumbprint, pem: listed.pem, info: describeCertificate(parseCertificate(listed.pem)) };
  }

  /** Imports into the TPM; true when the key is there, false (with a reason) to fall back to software. */
  private async tryTpm(pfx: string, password: string, thumbprint: string): Promise<boolean> {
    const res = await this.exec(win32Commands.importTpm(pfx, password), 'import the certificate into the TPM');
    if (res.code !== 0) {
      const err = parseCertutilError(res);
      if (err.kind === 'access-denied' || err.kind === 'wrong-password') throw this.fail('import the certificate into the TPM', err);
      this.tpmFallbackReason = `the TPM import failed (${err.hresult ?? `exit ${res.code}`}${err.symbol ? ` ${err.symbol}` : ''}): ${err.message}`;
      return false;
    }
    // Trust the result only when certutil lists the certificate with the TPM provider and Windows sees its key.
    const show = await this.exec(win32Commands.show(thumbprint), 'read the certificate');
    const listed = (await this.listAll()).find((c) => c.thumbprint === thumbprint);
    if (show.code === 0 && showsTpmProvider(show.stdout) && listed?.hasPrivateKey) return true;
    this.tpmFallbackReason = `the TPM import could not be verified (${show.code !== 0 ? `certutil exit ${show.code}` : !showsTpmProvider(show.stdout) ? 'not in the TPM provider' : 'no private key'})`;
    await this.remove(thumbprint);
    return false;
  }

  async remove(id: string): Promise<void> {
    const a = await this.ps(win32Commands.remove(id), 'remove the certificate');
    if (!a.ok && a.err.kind !== 'not-found') throw this.fail('remove the certificate and its key', a.err);
  }
}
