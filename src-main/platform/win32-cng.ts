import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { AgentError } from '../base/errors.js';
import { runCommand, type Command, type CommandResult, type CommandRunner } from '../base/exec.js';
import { ensurePrivateDir } from '../base/fsutil.js';
import type { DeviceKeyStore, KeyAlgorithmName, KeyStoreInfo, SignHash, StoreKey } from './keystore.js';
import type { StoredCertificate } from './types.js';
import { parsePsAnswer, type PsFailure } from './win32-powershell.js';
import { parseCertutilError, sha1Thumbprint, showsTpmProvider, SOFTWARE_PROVIDER, TPM_PROVIDER, WindowsCertificateStore } from './win32-store.js';
import { describeCertificate, parseCertificate } from '../base/certinfo.js';

/**
 * The Windows device key store (issue 13, Windows part): the key is CREATED inside a CNG key storage provider —
 * the Microsoft Platform Crypto Provider (the TPM), else the Microsoft Software Key Storage Provider — with export
 * policy None, and every signature (the CSR the agent builds, each renewal token) is made by that provider. The
 * agent hashes (SHA-256) and hands the provider only the digest; it gets back the signature and the public key
 * blob, never the key. `attach` files the issued certificate in CurrentUser\My and links it to the key with
 * `certutil -repairstore`, so Edge and Chrome (which read CurrentUser\My through CAPI/CNG) present it.
 *
 * One PowerShell script per operation, inputs through the environment, one line of JSON out (zod-checked), a
 * deadline on every call. These scripts need FullLanguage: CNG is reachable from PowerShell only through .NET
 * (CngKey, ECDsaCng, RSACng), which ConstrainedLanguage forbids. Each script checks the language mode first and
 * answers `DTA_CONSTRAINED_LANGUAGE`, which the agent turns into a message saying what to do.
 *
 * AppLocker/WDAC fleets (issue 25.2): under script enforcement PowerShell runs interactive input and
 * `-EncodedCommand` blocks in ConstrainedLanguage, and only script FILES the policy allows (a path or publisher
 * rule; with WDAC, signed by a trusted signer) in FullLanguage (about_Language_Modes; "Script enforcement with
 * Windows Defender Application Control", learn.microsoft.com/windows/security/application-security/
 * application-control/app-control-for-business/design/script-enforcement). So the same scripts ship as .ps1 files
 * beside the headless program (`resources\headless\ps\dta-cng-*.ps1`, written by build/headless.mjs from
 * cngScriptFiles()) and run with `-File` when present and intact — an admin signs them (Set-AuthenticodeSignature)
 * or allows the folder; the agent checks each file is exactly our script (plus an Authenticode signature block)
 * before running it, and otherwise falls back to -EncodedCommand (which works wherever FullLanguage is the rule).
 * The certreq route (key made by `certreq -new`, no .NET) was dropped: it cannot sign the JWS renewal token under
 * ConstrainedLanguage, so it could never be the whole key store.
 */

/** Per-call deadline: a TPM key generation takes up to a few seconds; PowerShell's own start about one. */
export const CNG_TIMEOUT_MS = 30_000;

const PS_ARGS = ['-NoLogo', '-NoProfile', '-NonInteractive', '-ExecutionPolicy', 'Bypass', '-OutputFormat', 'Text', '-EncodedCommand'];
const T = 'System.Security.Cryptography';

/**
 * Like win32-powershell's envelope, but for FullLanguage scripts: the language mode is checked first, and the
 * failure reports the innermost exception's HRESULT (a .NET method call wraps the CryptographicException, whose
 * HResult is the NCrypt/TBS status, in a MethodInvocationException). Only property reads in the catch block.
 */
export function cngEnvelope(body: string): string {
  return [
    "$ErrorActionPreference = 'Stop'",
    "$ProgressPreference = 'SilentlyContinue'",
    '$result = $null',
    'try {',
    "  if ([string]$ExecutionContext.SessionState.LanguageMode -ne 'FullLanguage') { throw 'DTA_CONSTRAINED_LANGUAGE' }",
    body.split('\n').map((l) => `  ${l}`).join('\n'),
    '  ConvertTo-Json -InputObject @{ ok = $true; data = $result } -Compress -Depth 6',
    '} catch {',
    '  $e = $_.Exception',
    '  while ($e.InnerException) { $e = $e.InnerException }',
    '  ConvertTo-Json -InputObject @{ ok = $false; hresult = $e.HResult; id = $_.FullyQualifiedErrorId; category = [string]$_.CategoryInfo.Category; message = $e.Message } -Compress',
    '  exit 1',
    '}',
  ].join('\n');
}

const openKey = [
  `$prov = New-Object -TypeName ${T}.CngProvider -ArgumentList $env:DTA_PROVIDER`,
];
/**
 * Whether the key can leave its provider is decided by trying (issue 25): a TPM key can report an export policy that
 * is not what was asked (the Platform Crypto Provider keeps its own), so the flag is only reported. A plaintext
 * PKCS#8 export that succeeds means exportable; the certificate is checked once more with `certutil -exportPFX`
 * at attach (an encrypted export, which AllowExport alone permits). Nothing exported is kept or answered.
 */
