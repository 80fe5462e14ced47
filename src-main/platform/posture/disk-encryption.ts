import type { Command } from '../../base/exec.js';
import { hex, postureCommand, psFailure } from './powershell.js';
import { asArray, firstLine, parseJsonOr, result, shown, tryRun, type PostureCheck, type PostureContext, type PostureResult } from './types.js';

const ID = 'disk-encryption';
const TITLE = 'Disk encryption';

// ---------------------------------------------------------------- Linux: LUKS/dm-crypt under "/"

export const linuxDiskCommands = {
  /** The device "/" is mounted from. */
  rootSource: (): Command => ({ file: 'findmnt', args: ['-J', '-n', '-o', 'SOURCE,FSTYPE,TARGET', '/'] }),
  /** The device and everything it is built on (-s: dependencies as children), with full paths. */
  chain: (device: string): Command => ({ file: 'lsblk', args: ['-J', '-s', '-p', '-o', 'NAME,TYPE,FSTYPE', device] }),
  /** Exit code 0 when the device carries a LUKS header (needs read access to the block device: root). */
  isLuks: (device: string): Command => ({ file: 'cryptsetup', args: ['isLuks', device] }),
  luksDump: (device: string): Command => ({ file: 'cryptsetup', args: ['luksDump', device] }),
  /** Active dm-crypt mappings (root only; where device-mapper exists). */
  dmCryptTable: (): Command => ({ file: 'dmsetup', args: ['table', '--target', 'crypt'] }),
};

export interface BlockNode {
  name: string;
  type: string;
  fstype: string | null;
  children?: BlockNode[];
}

/** `findmnt -J -n -o SOURCE,FSTYPE,TARGET /` → the source device (btrfs subvolume suffix "[/@]" removed). */
export function parseFindmnt(stdout: string): { source: string; fstype: string } | undefined {
  const j = parseJsonOr<{ filesystems?: { source?: string; fstype?: string }[] }>(stdout);
  const fs = j?.filesystems?.[0];
  if (!fs?.source) return undefined;
  return { source: fs.source.replace(/\[[^\]]*\]$/, ''), fstype: fs.fstype ?? '' };
}

/** `lsblk -J -s -p` → every node of the chain from the root's device down to the disks, in walk order. */
export function parseLsblkChain(stdout: string): BlockNode[] {
  const j = parseJsonOr<{ blockdevices?: BlockNode[] }>(stdout);
  const out: BlockNode[] = [];
  const walk = (n: BlockNode) => {
    out.push({ name: n.name, type: n.type, fstype: n.fstype ?? null });
    for (const c of n.children ?? []) walk(c);
  };
  for (const n of j?.blockdevices ?? []) walk(n);
  return out;
}

export interface ChainVerdict {
  encrypted: boolean;
  /** The dm-crypt layer, and the device holding its LUKS header (its parent in the chain). */
  cryptNode?: string;
  luksDevice?: string;
  layers: string;
}

/**
 * Whether the chain under "/" has a dm-crypt layer: lsblk's TYPE comes from sysfs (dm UUID prefix CRYPT-), so
 * "crypt" is the kernel's word, whatever udev knows. LVM on LUKS is root → lvm → crypt → part → disk.
 */
export function judgeChain(nodes: BlockNode[]): ChainVerdict {
  const layers = nodes.map((n) => `${n.type} ${n.name}${n.fstype ? ` (${n.fstype})` : ''}`).join(' → ');
  const i = nodes.findIndex((n) => n.type === 'crypt');
  if (i >= 0) {
    const holder = nodes.slice(i + 1).find((n) => n.fstype === 'crypto_LUKS') ?? nodes[i + 1];
    return { encrypted: true, cryptNode: nodes[i]!.name, ...(holder ? { luksDevice: holder.name } : {}), layers };
  }
  return { encrypted: false, layers };
}

export interface LuksHeader {
  version: number;
  cipher?: string;
  uuid?: string;
}

