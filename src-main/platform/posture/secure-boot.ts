import type { Command } from '../../base/exec.js';
import { hex, postureCommand, psFailure } from './powershell.js';
import { firstLine, parseJsonOr, result, tryRun, type PostureCheck, type PostureContext, type PostureResult } from './types.js';

const ID = 'secure-boot';
const TITLE = 'Secure Boot';

// ---------------------------------------------------------------- Linux: the SecureBoot EFI variable (readable by every user), mokutil as a second witness

export const EFI_DIR = '/sys/firmware/efi';
/** EFI_GLOBAL_VARIABLE's SecureBoot: 4 bytes of attributes, then one byte, 1 = enabled. */
export const SECURE_BOOT_VAR = '/sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c';
export const linuxBootCommands = { sbState: (): Command => ({ file: 'mokutil', args: ['--sb-state'] }) };

export function parseSecureBootVar(bytes: Buffer | undefined): boolean | undefined {
  return bytes && bytes.length >= 5 ? bytes[4] === 1 : undefined;
}

const LINUX_REMEDY = 'Turn on Secure Boot in the computer\'s firmware (UEFI) setup, usually under Boot or Security; ask IT first, as some drivers must be signed for it.';

async function linux(ctx: PostureContext): Promise<PostureResult> {
  const evidence: string[] = [];
  if (!ctx.exists('/sys/firmware')) {
    return result({ check: ID, title: TITLE, status: 'UNKNOWN', summary: 'The firmware is not visible from here.', why: '/sys/firmware is absent (a container, or sysfs not mounted)', evidence: ['/sys/firmware: absent'], remedy: 'Ask IT to check Secure Boot on the host.' });
  }
  if (!ctx.exists(EFI_DIR)) {
    evidence.push(`${EFI_DIR}: absent (booted in legacy BIOS mode)`);
    return result({ check: ID, title: TITLE, status: 'FAIL', summary: 'This machine booted in legacy BIOS mode, which has no Secure Boot.', evidence, facts: { uefi: false, secureBoot: false },
      remedy: 'Switch the firmware to UEFI boot with Secure Boot on; this usually needs a reinstall or conversion, so ask IT.' });
  }
  const v = parseSecureBootVar(ctx.readBytes(SECURE_BOOT_VAR));
  evidence.push(`${SECURE_BOOT_VAR.replace(/^.*\//, 'efivars/')}: ${v === undefined ? 'unreadable' : v ? '1 (enabled)' : '0 (disabled)'}`);
  const mok = await tryRun(ctx, linuxBootCommands.sbState());
  if (!mok.missing) evidence.push(`mokutil --sb-state: ${firstLine(mok.stdout) || firstLine(mok.stderr)}`);
  if (v === true) return result({ check: ID, title: TITLE, status: 'PASS', summary: 'Secure Boot is on.', evidence, facts: { uefi: true, secureBoot: true } });
  if (v === false) return result({ check: ID, title: TITLE, status: 'FAIL', summary: 'Secure Boot is off.', evidence, facts: { uefi: true, secureBoot: false }, remedy: LINUX_REMEDY });
  return result({ check: ID, title: TITLE, status: 'UNKNOWN', summary: 'The Secure Boot variable could not be read.', why: 'efivarfs is not mounted or the SecureBoot variable is missing', evidence, remedy: 'Ask IT to check Secure Boot in the firmware setup.' });
}

// ---------------------------------------------------------------- Windows: the SecureBoot State key (any user), Confirm-SecureBootUEFI (administrator)