const publicAnswer = [
  '$exportable = $true',
  `try { $null = $key.Export([${T}.CngKeyBlobFormat]::Pkcs8PrivateBlob) } catch { $exportable = $false }`,
  '$result = @{ exists = $true; name = $key.KeyName; provider = $key.Provider.Provider; algorithm = $key.Algorithm.Algorithm; exportPolicy = [string]$key.ExportPolicy; exportable = $exportable;',
  `  publicBlob = [System.Convert]::ToBase64String($key.Export([${T}.CngKeyBlobFormat]::GenericPublicBlob)) }`,
];

export const win32CngScripts = {
  /**
   * Whether the provider can make a key here: a NAMED P-256 key, made and deleted at once. Not an unnamed one: in
   * .NET Framework a key created with a $null name is ephemeral, and the Microsoft Platform Crypto Provider refuses
   * ephemeral keys with NTE_BAD_FLAGS 0x80090009 ("Invalid flags specified"), which read as "no TPM" every time
   * (learn.microsoft.com/dotnet/api/system.security.cryptography.cngkey.create: a key "without a name" is "an
   * ephemeral key"). The name is never a device key's (probeKeyName), and the key is deleted in any case.
   */
  probe: cngEnvelope([
    ...openKey,
    `$p = New-Object -TypeName ${T}.CngKeyCreationParameters`,
    '$p.Provider = $prov',
    `$p.ExportPolicy = [${T}.CngExportPolicies]::None`,
    `$k = [${T}.CngKey]::Create([${T}.CngAlgorithm]::ECDsaP256, $env:DTA_KEY_NAME, $p)`,
    'try { $result = @{ provider = $env:DTA_PROVIDER; name = $k.KeyName } } finally { $k.Delete() }',
  ].join('\n')),
  /** A new persisted key, export policy None (non-exportable), signing only, no UI; answers its public blob. */
  create: cngEnvelope([
    ...openKey,
    `$p = New-Object -TypeName ${T}.CngKeyCreationParameters`,
    '$p.Provider = $prov',
    `$p.ExportPolicy = [${T}.CngExportPolicies]::None`,
    `$p.KeyUsage = [${T}.CngKeyUsages]::Signing`,
    `$p.KeyCreationOptions = [${T}.CngKeyCreationOptions]::None`,
    `$alg = [${T}.CngAlgorithm]::ECDsaP256`,
    "if ($env:DTA_ALGORITHM -eq 'RSA-2048') {",
    `  $alg = [${T}.CngAlgorithm]::Rsa`,
    // RSA keys also decrypt: a SCEP CA encrypts its answer to the device key (issue 25.5), decrypted in the provider.
    `  $p.KeyUsage = [${T}.CngKeyUsages]::Signing -bor [${T}.CngKeyUsages]::Decryption`,
    `  $length = New-Object -TypeName ${T}.CngProperty -ArgumentList 'Length', ([System.BitConverter]::GetBytes([int]2048)), ([${T}.CngPropertyOptions]::None)`,
    '  $p.Parameters.Add($length)',
    '}',
    `$key = [${T}.CngKey]::Create($alg, $env:DTA_KEY_NAME, $p)`,
    'try {',
    ...publicAnswer.map((l) => `  ${l}`),
    '} finally { $key.Dispose() }',
  ].join('\n')),
  /** The key's public blob, or exists = false when the provider no longer has it. */
  find: cngEnvelope([
    ...openKey,
    `if (-not [${T}.CngKey]::Exists($env:DTA_KEY_NAME, $prov)) { $result = @{ exists = $false } } else {`,
    `  $key = [${T}.CngKey]::Open($env:DTA_KEY_NAME, $prov)`,
    '  try {',
    ...publicAnswer.map((l) => `    ${l}`),
    '  } finally { $key.Dispose() }',
    '}',
  ].join('\n')),
  /**
   * Signs a digest: ECDSA (SHA-256) answers IEEE P1363 r‖s (ECDsaCng), RSA PKCS#1 v1.5 (RSACng) over the digest of
   * DTA_HASH (SHA256, or SHA1/SHA512 for a SCEP CA that offers only those).
   */
  sign: cngEnvelope([
    ...openKey,
    `$key = [${T}.CngKey]::Open($env:DTA_KEY_NAME, $prov)`,
    'try {',
    '  $digest = [System.Convert]::FromBase64String($env:DTA_DIGEST)',
    "  if ($key.Algorithm.Algorithm -eq 'RSA') {",
    `    $rsa = New-Object -TypeName ${T}.RSACng -ArgumentList $key`,
    `    $sig = $rsa.SignHash($digest, (New-Object -TypeName ${T}.HashAlgorithmName -ArgumentList $env:DTA_HASH), [${T}.RSASignaturePadding]::Pkcs1)`,
    '  } else {',
    `    $ec = New-Object -TypeName ${T}.ECDsaCng -ArgumentList $key`,
    '    $sig = $ec.SignHash($digest)',
    '  }',
    '  $result = @{ signature = [System.Convert]::ToBase64String($sig) }',
    '} finally { $key.Dispose() }',
  ].join('\n')),
  /**
   * RSA PKCS#1 v1.5 decryption in the provider (RSACng.Decrypt; the key never leaves it): the SCEP CA's answer is
   * encrypted to the device key (issue 25.5 — the same route the idp path's key takes, so SCEP needs no PFX).
   */
  decrypt: cngEnvelope([
    ...openKey,
    `$key = [${T}.CngKey]::Open($env:DTA_KEY_NAME, $prov)`,
    'try {',
    `  $rsa = New-Object -TypeName ${T}.RSACng -ArgumentList $key`,
    `  $plain = $rsa.Decrypt([System.Convert]::FromBase64String($env:DTA_CIPHERTEXT), [${T}.RSAEncryptionPadding]::Pkcs1)`,
    '  $result = @{ plaintext = [System.Convert]::ToBase64String($plain) }',
    '} finally { $key.Dispose() }',
  ].join('\n')),
  /** Deletes the key from its provider; already gone answers "absent". */
  remove: cngEnvelope([
    ...openKey,
    `if (-not [${T}.CngKey]::Exists($env:DTA_KEY_NAME, $prov)) { $result = 'absent' } else {`,
    `  $key = [${T}.CngKey]::Open($env:DTA_KEY_NAME, $prov)`,
    '  $key.Delete()',
    "  $result = 'deleted'",
    '}',
  ].join('\n')),
};