/** `cryptsetup luksDump` (LUKS1 and LUKS2 layouts): header version, the data cipher, the UUID. */
export function parseLuksDump(stdout: string): LuksHeader | undefined {
  const version = /^Version:\s*(\d+)/m.exec(stdout)?.[1];
  if (!version) return undefined;
  // LUKS2: "Data segments: … cipher: aes-xts-plain64"; LUKS1: "Cipher name: aes" + "Cipher mode: xts-plain64".
  const seg = /^Data segments:[\s\S]*?^\s+cipher:\s*(\S+)/m.exec(stdout)?.[1];
  const v1 = /^Cipher name:\s*(\S+)/m.exec(stdout)?.[1];
  const v1mode = /^Cipher mode:\s*(\S+)/m.exec(stdout)?.[1];
  const cipher = seg ?? (v1 ? `${v1}${v1mode ? `-${v1mode}` : ''}` : undefined);
  const uuid = /^UUID:\s*(\S+)/m.exec(stdout)?.[1];
  return { version: Number(version), ...(cipher ? { cipher } : {}), ...(uuid ? { uuid } : {}) };
}

/** `dmsetup table --target crypt`: "name: start length crypt cipher key iv_offset device offset". */
export function parseDmCryptTable(stdout: string): { name: string; cipher: string; device: string }[] {
  const out: { name: string; cipher: string; device: string }[] = [];
  for (const line of stdout.split('\n')) {
    const m = /^(\S+):\s+\d+\s+\d+\s+crypt\s+(\S+)\s+\S+\s+\d+\s+(\S+)/.exec(line.trim());
    if (m) out.push({ name: m[1]!, cipher: m[2]!, device: m[3]! });
  }
  return out;
}

/** Whether a block device carries a LUKS header, from cryptsetup's exit code; the dump adds version and cipher. */
export async function probeLuks(ctx: PostureContext, device: string): Promise<{ luks: boolean | undefined; header?: LuksHeader; evidence: string }> {
  const r = await tryRun(ctx, linuxDiskCommands.isLuks(device));
  if (r.missing) return { luks: undefined, evidence: 'cryptsetup is not installed' };
  // isLuks: 0 = LUKS, 1 = not LUKS (or unreadable: cryptsetup says so on stderr); 4 = cannot open the device.
  if (r.code !== 0 && r.code !== 1) return { luks: undefined, evidence: `cryptsetup isLuks ${device}: exit ${r.code} ${firstLine(r.stderr)}` };
  if (r.code === 1 && r.stderr.trim()) return { luks: undefined, evidence: `cryptsetup isLuks ${device}: ${firstLine(r.stderr)}` };
  if (r.code === 1) return { luks: false, evidence: `cryptsetup isLuks ${device}: no LUKS header` };
  const dump = await tryRun(ctx, linuxDiskCommands.luksDump(device));
  const header = dump.code === 0 ? parseLuksDump(dump.stdout) : undefined;
  return { luks: true, ...(header ? { header } : {}), evidence: `cryptsetup isLuks ${device}: LUKS${header ? `${header.version}${header.cipher ? `, cipher ${header.cipher}` : ''}` : ''}` };
}

async function linux(ctx: PostureContext): Promise<PostureResult> {
  const fm = await tryRun(ctx, linuxDiskCommands.rootSource());
  const root = fm.code === 0 ? parseFindmnt(fm.stdout) : undefined;
  if (!root) {
    return result({ check: ID, title: TITLE, status: 'UNKNOWN', summary: 'The device under / could not be found.', why: fm.missing ? 'findmnt (util-linux) is not installed' : `findmnt / failed: ${firstLine(fm.stderr)}`,
      evidence: [`${shown(linuxDiskCommands.rootSource())}: exit ${fm.code}`], remedy: 'Install util-linux, or ask IT to check disk encryption on this machine.' });
  }
  const evidence = [`findmnt /: ${root.source} (${root.fstype})`];
  if (!root.source.startsWith('/dev/')) {
    return result({ check: ID, title: TITLE, status: 'UNKNOWN', summary: `/ is mounted from ${root.source} (${root.fstype}), not from a block device.`,
      why: `${root.fstype || 'this filesystem'} on ${root.source} is not a block device this check can follow (a container, ZFS or a network root)`, evidence,
      remedy: 'Ask IT whether the disk holding this system is encrypted; this check cannot tell from inside it.' });
  }
  const ls = await tryRun(ctx, linuxDiskCommands.chain(root.source));
  const nodes = ls.code === 0 ? parseLsblkChain(ls.stdout) : [];
  if (!nodes.length) {
    return result({ check: ID, title: TITLE, status: 'UNKNOWN', summary: `The layers under ${root.source} could not be read.`, why: `lsblk -s ${root.source} failed: ${firstLine(ls.stderr) || `exit ${ls.code}`}`, evidence,
      remedy: 'Install util-linux (lsblk), or ask IT to check disk encryption on this machine.' });
  }
  const verdict = judgeChain(nodes);
  evidence.push(`lsblk -s ${root.source}: ${verdict.layers}`);
  if (verdict.encrypted) {
    const facts: Record<string, string | number | boolean> = { encrypted: true, layer: 'dm-crypt' };
    if (verdict.luksDevice) {
      const probe = await probeLuks(ctx, verdict.luksDevice);
      evidence.push(probe.evidence);
      if (probe.header) {
        facts.luksVersion = probe.header.version;
        if (probe.header.cipher) facts.cipher = probe.header.cipher;
      }
    }
    return result({ check: ID, title: TITLE, status: 'PASS', summary: `The system volume is encrypted (dm-crypt ${verdict.cryptNode}${verdict.luksDevice ? ` on ${verdict.luksDevice}` : ''}).`, evidence, facts });
  }
  return result({ check: ID, title: TITLE, status: 'FAIL', summary: `The system volume ${root.source} is not encrypted: no dm-crypt/LUKS layer under /.`, evidence, facts: { encrypted: false },
    remedy: 'Full-disk encryption is set up when the system is installed: ask IT to reinstall this machine with "Encrypt the new installation" (LUKS) selected, after backing up your files.' });
}