export const win32BootScripts = {
  /** UEFISecureBootEnabled: 1 on, 0 off; the key is absent on legacy BIOS machines. Readable without administrator rights. */
  registry: "Get-ItemProperty -LiteralPath 'HKLM:\\SYSTEM\\CurrentControlSet\\Control\\SecureBoot\\State' -ErrorAction SilentlyContinue | Select-Object UEFISecureBootEnabled | ConvertTo-Json -Compress",
  /** True/False on UEFI; throws (PlatformNotSupported / access denied) otherwise. */
  confirm: '@{ secureBoot = (Confirm-SecureBootUEFI) } | ConvertTo-Json -Compress',
};
export const win32BootCommands = {
  registry: (): Command => postureCommand(win32BootScripts.registry),
  confirm: (): Command => postureCommand(win32BootScripts.confirm),
};

export function judgeWin32Boot(registry: { code: number; stdout: string }, confirm?: { code: number; stdout: string; stderr: string }): PostureResult {
  const reg = registry.code === 0 ? parseJsonOr<{ UEFISecureBootEnabled?: number | null }>(registry.stdout.trim()) : undefined;
  const value = reg?.UEFISecureBootEnabled;
  const evidence = [`SecureBoot\\State UEFISecureBootEnabled: ${typeof value === 'number' ? value : 'absent'}`];
  const remedy = 'Turn on Secure Boot in the UEFI firmware setup (Settings → System → Recovery → Advanced startup → UEFI Firmware Settings); ask IT first.';
  if (value === 1) return result({ check: ID, title: TITLE, status: 'PASS', summary: 'Secure Boot is on.', evidence, facts: { uefi: true, secureBoot: true } });
  if (value === 0) return result({ check: ID, title: TITLE, status: 'FAIL', summary: 'Secure Boot is off.', evidence, facts: { uefi: true, secureBoot: false }, remedy });
  if (confirm) {
    const fail = psFailure({ ...confirm });
    if (!fail) {
      const j = parseJsonOr<{ secureBoot?: boolean }>(confirm.stdout.trim());
      evidence.push(`Confirm-SecureBootUEFI: ${String(j?.secureBoot)}`);
      if (j?.secureBoot === true) return result({ check: ID, title: TITLE, status: 'PASS', summary: 'Secure Boot is on.', evidence, facts: { uefi: true, secureBoot: true } });
      if (j?.secureBoot === false) return result({ check: ID, title: TITLE, status: 'FAIL', summary: 'Secure Boot is off.', evidence, facts: { uefi: true, secureBoot: false }, remedy });
    } else {
      evidence.push(`Confirm-SecureBootUEFI: ${fail.error}${hex(fail.hresult)}`);
      if (/NotSupported/i.test(fail.error)) return result({ check: ID, title: TITLE, status: 'FAIL', summary: 'This computer boots in legacy BIOS mode, which has no Secure Boot.', evidence, facts: { uefi: false, secureBoot: false }, remedy });
      if (fail.accessDenied) return result({ check: ID, title: TITLE, status: 'UNKNOWN', summary: 'Secure Boot could not be read.', why: 'needs administrator rights (the device task reads it as SYSTEM)', needsPrivilege: true, evidence });
    }
  }
  return result({ check: ID, title: TITLE, status: 'UNKNOWN', summary: 'Secure Boot could not be read.', why: 'the SecureBoot State key is absent and Confirm-SecureBootUEFI did not answer', evidence, remedy: 'Ask IT to check Secure Boot on this computer.' });
}

async function win32(ctx: PostureContext): Promise<PostureResult> {
  const reg = await tryRun(ctx, win32BootCommands.registry());
  const first = judgeWin32Boot(reg);
  if (first.status !== 'UNKNOWN') return first;
  return judgeWin32Boot(reg, await tryRun(ctx, win32BootCommands.confirm()));
}

// ---------------------------------------------------------------- macOS: T2 (system_profiler) and Apple silicon (bputil, root)

export const darwinBootCommands = {
  /** Intel Macs with a T2 chip: "ibridge_secure_boot" in the iBridge report. */
  ibridge: (): Command => ({ file: '/usr/sbin/system_profiler', args: ['SPiBridgeDataType', '-json'] }),
  /** Apple silicon: "Chip: Apple …" on the hardware report. */
  hardware: (): Command => ({ file: '/usr/sbin/system_profiler', args: ['SPHardwareDataType', '-json'] }),
  /** Apple silicon boot policy; needs root (the device task). */
  bootPolicy: (): Command => ({ file: '/usr/bin/bputil', args: ['-d'] }),
};