function ps(script: string, env: Record<string, string>): Command {
  return { file: 'powershell.exe', args: [...PS_ARGS, Buffer.from(script, 'utf16le').toString('base64')], env, timeoutMs: CNG_TIMEOUT_MS };
}

// ---- the shipped script files (AppLocker/WDAC) -----------------------------------------------------------------

/** Arguments for a script file: the same session options, `-File` last (everything after it is the script's). */
const PS_FILE_ARGS = ['-NoLogo', '-NoProfile', '-NonInteractive', '-ExecutionPolicy', 'Bypass', '-OutputFormat', 'Text', '-File'];
const FILE_HEADER = '# Device Trust Agent: CNG key store script (generated from src-main/platform/win32-cng.ts; sign, do not edit).';

export type CngScriptName = keyof typeof win32CngScripts;

/** The .ps1 files to ship, byte for byte (CRLF, ASCII: Set-AuthenticodeSignature signs them as they are). */
export function cngScriptFiles(): { name: CngScriptName; file: string; content: string }[] {
  return (Object.keys(win32CngScripts) as CngScriptName[]).map((name) => ({
    name, file: `dta-cng-${name}.ps1`, content: `${FILE_HEADER}\r\n${win32CngScripts[name].replace(/\r?\n/g, '\r\n')}\r\n`,
  }));
}

/**
 * Whether a shipped file is exactly our script: the generated text, optionally after a UTF-8 BOM and followed by the
 * Authenticode block Set-AuthenticodeSignature appends ("# SIG # Begin signature block" … "# SIG # End signature
 * block", about_Signing). Anything else (an edit, another script) is not run.
 */
export function isOurScriptFile(text: string, expected: string): boolean {
  const body = text.replace(/^\uFEFF/, '');
  if (body === expected) return true;
  if (!body.startsWith(expected)) return false;
  return /^# SIG # Begin signature block\r?\n(?:# [A-Za-z0-9+/=]*\r?\n)+# SIG # End signature block\r?\n?$/.test(body.slice(expected.length));
}

/** The script-file form of a CNG command, when `dir` holds the intact file for its script; else undefined. */
export function shippedScriptCommand(cmd: Command, dir: string, read: (f: string) => string | undefined = readIfThere): Command | undefined {
  if (cmd.file !== 'powershell.exe' || cmd.args.at(-2) !== '-EncodedCommand') return undefined;
  const script = Buffer.from(cmd.args.at(-1)!, 'base64').toString('utf16le');
  const entry = cngScriptFiles().find((f) => win32CngScripts[f.name] === script);
  if (!entry) return undefined;
  const file = path.win32.join(dir, entry.file);
  const text = read(file);
  if (text === undefined || !isOurScriptFile(text, entry.content)) return undefined;
  return { ...cmd, args: [...PS_FILE_ARGS, file] };
}

function readIfThere(f: string): string | undefined {
  try {
    return fs.readFileSync(f, 'utf8');
  } catch {
    return undefined;
  }
}

/** HashAlgorithmName names (learn.microsoft.com/dotnet/api/system.security.cryptography.hashalgorithmname). */
const CNG_HASH: Record<SignHash, string> = { sha1: 'SHA1', sha256: 'SHA256', sha512: 'SHA512' };

/** Every command line of the store, as data. */
export const win32CngCommands = {
  /** `name`: a fresh probe key name (probeKeyName()), so two agents probing at once never meet. */
  probe: (provider: string, name: string = probeKeyName()): Command => ps(win32CngScripts.probe, { DTA_PROVIDER: provider, DTA_KEY_NAME: name }),
  create: (provider: string, name: string, algorithm: KeyAlgorithmName): Command => ps(win32CngScripts.create, { DTA_PROVIDER: provider, DTA_KEY_NAME: name, DTA_ALGORITHM: algorithm }),
  find: (provider: string, name: string): Command => ps(win32CngScripts.find, { DTA_PROVIDER: provider, DTA_KEY_NAME: name }),
  sign: (provider: string, name: string, digest: Buffer, hash: SignHash = 'sha256'): Command => ps(win32CngScripts.sign, { DTA_PROVIDER: provider, DTA_KEY_NAME: name, DTA_DIGEST: digest.toString('base64'), DTA_HASH: CNG_HASH[hash] }),
  decrypt: (provider: string, name: string, ciphertext: Buffer): Command => ps(win32CngScripts.decrypt, { DTA_PROVIDER: provider, DTA_KEY_NAME: name, DTA_CIPHERTEXT: ciphertext.toString('base64') }),
  remove: (provider: string, name: string): Command => ps(win32CngScripts.remove, { DTA_PROVIDER: provider, DTA_KEY_NAME: name }),
  addIntermediate: (file: string): Command => ({ file: 'certutil.exe', args: ['-user', '-f', '-addstore', 'CA', file], timeoutMs: CNG_TIMEOUT_MS }),
  addCertificate: (file: string): Command => ({ file: 'certutil.exe', args: ['-user', '-f', '-addstore', 'My', file], timeoutMs: CNG_TIMEOUT_MS }),
  /** Links the certificate to the key with the same public key in the provider (CERT_KEY_PROV_INFO); -silent: never a UI. */
  repair: (provider: string, thumbprint: string): Command => ({ file: 'certutil.exe', args: ['-user', '-silent', '-csp', provider, '-repairstore', 'My', thumbprint], timeoutMs: CNG_TIMEOUT_MS }),
  show: (thumbprint: string): Command => ({ file: 'certutil.exe', args: ['-user', '-store', 'My', thumbprint], timeoutMs: CNG_TIMEOUT_MS }),
};