// ---------------------------------------------------------------- Windows: BitLocker

/** Get-BitLockerVolume needs administrator rights (the device task); Home editions lack it, so CIM is the fallback. */
export const win32DiskScripts = {
  bitlocker: "Get-BitLockerVolume -MountPoint $env:SystemDrive | Select-Object MountPoint, VolumeStatus, ProtectionStatus, EncryptionPercentage, EncryptionMethod | ConvertTo-Json -Compress",
  cim: "Get-CimInstance -Namespace 'root\\cimv2\\Security\\MicrosoftVolumeEncryption' -ClassName Win32_EncryptableVolume -Filter \"DriveLetter = '$env:SystemDrive'\" | Select-Object DriveLetter, ProtectionStatus, ConversionStatus | ConvertTo-Json -Compress",
};
export const win32DiskCommands = {
  bitlocker: (): Command => postureCommand(win32DiskScripts.bitlocker),
  cim: (): Command => postureCommand(win32DiskScripts.cim),
};

// ConvertTo-Json writes these enums as numbers (Windows PowerShell 5.1) or names (with -EnumsAsStrings): both are read.
const PROTECTION = ['Off', 'On', 'Unknown'];
const VOLUME = ['FullyDecrypted', 'FullyEncrypted', 'EncryptionInProgress', 'DecryptionInProgress', 'EncryptionPaused', 'DecryptionPaused'];
const enumName = (v: unknown, names: string[]) => (typeof v === 'number' ? names[v] ?? String(v) : typeof v === 'string' ? v : 'Unknown');

export interface BitLockerState {
  mountPoint: string;
  protection: string;
  volume: string;
  percent?: number;
}

export function parseBitLocker(stdout: string): BitLockerState | undefined {
  const v = asArray(parseJsonOr<Record<string, unknown> | Record<string, unknown>[]>(stdout.trim()))[0];
  if (!v) return undefined;
  const mountPoint = String(v.MountPoint ?? v.DriveLetter ?? '');
  const volume = enumName(v.VolumeStatus ?? v.ConversionStatus, VOLUME);
  return { mountPoint, protection: enumName(v.ProtectionStatus, PROTECTION), volume, ...(typeof v.EncryptionPercentage === 'number' ? { percent: v.EncryptionPercentage } : {}) };
}