/** "Full Security" / "Medium Security" / "No Security" (T2), or bputil's "Security Mode: Full/Reduced/Permissive". */
export function parseMacSecurityMode(text: string): 'full' | 'reduced' | 'none' | undefined {
  const m = /ibridge_secure_boot"\s*:\s*"([^"]+)"|Security Mode:\s*(.+)/i.exec(text);
  const v = (m?.[1] ?? m?.[2] ?? '').toLowerCase();
  if (!v) return undefined;
  if (/full/.test(v)) return 'full';
  if (/medium|reduced/.test(v)) return 'reduced';
  if (/no security|permissive/.test(v)) return 'none';
  return undefined;
}

export function judgeMacBoot(mode: 'full' | 'reduced' | 'none' | undefined, evidence: string[], appleSilicon: boolean, privileged: boolean): PostureResult {
  const remedy = appleSilicon ? 'Restore Full Security: start up in Recovery (hold the power button), Utilities → Startup Security Utility → Full Security; ask IT first.' : 'Restore Full Security: start up in Recovery (Command-R), Utilities → Startup Security Utility → Full Security; ask IT first.';
  if (mode === 'full') return result({ check: ID, title: TITLE, status: 'PASS', summary: 'Secure boot is at Full Security.', evidence, facts: { secureBoot: true, mode } });
  if (mode) return result({ check: ID, title: TITLE, status: 'FAIL', summary: `Secure boot is at ${mode === 'reduced' ? 'Reduced/Medium' : 'No'} Security.`, evidence, facts: { secureBoot: false, mode }, remedy });
  if (appleSilicon && !privileged) return result({ check: ID, title: TITLE, status: 'UNKNOWN', summary: 'The boot policy of this Mac could not be read.', why: 'needs root: bputil reads the Apple silicon boot policy; the device task reads it', needsPrivilege: true, evidence });
  return result({ check: ID, title: TITLE, status: 'UNKNOWN', summary: 'This Mac reports no secure-boot mode.', why: 'neither a T2 chip nor Apple silicon answered (an older Intel Mac has no secure boot)', evidence, remedy: 'Ask IT whether this Mac model supports secure boot.' });
}

async function darwin(ctx: PostureContext): Promise<PostureResult> {
  const hw = await tryRun(ctx, darwinBootCommands.hardware());
  const appleSilicon = /"chip_type"\s*:\s*"Apple/i.test(hw.stdout);
  const evidence = [`system_profiler SPHardwareDataType: ${appleSilicon ? 'Apple silicon' : 'Intel'}`];
  if (appleSilicon) {
    if (!ctx.privileged) return judgeMacBoot(undefined, evidence, true, false);
    const bp = await tryRun(ctx, darwinBootCommands.bootPolicy());
    evidence.push(`bputil -d: ${bp.code === 0 ? firstLine(/Security Mode:.*$/m.exec(bp.stdout)?.[0] ?? '') : `exit ${bp.code}`}`);
    return judgeMacBoot(parseMacSecurityMode(bp.stdout), evidence, true, true);
  }
  const ib = await tryRun(ctx, darwinBootCommands.ibridge());
  const mode = parseMacSecurityMode(ib.stdout);
  evidence.push(`system_profiler SPiBridgeDataType: ${mode ?? 'no secure boot mode'}`);
  return judgeMacBoot(mode, evidence, false, ctx.privileged);
}

export const secureBoot: PostureCheck = {
  id: ID,
  title: TITLE,
  run: (ctx) => (ctx.platform === 'win32' ? win32(ctx) : ctx.platform === 'darwin' ? darwin(ctx) : linux(ctx)),
};