// ---- answers ---------------------------------------------------------------------------------------------------

const PublicAnswer = z.union([
  z.object({ exists: z.literal(false) }),
  z.object({ exists: z.literal(true), name: z.string(), provider: z.string(), algorithm: z.string(), exportPolicy: z.string(), exportable: z.boolean(), publicBlob: z.string().min(8) }),
]);

/** The probe's key: never a device key's name (parseCngKeyId refuses it), so nothing else ever opens or deletes it. */
export function probeKeyName(): string {
  return `DeviceTrustProbe-${crypto.randomBytes(16).toString('hex')}`;
}
const SignAnswer = z.object({ signature: z.string().min(8) });
const DecryptAnswer = z.object({ plaintext: z.string() });

export type CngAnswer = { ok: true; data: unknown } | ({ ok: false; timedOut?: boolean } & PsFailure);

/** The JSON line of a script; without one, the CLIXML error of stderr (the same envelope as every PowerShell call). */
export function parseCngAnswer(res: CommandResult): CngAnswer {
  if (res.code === 124) return { ok: false, timedOut: true, message: 'PowerShell did not answer in time' };
  return parsePsAnswer(res);
}

export type CngFailureKind = 'constrained-language' | 'no-tpm' | 'tpm-not-ready' | 'tpm-locked-out' | 'key-missing' | 'access-denied' | 'exists' | 'not-supported' | 'timeout' | 'other';

/** HRESULTs (not translated by Windows) and PowerShell error ids → what happened. */
const HRESULT_KINDS: Record<string, CngFailureKind> = {
  '0x8028400f': 'no-tpm', // TBS_E_TPM_NOT_FOUND: no compatible TPM on this computer
  '0x80284008': 'no-tpm', // TBS_E_SERVICE_NOT_RUNNING: the TPM Base Services are stopped
  '0x80090035': 'no-tpm', // NTE_DEVICE_NOT_FOUND
  '0x80090030': 'tpm-not-ready', // NTE_DEVICE_NOT_READY: TPM present but not ready (disabled, not owned)
  '0x80280921': 'tpm-locked-out', // TPM_20_E_LOCKOUT: dictionary-attack lockout
  '0x80280098': 'tpm-locked-out', // TPM_E_DEFEND_LOCK_RUNNING (TPM 1.2 wording of the same)
  '0x80090016': 'key-missing', // NTE_BAD_KEYSET: keyset does not exist
  '0x80090011': 'key-missing', // NTE_NOT_FOUND
  '0x80070005': 'access-denied', // E_ACCESSDENIED
  '0x80090010': 'access-denied', // NTE_PERM
  '0x8009000f': 'exists', // NTE_EXISTS
  '0x80090029': 'not-supported', // NTE_NOT_SUPPORTED
  '0x80090009': 'not-supported', // NTE_BAD_FLAGS
};

export function classifyCngFailure(a: Extract<CngAnswer, { ok: false }>): CngFailureKind {
  if (a.timedOut) return 'timeout';
  const id = a.id ?? '';
  if (/^DTA_CONSTRAINED_LANGUAGE|ConstrainedLanguage|CannotCreateTypeConstrainedLanguage|ConversionSupportedOnlyToCoreTypes/i.test(id)) return 'constrained-language';
  if (a.hresult && HRESULT_KINDS[a.hresult]) return HRESULT_KINDS[a.hresult]!;
  if (/UnauthorizedAccess|PermissionDenied/i.test(id)) return 'access-denied';
  return 'other';
}

