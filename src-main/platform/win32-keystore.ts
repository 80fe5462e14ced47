import fs from 'node:fs';
import path from 'node:path';
import { describeCertificate, parseCertificate } from '../base/certinfo.js';
import { AgentError } from '../base/errors.js';
import { runCommand, type Command, type CommandResult, type CommandRunner } from '../base/exec.js';
import { ensurePrivateDir } from '../base/fsutil.js';
import type { StoredCertificate } from './types.js';
import { envelope, parsePsAnswer, powershell } from './win32-powershell.js';
import { parseCertutilError, psToWindowsError, sha1Thumbprint, showsTpmProvider, SOFTWARE_PROVIDER, TPM_PROVIDER, WindowsCertificateStore, type ParsedWindowsError } from './win32-store.js';

/**
 * Not wired into createPlatform: the DeviceKeyStore on Windows is win32-cng.ts (CNG through PowerShell/.NET), which
 * can also sign the JWS renewal token. This certreq route stays for a ConstrainedLanguage-only fleet (see below).
 *
 * The device key created IN PLACE by Windows (issue 13, Windows part): `certreq -new` makes the key pair inside
 * the Microsoft Platform Crypto Provider (the TPM) — or, without a TPM or with SkipTPM, inside the Software Key
 * Storage Provider — non-exportable, and writes only the PKCS#10 request, signed by that key. `certreq -accept`
 * later joins the issued certificate to the waiting key in CurrentUser\My. No PKCS#12, no key file, no import:
 * which also ends the PFX-encryption problem of Windows before 1709.
 *
 * Renewal: the proof of possession of the current key is a certreq renewal request (`RenewalCert = <thumbprint>`):
 * the new PKCS#10 wrapped in a PKCS#7/CMS SignedData signed by the CURRENT certificate's key through its provider,
 * with the current certificate inside. No in-box tool signs arbitrary bytes (a JWS) with a CNG key under
 * ConstrainedLanguage, so a JWT renewal token cannot be produced on a locked-down Windows; the org must accept
 * this CMS form (see the report / PROTOCOL change request).
 *
 * Everything is decided from exit codes, HRESULTs, files written and PowerShell JSON; nothing reads translated text.
 */
export type WinKeyAlgorithm = 'P-256' | 'RSA-2048';

export interface CertreqRequest {
  /** Subject DN, e.g. "CN=<deviceId>, OU=Device Trust". */
  subject: string;
  algorithm: WinKeyAlgorithm;
  provider: typeof TPM_PROVIDER | typeof SOFTWARE_PROVIDER;
  /** Shown in certmgr.msc next to the certificate once accepted. */
  friendlyName: string;
  /** Renewal: the thumbprint of the certificate whose key signs the request (PKCS#7 renewal request). */
  renewalOf?: string;
  /** Name/value pairs carried signed inside the request (device id, issued-at): bind the renewal proof. */
  attributes?: Record<string, string>;
}