export function judgeBitLocker(s: BitLockerState, evidence: string[]): PostureResult {
  const facts = { encrypted: s.protection === 'On', protection: s.protection, volumeStatus: s.volume };
  if (s.protection === 'On') return result({ check: ID, title: TITLE, status: 'PASS', summary: `BitLocker protects ${s.mountPoint} (${s.volume}).`, evidence, facts });
  if (s.volume === 'EncryptionInProgress') {
    return result({ check: ID, title: TITLE, status: 'FAIL', summary: `BitLocker is still encrypting ${s.mountPoint}${s.percent !== undefined ? ` (${s.percent}%)` : ''}.`, evidence, facts, remedy: 'Keep the computer on and plugged in until BitLocker finishes; the check passes then.' });
  }
  const suspended = s.volume === 'FullyEncrypted';
  return result({ check: ID, title: TITLE, status: 'FAIL', summary: suspended ? `BitLocker protection on ${s.mountPoint} is suspended.` : `BitLocker is off for ${s.mountPoint}.`, evidence, facts,
    remedy: suspended ? 'Resume BitLocker: Settings → Privacy & security → Device encryption (or Control Panel → BitLocker Drive Encryption → Resume protection).' : 'Turn on BitLocker: Control Panel → BitLocker Drive Encryption → Turn on BitLocker (or Settings → Device encryption), and keep the recovery key where IT tells you.' });
}

async function win32(ctx: PostureContext): Promise<PostureResult> {
  const evidence: string[] = [];
  let needsPrivilege = false;
  for (const [name, cmd] of [['Get-BitLockerVolume', win32DiskCommands.bitlocker()], ['Win32_EncryptableVolume', win32DiskCommands.cim()]] as const) {
    const r = await tryRun(ctx, cmd);
    const fail = psFailure(r);
    if (!fail) {
      const s = parseBitLocker(r.stdout);
      if (s) return judgeBitLocker(s, [...evidence, `${name}: protection ${s.protection}, volume ${s.volume}`]);
      evidence.push(`${name}: no answer for the system drive`);
      continue;
    }
    if (fail.accessDenied) needsPrivilege = true;
    evidence.push(`${name}: ${fail.error}${hex(fail.hresult)}`);
  }
  return result({ check: ID, title: TITLE, status: 'UNKNOWN', summary: 'BitLocker status could not be read.', why: needsPrivilege ? 'needs administrator rights (the device task reads it as SYSTEM)' : 'neither Get-BitLockerVolume nor the Win32_EncryptableVolume class answered',
    ...(needsPrivilege ? { needsPrivilege } : {}), evidence, remedy: needsPrivilege ? 'Nothing to do if the device task is installed; otherwise ask IT to install it (device-trust-agent install --device).' : 'Ask IT whether this Windows edition supports BitLocker (Home editions offer "Device encryption" only).' });
}

// ---------------------------------------------------------------- macOS: FileVault

export const darwinDiskCommands = {
  /** Exit code 0 when FileVault is on, 1 when off (`fdesetup help`); no text is read for the decision. */
  isActive: (): Command => ({ file: '/usr/bin/fdesetup', args: ['isactive'] }),
  status: (): Command => ({ file: '/usr/bin/fdesetup', args: ['status'] }),
};

async function darwin(ctx: PostureContext): Promise<PostureResult> {
  const r = await tryRun(ctx, darwinDiskCommands.isActive());
  const st = await tryRun(ctx, darwinDiskCommands.status());
  const evidence = [`fdesetup isactive: exit ${r.code}`, ...(st.code === 0 ? [`fdesetup status: ${firstLine(st.stdout)}`] : [])];
  return judgeFileVault(r.code, st.stdout, evidence);
}

export function judgeFileVault(code: number, status: string, evidence: string[]): PostureResult {
  if (code === 0) return result({ check: ID, title: TITLE, status: 'PASS', summary: 'FileVault is on.', evidence, facts: { encrypted: true } });
  if (code === 1) {
    const progress = /Encryption in progress/i.test(status);
    return result({ check: ID, title: TITLE, status: 'FAIL', summary: progress ? 'FileVault is still encrypting the disk.' : 'FileVault is off.', evidence, facts: { encrypted: false },
      remedy: progress ? 'Keep the Mac on and plugged in until FileVault finishes.' : 'Turn on FileVault: System Settings → Privacy & Security → FileVault → Turn On, and keep the recovery key where IT tells you.' });
  }
  return result({ check: ID, title: TITLE, status: 'UNKNOWN', summary: 'FileVault status could not be read.', why: `fdesetup isactive exited ${code}`, evidence, remedy: 'Ask IT to check FileVault on this Mac.' });
}

export const diskEncryption: PostureCheck = {
  id: ID,
  title: TITLE,
  run: (ctx) => (ctx.platform === 'win32' ? win32(ctx) : ctx.platform === 'darwin' ? darwin(ctx) : linux(ctx)),
};