/** What to do, per failure: the agent shows it under the error. */
export const CNG_REMEDIES: Record<CngFailureKind, string> = {
  'constrained-language': 'PowerShell runs in ConstrainedLanguage here (AppLocker/WDAC), and CNG keys are reachable only from FullLanguage. An administrator signs the agent\'s script files (resources\\headless\\ps\\dta-cng-*.ps1 in the install folder: Set-AuthenticodeSignature with a certificate the policy trusts) or allows that folder in an AppLocker script rule; see docs/VERIFY-WINDOWS.md.',
  'no-tpm': 'This computer has no usable TPM (or the TPM Base Services are stopped: sc start tbs). The key is made in the software key storage provider instead; set SkipTPM=true to say so on purpose.',
  'tpm-not-ready': 'The TPM is present but not ready: open tpm.msc (or run Get-Tpm as administrator) and turn it on / clear it as your administrator advises.',
  'tpm-locked-out': 'The TPM is in dictionary-attack lockout: wait for the lockout to expire, or an administrator runs Reset-TpmLockout (or tpm.msc → Reset lockout).',
  'key-missing': 'The device key is no longer in its provider: run device-trust-agent run --forceRenewal to make a new one.',
  'access-denied': 'Windows refused access to the key: the user task must run as the signed-in user who made it; check that security software does not block PowerShell.',
  exists: 'A key with this name already exists: run again (a new name is chosen each time).',
  'not-supported': 'The key storage provider does not support this key: set keyAlgorithm to P-256 (or RSA-2048) or SkipTPM=true.',
  timeout: `PowerShell did not answer within ${CNG_TIMEOUT_MS / 1000} s: check that powershell.exe is not blocked or held by security software, and run again.`,
  other: 'Run again with --debug and give the output to the help desk.',
};

// ---- public key blobs ------------------------------------------------------------------------------------------

const BCRYPT_ECDSA_PUBLIC_P256_MAGIC = 0x31534345; // 'ECS1'
const BCRYPT_ECDSA_PUBLIC_GENERIC_MAGIC = 0x50444345; // 'ECDP' (named-curve keys on Windows 10+)
const BCRYPT_RSAPUBLIC_MAGIC = 0x31415352; // 'RSA1'

const b64u = (b: Buffer) => b.toString('base64url');

/** BCRYPT_ECCPUBLIC_BLOB / BCRYPT_RSAPUBLIC_BLOB (CngKeyBlobFormat.GenericPublicBlob) → DER SubjectPublicKeyInfo. */
export function cngPublicBlobToSpki(blob: Buffer): { spki: Buffer; algorithm: KeyAlgorithmName } {
  const bad = (why: string) => new AgentError('local', 'WINDOWS_KEY_BLOB', `Windows answered a public key this agent cannot read (${why}).`, CNG_REMEDIES.other);
  if (blob.length < 8) throw bad('too short');
  const magic = blob.readUInt32LE(0);
  if (magic === BCRYPT_ECDSA_PUBLIC_P256_MAGIC || magic === BCRYPT_ECDSA_PUBLIC_GENERIC_MAGIC) {
    const cb = blob.readUInt32LE(4);
    if (cb !== 32 || blob.length !== 8 + 2 * cb) throw bad(`EC key of ${cb * 8} bits, not P-256`);
    const jwk = { kty: 'EC', crv: 'P-256', x: b64u(blob.subarray(8, 40)), y: b64u(blob.subarray(40, 72)) };
    return { spki: crypto.createPublicKey({ key: jwk, format: 'jwk' }).export({ type: 'spki', format: 'der' }), algorithm: 'P-256' };
  }
  if (magic === BCRYPT_RSAPUBLIC_MAGIC) {
    if (blob.length < 24) throw bad('RSA header too short');
    const bits = blob.readUInt32LE(4);
    const cbExp = blob.readUInt32LE(8);
    const cbMod = blob.readUInt32LE(12);
    if (blob.length < 24 + cbExp + cbMod) throw bad('RSA blob truncated');
    if (bits !== 2048) throw bad(`RSA key of ${bits} bits, not 2048`);
    const e = blob.subarray(24, 24 + cbExp);
    const n = blob.subarray(24 + cbExp, 24 + cbExp + cbMod);
    const jwk = { kty: 'RSA', n: b64u(n), e: b64u(e) };
    return { spki: crypto.createPublicKey({ key: jwk, format: 'jwk' }).export({ type: 'spki', format: 'der' }), algorithm: 'RSA-2048' };
  }
  throw bad(`unknown blob magic 0x${magic.toString(16)}`);
}

/** The reverse, for tests and fixtures: what Windows exports for a public key. */
export function spkiToCngPublicBlob(publicKey: crypto.KeyObject): Buffer {
  const jwk = publicKey.export({ format: 'jwk' }) as { kty: string; x?: string; y?: string; n?: string; e?: string };
  if (jwk.kty === 'EC') {
    const head = Buffer.alloc(8);
    head.writeUInt32LE(BCRYPT_ECDSA_PUBLIC_P256_MAGIC, 0);
    head.writeUInt32LE(32, 4);
    return Buffer.concat([head, Buffer.from(jwk.x!, 'base64url'), Buffer.from(jwk.y!, 'base64url')]);
  }
  const e = Buffer.from(jwk.e!, 'base64url');
  const n = Buffer.from(jwk.n!, 'base64url');
  const head = Buffer.alloc(24);
  head.writeUInt32LE(BCRYPT_RSAPUBLIC_MAGIC, 0);
  head.writeUInt32LE(n.length * 8, 4);
  head.writeUInt32LE(e.length, 8);
  head.writeUInt32LE(n.length, 12);
  return Buffer.concat([head, e, n]);
}

// ---- key ids ---------------------------------------------------------------------------------------------------

/** Key id = "<tpm|sw>:<CNG key name>": the provider is part of the handle, so find/sign/remove know where to look. */
export function cngKeyId(provider: string, name: string): string {
  return `${provider === TPM_PROVIDER ? 'tpm' : 'sw'}:${name}`;
}