function infString(s: string): string {
  if (/["\r\n]/.test(s)) throw new AgentError('local', 'WINDOWS_KEY_BAD_INPUT', 'A certificate request value contains a quote or a line break.', 'Report this with the --debug output.');
  return `"${s}"`;
}

/** The certreq policy (INF) file: documented keys of [NewRequest] (certreq, "Request policy INF file"). */
export function certreqInf(req: CertreqRequest): string {
  const ecdsa = req.algorithm === 'P-256';
  const lines = [
    '[Version]',
    'Signature="$Windows NT$"',
    '',
    '[NewRequest]',
    `Subject = ${infString(req.subject)}`,
    `KeyAlgorithm = ${ecdsa ? 'ECDSA_P256' : 'RSA'}`,
    ...(ecdsa ? [] : ['KeyLength = 2048']),
    `ProviderName = ${infString(req.provider)}`,
    // Non-exportable, in the user's (not the machine's) key set, no UI: the key never leaves the provider.
    'Exportable = FALSE',
    'MachineKeySet = FALSE',
    'Silent = TRUE',
    'UseExistingKeySet = FALSE',
    'KeyUsage = 0x80',
    'HashAlgorithm = SHA256',
    `FriendlyName = ${infString(req.friendlyName)}`,
    ...(req.renewalOf ? [`RenewalCert = ${req.renewalOf}`, 'RequestType = PKCS7'] : ['RequestType = PKCS10']),
    '',
    '[EnhancedKeyUsageExtension]',
    'OID = 1.3.6.1.5.5.7.3.2',
  ];
  const attrs = Object.entries(req.attributes ?? {});
  if (attrs.length) {
    lines.push('', '[RequestAttributes]');
    for (const [k, v] of attrs) {
      if (!/^[A-Za-z][A-Za-z0-9]*$/.test(k)) throw new AgentError('local', 'WINDOWS_KEY_BAD_INPUT', `Request attribute name ${k} is not a plain name.`);
      lines.push(`${k} = ${infString(v)}`);
    }
  }
  return lines.join('\r\n') + '\r\n';
}

export const win32KeyScripts = {
  /** Requests waiting for their certificate (certreq -new leaves the key there): subject and thumbprint. */
  pending: envelope("$result = @(Get-ChildItem -LiteralPath 'Cert:\\CurrentUser\\REQUEST' | ForEach-Object { @{ Thumbprint = $_.Thumbprint; Subject = $_.Subject } })"),
  /** Drops one pending request and the key made for it. */
  discardPending: envelope([
    "$path = 'Cert:\\CurrentUser\\REQUEST\\' + $env:DTA_THUMBPRINT",
    'Remove-Item -LiteralPath $path -DeleteKey',
    "$result = 'removed'",
  ].join('\n')),
  /**
   * The mTLS check with the key where it lives: Windows does the TLS handshake with the certificate from the
   * store (Node cannot reach a CNG key). Answers the server's JSON body as a string.
   */
  mtlsCheck: envelope([
    "$cert = Get-Item -LiteralPath ('Cert:\\CurrentUser\\My\\' + $env:DTA_THUMBPRINT)",
    '$answer = Invoke-WebRequest -Uri $env:DTA_URL -Certificate $cert -UseBasicParsing -TimeoutSec 30',
    '$result = @{ status = $answer.StatusCode; body = $answer.Content }',
  ].join('\n')),
};

export const win32KeyCommands = {
  /** -q: no UI; -user: the current user's key set and store; -f: overwrite the output file. */
  newRequest: (inf: string, out: string): Command => ({ file: 'certreq.exe', args: ['-new', '-q', '-user', '-f', inf, out] }),
  /** Joins the issued certificate to its waiting key and puts it into CurrentUser\My. */
  accept: (certFile: string): Command => ({ file: 'certreq.exe', args: ['-accept', '-q', '-user', certFile] }),
  pending: (): Command => powershell(win32KeyScripts.pending),
  discardPending: (thumbprint: string): Command => powershell(win32KeyScripts.discardPending, { DTA_THUMBPRINT: thumbprint }),
  mtlsCheck: (thumbprint: string, url: string): Command => powershell(win32KeyScripts.mtlsCheck, { DTA_THUMBPRINT: thumbprint, DTA_URL: url }),
};

/** The request certreq wrote: base64 between BEGIN/END lines (NEW CERTIFICATE REQUEST for PKCS#10, PKCS7 for renewal). */
export function readCertreqOutput(text: string): { der: Buffer; kind: 'pkcs10' | 'pkcs7' } {
  const m = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/.exec(text);
  const body = (m ? m[2]! : text).replace(/[^A-Za-z0-9+/=]/g, '');
  if (!body) throw new AgentError('local', 'WINDOWS_KEY_OTHER', 'certreq wrote an empty request.', 'Run again with --debug.');
  const label = m?.[1] ?? '';
  const der = Buffer.from(body, 'base64');
  // PKCS#7 ContentInfo starts with the signedData OID 1.2.840.113549.1.7.2 right after its outer SEQUENCE header.
  const pkcs7 = /PKCS7|CMS/.test(label) || der.includes(Buffer.from('06092a864886f70d010702', 'hex'));
  return { der, kind: pkcs7 ? 'pkcs7' : 'pkcs10' };
}

export function csrPem(der: Buffer): string {
  return `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64').match(/.{1,64}/g)!.join('\n')}\n-----END CERTIFICATE REQUEST-----\n`;
}

export interface CreatedRequest {
  /** PKCS#10 (enrollment) or PKCS#7 wrapping the PKCS#10 (renewal), DER. */
  der: Buffer;
  kind: 'pkcs10' | 'pkcs7';
  /** Where the new key was created. */
  provider: string;
  /** Why it is not in the TPM (SkipTPM, no TPM, the TPM refused), when it is not. */
  fallbackReason?: string;
}

export interface WindowsKeyStoreOptions {
  skipTpm: boolean;
  workDir: string;
  run?: CommandRunner;
}

/**
 * Key store on Windows: generate (inside the provider) → request signed by it → attach the certificate →
 * list / remove (through WindowsCertificateStore). Method names follow the Linux PKCS#11 key store's steps.
 */
export class WindowsKeyStore {
  private readonly run: CommandRunner;
  readonly certificates: WindowsCertificateStore;

  constructor(private readonly opts: WindowsKeyStoreOptions) {
    this.run = opts.run ?? runCommand;
    this.certificates = new WindowsCertificateStore({ skipTpm: opts.skipTpm, workDir: opts.workDir, ...(opts.run ? { run: opts.run } : {}) });
  }

  private async exec(cmd: Command, what: string): Promise<CommandResult> {
    try {
      return await this.run(cmd);
    } catch (e) {
      throw new AgentError('local', 'STORE_TOOL_MISSING', `${cmd.file} could not be started to ${what}: ${(e as Error).message}.`,
        'certreq.exe, certutil.exe and powershell.exe are part of Windows; check that System32 is on PATH and not blocked by policy.');
    }
  }

  private fail(what: string, err: ParsedWindowsError): AgentError {
    return new AgentError('local', `WINDOWS_KEY_${err.kind.toUpperCase().replace(/-/g, '_')}`,
      `Could not ${what}: ${err.message}${err.hresult ? ` (${err.hresult}${err.symbol ? ` ${err.symbol}` : ''})` : ''}.`,
      err.kind === 'access-denied' ? 'The user task must run as the signed-in user; check that security software does not block certreq.' : 'Run again with --debug and give the output to the help desk.');
  }

  private async certreq(req: CertreqRequest): Promise<{ res: CommandResult; out?: { der: Buffer; kind: 'pkcs10' | 'pkcs7' } }> {
    const tmp = fs.mkdtempSync(path.join(ensurePrivateDir(this.opts.workDir), 'req-'));
    try {
      const inf = path.join(tmp, 'request.inf');
      const out = path.join(tmp, 'request.req');
      fs.writeFileSync(inf, certreqInf(req), { mode: 0o600 });
      const res = await this.exec(win32KeyCommands.newRequest(inf, out), 'create the device key');
      if (res.code !== 0 || !fs.existsSync(out)) return { res };
      return { res, out: readCertreqOutput(fs.readFileSync(out, 'latin1')) };
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  }

  /**
   * Creates the key pair in the TPM (unless SkipTPM), falling back to the software provider when the TPM is
   * missing or refuses; returns the request the new key signed. Access denied is not a reason to fall back.
   */
  async generateRequest(base: Omit<CertreqRequest, 'provider'>): Promise<CreatedRequest> {
    let fallbackReason: string | undefined = this.opts.skipTpm ? 'SkipTPM=true' : undefined;
    if (!fallbackReason) {
      const tpm = await this.certreq({ ...base, provider: TPM_PROVIDER });
      if (tpm.out) return { ...tpm.out, provider: TPM_PROVIDER };
      const err = parseCertutilError(tpm.res);
      if (err.kind === 'access-denied') throw this.fail('create the device key in the TPM', err);
      fallbackReason = `the TPM could not create the key (${err.hresult ?? `exit ${tpm.res.code}`}${err.symbol ? ` ${err.symbol}` : ''})`;
    }
    const sw = await this.certreq({ ...base, provider: SOFTWARE_PROVIDER });
    if (!sw.out) throw this.fail('create the device key in the software key storage provider', parseCertutilError(sw.res));
    return { ...sw.out, provider: SOFTWARE_PROVIDER, fallbackReason };
  }

  /**
   * Joins the issued certificate to its key (`certreq -accept`), adds the issuing CAs, and checks the result:
   * listed with its private key, in the provider the key was made in, and NOT exportable (an export attempt fails).
   */
  async attachCertificate(certPem: string, chainPem: string[], expectedProvider: string): Promise<StoredCertificate> {
    const thumbprint = sha1Thumbprint(certPem);
    const tmp = fs.mkdtempSync(path.join(ensurePrivateDir(this.opts.workDir), 'acc-'));
    try {
      for (const [i, pem] of chainPem.entries()) {
        const f = path.join(tmp, `ca-${i}.cer`);
        fs.writeFileSync(f, pem, { mode: 0o600 });
        const res = await this.exec({ file: 'certutil.exe', args: ['-user', '-f', '-addstore', 'CA', f] }, 'add the issuing CA');
        if (res.code !== 0 && parseCertutilError(res).kind !== 'already-exists') throw this.fail('add the issuing CA to the Intermediate store', parseCertutilError(res));
      }
      const cer = path.join(tmp, 'device.cer');
      fs.writeFileSync(cer, certPem, { mode: 0o600 });
      const res = await this.exec(win32KeyCommands.accept(cer), 'attach the certificate to its key');
      if (res.code !== 0) throw this.fail('attach the certificate to its key (certreq -accept)', parseCertutilError(res));
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
    const stored = (await this.certificates.list()).find((c) => c.id === thumbprint);
    if (!stored) throw new AgentError('local', 'WINDOWS_KEY_NOT_JOINED', 'The certificate was accepted but Windows does not list it with its private key.', 'Run again with --forceRenewal; the key waiting for it may have been deleted.');
    if (expectedProvider === TPM_PROVIDER) {
      const show = await this.exec({ file: 'certutil.exe', args: ['-user', '-store', 'My', thumbprint] }, 'read the certificate');
      if (show.code !== 0 || !showsTpmProvider(show.stdout)) {
        await this.certificates.remove(thumbprint);
        throw new AgentError('local', 'WINDOWS_KEY_NOT_IN_TPM', 'The certificate was joined to a key that is not in the TPM, so it was removed again.', 'Run again with --debug; set SkipTPM=true to use software keys on purpose.');
      }
    }
    if (await this.certificates.isExportable(thumbprint)) {
      await this.certificates.remove(thumbprint);
      throw new AgentError('local', 'WINDOWS_KEY_EXPORTABLE', 'Windows created the device key as exportable, so it was removed again.', 'Report this with the --debug output.');
    }
    return { ...stored, info: describeCertificate(parseCertificate(stored.pem)) };
  }

  /** Drops requests (and their keys) left waiting with this subject, e.g. after an enrollment the org refused. */
  async discardPending(subject: string): Promise<number> {
    const a = parsePsAnswer(await this.exec(win32KeyCommands.pending(), 'list pending requests'));
    if (!a.ok) throw this.fail('list pending requests', psToWindowsError(a));
    const items = (Array.isArray(a.data) ? a.data : a.data ? [a.data] : []) as { Thumbprint?: string; Subject?: string }[];
    const norm = (s: string) => s.replace(/\s*,\s*/g, ',').toLowerCase();
    let n = 0;
    for (const it of items) {
      if (!it.Thumbprint || norm(it.Subject ?? '') !== norm(subject)) continue;
      const d = parsePsAnswer(await this.exec(win32KeyCommands.discardPending(it.Thumbprint), 'discard a pending request'));
      if (d.ok) n++;
    }
    return n;
  }

  list(): Promise<StoredCertificate[]> {
    return this.certificates.list();
  }

  remove(thumbprint: string): Promise<void> {
    return this.certificates.remove(thumbprint);
  }

  /** The mTLS check through Windows' own TLS with the key in its provider: the answer body, for the core's schema. */
  async mtlsCheck(thumbprint: string, url: string): Promise<{ status: number; body: string }> {
    const a = parsePsAnswer(await this.exec(win32KeyCommands.mtlsCheck(thumbprint, url), 'check the mTLS endpoint'));
    if (!a.ok) throw this.fail(`reach ${url} with the device certificate`, psToWindowsError(a));
    const d = a.data as { status?: unknown; body?: unknown };
    return { status: typeof d?.status === 'number' ? d.status : 0, body: typeof d?.body === 'string' ? d.body : '' };
  }
}