export function parseCngKeyId(id: string): { provider: string; name: string; protection: 'tpm' | 'software' } | undefined {
  const m = /^(tpm|sw):(DeviceTrust-[0-9a-f]{32})$/.exec(id);
  if (!m) return undefined;
  return m[1] === 'tpm' ? { provider: TPM_PROVIDER, name: m[2]!, protection: 'tpm' } : { provider: SOFTWARE_PROVIDER, name: m[2]!, protection: 'software' };
}

// ---- the store -------------------------------------------------------------------------------------------------

export interface WindowsCngKeyStoreOptions {
  skipTpm: boolean;
  workDir: string;
  run?: CommandRunner;
  /** The certificate store the certificates go to (CurrentUser\My); made from the options when absent. */
  certificates?: WindowsCertificateStore;
  /** How long the agent waits for one command before giving up (default: the command's own deadline + 1 s). */
  deadlineMs?: number;
  /** Where the shipped .ps1 files are (resources\headless\ps): run with -File when intact (AppLocker/WDAC). */
  scriptDir?: string;
  /** Reads a shipped script file (tests); default fs. */
  readScript?: (file: string) => string | undefined;
}

export class WindowsCngKeyStore implements DeviceKeyStore {
  private readonly run: CommandRunner;
  readonly certificates: WindowsCertificateStore;
  private chosen: Promise<{ provider: string; info: KeyStoreInfo }> | undefined;
  /** Certificate thumbprint → key id, for the certificates attached in this process. */
  private readonly attached = new Map<string, string>();
  /** Keys read in this process (their public half): sign checks signatures against it without another run. */
  private readonly known = new Map<string, StoreKey>();

  constructor(private readonly opts: WindowsCngKeyStoreOptions) {
    this.run = opts.run ?? runCommand;
    this.certificates = opts.certificates ?? new WindowsCertificateStore({ skipTpm: opts.skipTpm, workDir: opts.workDir, run: this.run });
  }

  /** Runs one command with its deadline (also enforced here, whatever runner is used). */
  private async exec(cmd: Command, what: string): Promise<CommandResult> {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<CommandResult>((resolve) => {
      const ms = this.opts.deadlineMs ?? (cmd.timeoutMs ?? CNG_TIMEOUT_MS) + 1000;
      timer = setTimeout(() => resolve({ code: 124, stdout: '', stderr: `(no answer after ${ms} ms)` }), ms);
    });
    try {
      return await Promise.race([this.run(cmd), deadline]);
    } catch (e) {
      throw new AgentError('local', 'STORE_TOOL_MISSING', `${cmd.file} could not be started to ${what}: ${(e as Error).message}.`,
        'powershell.exe and certutil.exe are part of Windows; check that System32 is on PATH and not blocked by policy.');
    } finally {
      clearTimeout(timer);
    }
  }

  private fail(what: string, a: Extract<CngAnswer, { ok: false }>): AgentError {
    const kind = classifyCngFailure(a);
    const code = `WINDOWS_KEY_${kind.toUpperCase().replace(/-/g, '_')}`;
    const detail = a.timedOut ? `no answer within ${CNG_TIMEOUT_MS / 1000} s` : `${a.message}${a.hresult ? ` (${a.hresult})` : ''}`;
    return new AgentError('local', code, `Could not ${what}: ${detail}.`, CNG_REMEDIES[kind]);
  }

  private async script(cmd: Command, what: string): Promise<CngAnswer> {
    const shipped = this.opts.scriptDir ? shippedScriptCommand(cmd, this.opts.scriptDir, this.opts.readScript) : undefined;
    return parseCngAnswer(await this.exec(shipped ?? cmd, what));
  }

  /**
   * TPM first (unless SkipTPM): a named key is made and deleted in the Platform Crypto Provider to see that
   * it works; when it does not, the reason (no TPM, not ready, lockout, error) is kept for `status`. FullLanguage
   * is required either way: ConstrainedLanguage is an error, not a fallback.
   */
  private choose(): Promise<{ provider: string; info: KeyStoreInfo }> {
    this.chosen ??= (async () => {
      let reason = 'SkipTPM=true';
      if (!this.opts.skipTpm) {
        const a = await this.script(win32CngCommands.probe(TPM_PROVIDER), 'check the TPM');
        if (a.ok) return { provider: TPM_PROVIDER, info: { protection: 'tpm', reason: 'TPM 2.0 through the Microsoft Platform Crypto Provider', description: `TPM (${TPM_PROVIDER}), non-exportable` } };
        const kind = classifyCngFailure(a);
        if (kind === 'constrained-language' || kind === 'access-denied' || kind === 'timeout') throw this.fail('check the TPM', a);
        reason = kind === 'no-tpm' ? `no TPM (${a.hresult ?? a.message})`
          : kind === 'tpm-not-ready' ? `the TPM is not ready (${a.hresult})`
            : kind === 'tpm-locked-out' ? `the TPM is in dictionary-attack lockout (${a.hresult})`
              : `the TPM provider failed (${a.hresult ?? a.message})`;
      }
      return { provider: SOFTWARE_PROVIDER, info: { protection: 'software', reason, description: `${SOFTWARE_PROVIDER}, non-exportable` } };
    })();
    this.chosen.catch(() => { this.chosen = undefined; });
    return this.chosen;
  }

  async info(): Promise<KeyStoreInfo> {
    return (await this.choose()).info;
  }

  private readKey(a: Extract<CngAnswer, { ok: true }>, what: string, provider: string): StoreKey | undefined {
    const p = PublicAnswer.safeParse(a.data);
    if (!p.success) throw new AgentError('local', 'WINDOWS_KEY_ANSWER', `Windows answered ${what} in an unexpected form.`, CNG_REMEDIES.other);
    if (!p.data.exists) return undefined;
    if (p.data.exportable) {
      throw new AgentError('local', 'WINDOWS_KEY_EXPORTABLE', `The device key ${p.data.name} can be exported (export policy ${p.data.exportPolicy}); the agent never uses an exportable key.`,
        'Run device-trust-agent run --forceRenewal to make a new, non-exportable key.');
    }
    const { spki, algorithm } = cngPublicBlobToSpki(Buffer.from(p.data.publicBlob, 'base64'));
    const key: StoreKey = { id: cngKeyId(provider, p.data.name), algorithm, spki, protection: provider === TPM_PROVIDER ? 'tpm' : 'software' };
    this.known.set(key.id, key);
    return key;
  }

  async generate(algorithm: KeyAlgorithmName, _label: string): Promise<StoreKey> {
    const { provider } = await this.choose();
    const name = `DeviceTrust-${crypto.randomBytes(16).toString('hex')}`;
    const a = await this.script(win32CngCommands.create(provider, name, algorithm), 'create the device key');
    if (!a.ok) throw this.fail(`create the device key in the ${provider}`, a);
    const key = this.readKey(a, 'the new key', provider);
    if (!key) throw new AgentError('local', 'WINDOWS_KEY_ANSWER', 'Windows created the key but did not answer its public key.', CNG_REMEDIES.other);
    if (key.algorithm !== algorithm) throw new AgentError('local', 'WINDOWS_KEY_ANSWER', `Windows created a ${key.algorithm} key where ${algorithm} was asked.`, CNG_REMEDIES['not-supported']);
    return key;
  }

  async find(id: string): Promise<StoreKey | undefined> {
    const k = parseCngKeyId(id);
    if (!k) return undefined;
    const a = await this.script(win32CngCommands.find(k.provider, k.name), 'find the device key');
    if (!a.ok) {
      if (classifyCngFailure(a) === 'key-missing') {
        this.known.delete(id);
        return undefined;
      }
      throw this.fail('read the device key', a);
    }
    return this.readKey(a, 'the device key', k.provider);
  }

  /** Hashes here, signs there; the signature is checked against the key's public half before it is used. */
  async sign(id: string, data: Buffer, hash: SignHash = 'sha256'): Promise<Buffer> {
    const k = parseCngKeyId(id);
    if (!k) throw new AgentError('local', 'KEY_MISSING', `${id} is not a Windows device key handle.`, CNG_REMEDIES['key-missing']);
    const key0 = this.known.get(id) ?? (await this.find(id));
    if (!key0) throw this.fail('sign with the device key', { ok: false, hresult: '0x80090016', message: 'the key is gone' });
    const h = key0.algorithm === 'P-256' ? 'sha256' : hash; // ECDSA is always SHA-256
    const digest = crypto.createHash(h).update(data).digest();
    const a = await this.script(win32CngCommands.sign(k.provider, k.name, digest, h), 'sign with the device key');
    if (!a.ok) throw this.fail('sign with the device key', a);
    const s = SignAnswer.safeParse(a.data);
    if (!s.success) throw new AgentError('local', 'WINDOWS_KEY_ANSWER', 'Windows answered the signature in an unexpected form.', CNG_REMEDIES.other);
    const signature = Buffer.from(s.data.signature, 'base64');
    const pub = crypto.createPublicKey({ key: key0.spki, format: 'der', type: 'spki' });
    const good = key0.algorithm === 'P-256'
      ? signature.length === 64 && crypto.verify('sha256', data, { key: pub, dsaEncoding: 'ieee-p1363' }, signature)
      : crypto.verify(h, data, pub, signature);
    if (!good) throw new AgentError('local', 'WINDOWS_KEY_BAD_SIGNATURE', 'The signature Windows made does not verify with the device key.', CNG_REMEDIES.other);
    return signature;
  }

  /** RSA keys: PKCS#1 v1.5 decryption in the provider (SCEP's answer key); the plaintext is the only thing returned. */
  async decrypt(id: string, ciphertext: Buffer): Promise<Buffer> {
    const k = parseCngKeyId(id);
    if (!k) throw new AgentError('local', 'KEY_MISSING', `${id} is not a Windows device key handle.`, CNG_REMEDIES['key-missing']);
    const a = await this.script(win32CngCommands.decrypt(k.provider, k.name, ciphertext), 'decrypt with the device key');
    if (!a.ok) throw this.fail('decrypt with the device key', a);
    const d = DecryptAnswer.safeParse(a.data);
    if (!d.success) throw new AgentError('local', 'WINDOWS_KEY_ANSWER', 'Windows answered the decryption in an unexpected form.', CNG_REMEDIES.other);
    return Buffer.from(d.data.plaintext, 'base64');
  }

  /**
   * Adds the issuing CAs (Intermediate store) and the certificate (CurrentUser\My), links it to the key with
   * `certutil -repairstore` in the key's provider, then checks what a browser will see: listed with a private key,
   * in the TPM provider when the key is, and not exportable. A failed check removes the certificate again.
   */
  async attach(id: string, req: { certPem: string; chainPem: string[]; label: string }): Promise<StoredCertificate> {
    const k = parseCngKeyId(id);
    if (!k) throw new AgentError('local', 'KEY_MISSING', `${id} is not a Windows device key handle.`, CNG_REMEDIES['key-missing']);
    const key = await this.find(id);
    if (!key) throw this.fail('file the certificate', { ok: false, hresult: '0x80090016', message: 'the device key is no longer in its provider' });
    const certSpki = crypto.createPublicKey(req.certPem).export({ type: 'spki', format: 'der' });
    if (!certSpki.equals(key.spki)) {
      throw new AgentError('local', 'WINDOWS_KEY_MISMATCH', 'The issued certificate is not for the device key in the store.', 'Run device-trust-agent run --forceRenewal.');
    }
    const thumbprint = sha1Thumbprint(req.certPem);
    const tmp = fs.mkdtempSync(path.join(ensurePrivateDir(this.opts.workDir), 'att-'));
    try {
      for (const [i, pem] of req.chainPem.entries()) {
        const f = path.join(tmp, `ca-${i}.cer`);
        fs.writeFileSync(f, pem, { mode: 0o600 });
        const res = await this.exec(win32CngCommands.addIntermediate(f), 'add the issuing CA');
        if (res.code !== 0 && parseCertutilError(res).kind !== 'already-exists') throw this.certutilFail('add the issuing CA to the Intermediate store', res);
      }
      const cer = path.join(tmp, 'device.cer');
      fs.writeFileSync(cer, req.certPem, { mode: 0o600 });
      const added = await this.exec(win32CngCommands.addCertificate(cer), 'add the certificate');
      if (added.code !== 0 && parseCertutilError(added).kind !== 'already-exists') throw this.certutilFail('add the certificate to CurrentUser\\My', added);
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
    const repaired = await this.exec(win32CngCommands.repair(k.provider, thumbprint), 'link the certificate to its key');
    if (repaired.code !== 0) {
      await this.certificates.remove(thumbprint).catch(() => undefined);
      throw this.certutilFail('link the certificate to its key (certutil -repairstore)', repaired);
    }
    const stored = (await this.certificates.list()).find((c) => c.id === thumbprint);
    if (!stored) {
      await this.certificates.remove(thumbprint).catch(() => undefined);
      throw new AgentError('local', 'WINDOWS_KEY_NOT_JOINED', 'The certificate was added but Windows does not list it with its private key.', 'Run device-trust-agent run --forceRenewal; the key may have been deleted.');
    }
    if (k.provider === TPM_PROVIDER) {
      const show = await this.exec(win32CngCommands.show(thumbprint), 'read the certificate');
      if (show.code !== 0 || !showsTpmProvider(show.stdout)) {
        await this.certificates.remove(thumbprint).catch(() => undefined);
        throw new AgentError('local', 'WINDOWS_KEY_NOT_IN_TPM', 'The certificate was linked to a key that is not in the TPM, so it was removed again.', 'Run again with --debug; set SkipTPM=true to use software keys on purpose.');
      }
    }
    if (await this.certificates.isExportable(thumbprint)) {
      await this.certificates.remove(thumbprint).catch(() => undefined);
      throw new AgentError('local', 'WINDOWS_KEY_EXPORTABLE', 'Windows lets the device key be exported, so the certificate was removed again.', 'Report this with the --debug output.');
    }
    this.attached.set(thumbprint, id);
    return { ...stored, info: describeCertificate(parseCertificate(stored.pem)) };
  }

  private certutilFail(what: string, res: CommandResult): AgentError {
    if (res.code === 124) return this.fail(what, { ok: false, timedOut: true, message: 'certutil did not answer in time' });
    const err = parseCertutilError(res);
    const kind = err.hresult ? HRESULT_KINDS[err.hresult] ?? (err.kind === 'access-denied' ? 'access-denied' : 'other') : 'other';
    return new AgentError('local', `WINDOWS_KEY_${kind.toUpperCase().replace(/-/g, '_')}`,
      `Could not ${what}: ${err.message}${err.hresult ? ` (${err.hresult}${err.symbol ? ` ${err.symbol}` : ''})` : ''}.`, CNG_REMEDIES[kind]);
  }

  keyIdOf(storeId: string): string | undefined {
    return this.attached.get(storeId.toUpperCase());
  }

  /** Removes the certificates whose public key is this key's (with -DeleteKey), then the key itself. */
  async remove(id: string): Promise<void> {
    const k = parseCngKeyId(id);
    if (!k) return;
    const key = await this.find(id).catch(() => undefined);
    if (key) {
      for (const c of await this.certificates.list().catch(() => [])) {
        let spki: Buffer | undefined;
        try {
          spki = crypto.createPublicKey(c.pem).export({ type: 'spki', format: 'der' });
        } catch {
          spki = undefined;
        }
        if (spki?.equals(key.spki)) await this.certificates.remove(c.id);
      }
    }
    const a = await this.script(win32CngCommands.remove(k.provider, k.name), 'delete the device key');
    if (!a.ok && classifyCngFailure(a) !== 'key-missing') throw this.fail('delete the device key', a);
    for (const [t, v] of this.attached) if (v === id) this.attached.delete(t);
    this.known.delete(id);
  }

  async close(): Promise<void> {
    /* nothing held open: each operation is one PowerShell run */
  }
}
