/**
 * Posture checks on every platform, through the checks' own `run` with the platform's command lines answered
 * from fixtures (test/fixtures/posture, provenance in its README): Windows and macOS cannot run here, and the
 * Linux block-device chains for LUKS and LVM-on-LUKS need device-mapper, which this machine lacks. Asserts
 * the exact command lines (PowerShell kept to what ConstrainedLanguage mode allows) and what the user is told.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import type { Command, CommandResult } from '../../src-main/base/exec.js';
import { diskEncryption, judgeChain, parseDmCryptTable, parseFindmnt, parseLsblkChain, parseLuksDump, win32DiskScripts } from '../../src-main/platform/posture/disk-encryption.js';
import { endpointProtection, decodeProductState, win32EndpointScripts } from '../../src-main/platform/posture/endpoint-protection.js';
import { firewall, judgeNftRuleset, judgeIptables, ufwEnabled, win32FirewallScripts } from '../../src-main/platform/posture/firewall.js';
import { DEFAULT_POSTURE_OPTIONS, runPostureChecks, type PostureContext } from '../../src-main/platform/posture/index.js';
import { osVersion, parseOsRelease, lastAptRun, win32OsScripts } from '../../src-main/platform/posture/os-version.js';
import { postureScript } from '../../src-main/platform/posture/powershell.js';
import { screenLock, parseGVariant, win32LockScripts } from '../../src-main/platform/posture/screen-lock.js';
import { secureBoot, parseSecureBootVar, win32BootScripts } from '../../src-main/platform/posture/secure-boot.js';
import { runAdminCheck } from '../../src-main/platform/posture/admin-checks.js';
import { REPO } from '../support/agent.js';
import { decodePowershell, ok, fail } from '../support/commands.js';

const fx = (name: string) => fs.readFileSync(path.join(REPO, 'test', 'fixtures', 'posture', name), 'utf8');
const NOW = new Date('2026-11-30T12:00:00Z');

/** A context whose commands are answered by `answer` (by command line), recording what ran. */
function ctxFor(platform: NodeJS.Platform, answer: (cmd: Command, script: string) => CommandResult | 'ENOENT', extra: Partial<PostureContext> = {}) {
  const calls: Command[] = [];
  const ctx: PostureContext = {
    platform,
    run: async (cmd) => {
      calls.push(cmd);
      const r = answer(cmd, cmd.file === 'powershell.exe' ? decodePowershell(cmd) : '');
      if (r === 'ENOENT') throw Object.assign(new Error(`spawn ${cmd.file} ENOENT`), { code: 'ENOENT' });
      return r;
    },
    readFile: () => undefined, readBytes: () => undefined, exists: () => false, mtime: () => undefined, processes: () => [],
    env: {}, privileged: false, now: NOW, options: { ...DEFAULT_POSTURE_OPTIONS }, ...extra,
  };
  return { ctx, calls, lines: () => calls.map((c) => [c.file, ...c.args].join(' ')) };
}

// ------------------------------------------------------------------ PowerShell: ConstrainedLanguage-safe, structured

test('every posture PowerShell script stays within ConstrainedLanguage mode and answers JSON, failures as a structured error', () => {
  const scripts = [win32DiskScripts.bitlocker, win32DiskScripts.cim, win32FirewallScripts.profiles, win32LockScripts.settings, win32OsScripts.version, win32BootScripts.registry, win32BootScripts.confirm, win32EndpointScripts.status];
  for (const body of scripts) {
    const s = postureScript(body);
    // CLM refuses .NET method calls on non-core types, Add-Type, New-Object of COM/.NET, and arbitrary [type] casts.
    assert.doesNotMatch(s, /Add-Type|New-Object|\[System\.|\[Convert\]|\[Text\.|::/, body);
    assert.doesNotMatch(s.replace(/\[string\]/g, ''), /\[[A-Za-z.]+\]/, `no type casts: ${body}`);
    assert.match(s, /ConvertTo-Json -Compress/);
    assert.match(s, /FullyQualifiedErrorId.*HResult[\s\S]*exit 3/);
  }
});

// ------------------------------------------------------------------ disk encryption

test('Linux: the chain under / decides — LUKS and LVM-on-LUKS pass, plain disk and plain LVM fail', () => {
  assert.deepEqual(parseFindmnt(fx('findmnt-btrfs-luks.json')), { source: '/dev/mapper/luks-0f5e8c1a-3b7d-4e2a-9c61-5d8f2a7b9e04', fstype: 'btrfs' }, 'the btrfs subvolume suffix is dropped');
  const luks = judgeChain(parseLsblkChain(fx('lsblk-luks.json')));
  assert.equal(luks.encrypted, true);
  assert.equal(luks.luksDevice, '/dev/nvme0n1p3');
  const lvm = judgeChain(parseLsblkChain(fx('lsblk-lvm-on-luks.json')));
  assert.equal(lvm.encrypted, true);
  assert.equal(lvm.cryptNode, '/dev/mapper/nvme0n1p3_crypt');
  assert.equal(lvm.luksDevice, '/dev/nvme0n1p3');
  assert.match(lvm.layers, /^lvm .*→ crypt .*→ part \/dev\/nvme0n1p3 \(crypto_LUKS\) → disk/);
  assert.equal(judgeChain(parseLsblkChain(fx('lsblk-plain.json'))).encrypted, false);
  assert.equal(judgeChain(parseLsblkChain(fx('lsblk-lvm-plain.json'))).encrypted, false);
  assert.deepEqual(parseDmCryptTable(fx('dmsetup-table-crypt.txt')), [{ name: 'nvme0n1p3_crypt', cipher: 'aes-xts-plain64', device: '259:3' }]);
  assert.deepEqual(parseLuksDump(fx('luksdump-luks1.txt')), { version: 1, cipher: 'aes-xts-plain64', uuid: '6c1f9a2e-5b3d-4c7e-8a90-1f2e3d4c5b6a' });
});

test('Linux: LVM on LUKS passes through the check itself, with the LUKS header details when root can read them', async () => {
  const { ctx, lines } = ctxFor('linux', (cmd) => {
    if (cmd.file === 'findmnt') return ok('{"filesystems":[{"source":"/dev/mapper/vgubuntu-root","fstype":"ext4","target":"/"}]}');
    if (cmd.file === 'lsblk') return ok(fx('lsblk-lvm-on-luks.json'));
    if (cmd.args[0] === 'isLuks') return ok();
    return ok('Version:       \t2\nUUID: abc\n\nData segments:\n  0: crypt\n\toffset: 16777216 [bytes]\n\tcipher: aes-xts-plain64\n');
  }, { privileged: true });
  const r = await diskEncryption.run(ctx);
  assert.equal(r.status, 'PASS');
  assert.equal(r.facts?.luksVersion, 2);
  assert.equal(r.facts?.cipher, 'aes-xts-plain64');
  assert.deepEqual(lines(), ['findmnt -J -n -o SOURCE,FSTYPE,TARGET /', 'lsblk -J -s -p -o NAME,TYPE,FSTYPE /dev/mapper/vgubuntu-root', 'cryptsetup isLuks /dev/nvme0n1p3', 'cryptsetup luksDump /dev/nvme0n1p3']);
});

test('Linux: a root that is not a block device (container overlay) is UNKNOWN with why, never PASS', async () => {
  const { ctx } = ctxFor('linux', () => ok(fx('findmnt-overlay.json')));
  const r = await diskEncryption.run(ctx);
  assert.equal(r.status, 'UNKNOWN');
  assert.match(r.why!, /overlay/);
  assert.ok(r.remedy);
});

test('Windows: BitLocker on passes; off and suspended fail with a remedy; access denied is UNKNOWN for the device task', async () => {
  const run = async (bitlocker: CommandResult, cim: CommandResult = fail('', 3, '{"error":"CimException","hresult":-2147217394}')) => {
    const t = ctxFor('win32', (_c, script) => (script.includes('Get-BitLockerVolume') ? bitlocker : cim));
    return { r: await diskEncryption.run(t.ctx), t };
  };
  const on = await run(ok(fx('win-bitlocker-on.json')));
  assert.equal(on.r.status, 'PASS');
  assert.equal(on.t.calls[0]!.file, 'powershell.exe');
  assert.deepEqual(on.t.calls[0]!.args.slice(0, 8), ['-NoLogo', '-NoProfile', '-NonInteractive', '-ExecutionPolicy', 'Bypass', '-OutputFormat', 'Text', '-EncodedCommand']);
  const off = await run(ok(fx('win-bitlocker-off.json')));
  assert.equal(off.r.status, 'FAIL');
  assert.match(off.r.remedy!, /Turn on BitLocker/);
  const suspended = await run(ok(fx('win-bitlocker-suspended-names.json')));
  assert.equal(suspended.r.status, 'FAIL');
  assert.match(suspended.r.summary, /suspended/);
  const denied = await run(fail('', 3, fx('win-bitlocker-access-denied.json')));
  assert.equal(denied.r.status, 'UNKNOWN');
  assert.equal(denied.r.needsPrivilege, true);
  assert.match(denied.r.why!, /administrator/);
  assert.match(denied.r.evidence.join('\n'), /0x80070005/);
  const viaCim = await run(fail('', 3, fx('win-bitlocker-access-denied.json')), ok(fx('win-cim-encryptable-on.json')));
  assert.equal(viaCim.r.status, 'PASS', 'Win32_EncryptableVolume answers when the BitLocker module does not');
});

test('macOS: FileVault is decided by fdesetup isactive\'s exit code', async () => {
  const t = (code: number, status: string) => ctxFor('darwin', (cmd) => (cmd.args[0] === 'isactive' ? { code, stdout: '', stderr: '' } : ok(status)));
  const on = t(0, fx('mac-fdesetup-status-on.txt'));
  assert.equal((await diskEncryption.run(on.ctx)).status, 'PASS');
  assert.deepEqual(on.lines(), ['/usr/bin/fdesetup isactive', '/usr/bin/fdesetup status']);
  const off = await diskEncryption.run(t(1, fx('mac-fdesetup-status-off.txt')).ctx);
  assert.equal(off.status, 'FAIL');
  assert.match(off.remedy!, /FileVault/);
  assert.equal((await diskEncryption.run(t(2, '').ctx)).status, 'UNKNOWN');
});

// ------------------------------------------------------------------ firewall

test('Linux: nftables rulesets, iptables, ufw.conf; without root the answer is UNKNOWN for the device task', async () => {
  assert.equal(judgeNftRuleset(fx('nft-ufw-like.json'))?.filtering, true, 'a reject rule in an input chain filters');
  assert.equal(judgeNftRuleset('{"nftables":[{"metainfo":{}}]}')?.filtering, false);
  assert.equal(judgeIptables('-P INPUT DROP\n')?.filtering, true);
  assert.equal(judgeIptables('-P INPUT ACCEPT\n-A INPUT -j ufw-before-input\n')?.filtering, true);
  assert.equal(judgeIptables('-P INPUT ACCEPT\n')?.filtering, false);
  assert.equal(ufwEnabled('# comment\nENABLED=yes\n'), true);
  assert.equal(ufwEnabled('ENABLED=no\n'), false);
  const user = ctxFor('linux', (cmd) => (cmd.file === 'nft' ? fail('Error: Operation not permitted', 1) : 'ENOENT'));
  const r = await firewall.run(user.ctx);
  assert.equal(r.status, 'UNKNOWN');
  assert.equal(r.needsPrivilege, true);
  assert.match(r.why!, /needs root/);
  const ufwUser = ctxFor('linux', (cmd) => (cmd.file === 'nft' ? fail('Error: Operation not permitted', 1) : 'ENOENT'), { readFile: (f) => (f === '/etc/ufw/ufw.conf' ? 'ENABLED=yes\n' : undefined) });
  assert.equal((await firewall.run(ufwUser.ctx)).status, 'PASS', 'ufw\'s own switch answers without root');
});

test('Windows: every profile on passes; one off fails naming it', async () => {
  const all = ctxFor('win32', () => ok(fx('win-firewall-all-on.json')));
  assert.equal((await firewall.run(all.ctx)).status, 'PASS');
  assert.match(decodePowershell(all.calls[0]!), /Get-NetFirewallProfile -PolicyStore ActiveStore/);
  const pub = await firewall.run(ctxFor('win32', () => ok(fx('win-firewall-public-off.json'))).ctx);
  assert.equal(pub.status, 'FAIL');
  assert.match(pub.summary, /Public/);
});

test('macOS: socketfilterfw\'s State number decides', async () => {
  for (const [file, status] of [['mac-socketfilterfw-on.txt', 'PASS'], ['mac-socketfilterfw-block-all.txt', 'PASS'], ['mac-socketfilterfw-off.txt', 'FAIL']] as const) {
    const t = ctxFor('darwin', () => ok(fx(file)));
    assert.equal((await firewall.run(t.ctx)).status, status, file);
    assert.deepEqual(t.lines(), ['/usr/libexec/ApplicationFirewall/socketfilterfw --getglobalstate']);
  }
});

// ------------------------------------------------------------------ screen lock

test('Linux: GNOME values decide; no desktop session is UNKNOWN (gsettings defaults would be a false PASS); KDE through kreadconfig', async () => {
  assert.equal(parseGVariant('uint32 300\n'), 300);
  assert.equal(parseGVariant('true'), true);
  const gnome = (lock: string, idle: string, delay = 'uint32 0') => ctxFor('linux', (cmd) => ok(cmd.args[2] === 'lock-enabled' ? lock : cmd.args[2] === 'idle-delay' ? idle : delay), { env: { XDG_CURRENT_DESKTOP: 'ubuntu:GNOME' } });
  assert.equal((await screenLock.run(gnome('true', 'uint32 300').ctx)).status, 'PASS');
  assert.equal((await screenLock.run(gnome('false', 'uint32 300').ctx)).status, 'FAIL');
  const never = await screenLock.run(gnome('true', 'uint32 0').ctx);
  assert.equal(never.status, 'FAIL');
  assert.match(never.summary, /never/);
  assert.equal((await screenLock.run(gnome('true', 'uint32 900', 'uint32 60').ctx)).status, 'FAIL', 'idle + lock delay beyond 15 minutes');
  const none = await screenLock.run(ctxFor('linux', () => ok('true')).ctx);
  assert.equal(none.status, 'UNKNOWN');
  assert.match(none.why!, /XDG_CURRENT_DESKTOP/);
  const kde = ctxFor('linux', (cmd) => (cmd.file === 'kreadconfig6' ? 'ENOENT' : ok(cmd.args.includes('Autolock') ? 'true\n' : '10\n')), { env: { XDG_CURRENT_DESKTOP: 'KDE' } });
  const k = await screenLock.run(kde.ctx);
  assert.equal(k.status, 'PASS');
  assert.match(k.summary, /10 min/);
  assert.ok(kde.lines().includes('kreadconfig5 --file kscreenlockerrc --group Daemon --key Timeout --default 5'));
});

test('Windows: the machine inactivity limit, then the secure screen saver (policy over the user\'s setting)', async () => {
  const r = async (f: string) => screenLock.run(ctxFor('win32', () => ok(fx(f))).ctx);
  assert.equal((await r('win-lock-machine-policy.json')).status, 'PASS');
  const long = await r('win-lock-policy-too-long.json');
  assert.equal(long.status, 'FAIL', 'Group Policy\'s 30 minutes wins over the user\'s 5');
  assert.match(long.summary, /30 min/);
  assert.equal((await r('win-lock-off.json')).status, 'FAIL');
  assert.equal((await r('win-lock-user-ok.json')).status, 'PASS');
  // Issue 25.6: active + secure + timeout with "(None)" chosen never locks.
  const none = await r('win-lock-no-saver.json');
  assert.equal(none.status, 'FAIL', 'no screen saver chosen: nothing starts, nothing locks');
  assert.match(none.summary, /No screen saver is chosen/);
  assert.ok(none.evidence.some((e) => /SCRNSAVE\.EXE unset/.test(e)));
  assert.equal((await r('win-lock-policy-forces-saver.json')).status, 'PASS', 'Group Policy\'s forced screen saver counts');
  assert.match(win32LockScripts.settings, /Select-Object ScreenSaveActive, ScreenSaverIsSecure, ScreenSaveTimeOut, 'SCRNSAVE\.EXE'/);
});

test('macOS: idle time plus sysadminctl\'s password delay', async () => {
  const t = (idle: CommandResult, lock: string) => ctxFor('darwin', (cmd) => (cmd.file.endsWith('defaults') ? idle : { code: 0, stdout: '', stderr: lock }));
  assert.equal((await screenLock.run(t(ok('600\n'), fx('mac-sysadminctl-screenlock-5s.txt')).ctx)).status, 'PASS');
  assert.equal((await screenLock.run(t(fail('does not exist'), fx('mac-sysadminctl-screenlock-5s.txt')).ctx)).status, 'FAIL', 'unset idleTime is the 20-minute default');
  assert.equal((await screenLock.run(t(ok('300\n'), fx('mac-sysadminctl-screenlock-off.txt')).ctx)).status, 'FAIL');
  // Issue 25.11: "screenLock delay is immediate" is a lock with no delay, not UNKNOWN.
  const now = await screenLock.run(t(ok('600\n'), fx('mac-sysadminctl-screenlock-immediate.txt')).ctx);
  assert.equal(now.status, 'PASS');
  assert.match(now.summary, /10 min/);
});

// ------------------------------------------------------------------ OS version and updates

test('Linux: os-release and the newest of apt history / package databases', async () => {
  assert.equal(parseOsRelease('NAME="Debian GNU/Linux"\nVERSION_ID="12"\n').VERSION_ID, '12');
  assert.equal(lastAptRun('Start-Date: 2026-11-01  10:00:00\nEnd-Date: 2026-11-01  10:01:00\n\nStart-Date: 2026-11-20  09:00:00\nEnd-Date: 2026-11-20  09:02:03\n')?.getDate(), 20);
  const t = (days: number) => ctxFor('linux', () => ok(), { readFile: (f) => (f === '/etc/os-release' ? 'NAME="Debian GNU/Linux"\nVERSION_ID="12"\nID=debian\n' : undefined), mtime: (f) => (f === '/var/lib/dpkg/status' ? new Date(NOW.getTime() - days * 86_400_000) : undefined) });
  const recent = await osVersion.run(t(3).ctx);
  assert.equal(recent.status, 'PASS');
  assert.equal(recent.facts?.osVersion, '12');
  assert.equal(recent.facts?.daysSinceUpdate, 3);
  const old = await osVersion.run(t(45).ctx);
  assert.equal(old.status, 'FAIL');
  assert.match(old.summary, /45 days ago/);
  assert.equal((await osVersion.run(ctxFor('linux', () => ok()).ctx)).status, 'UNKNOWN', 'no update record: UNKNOWN, not PASS');
});

test('Windows: build + UBR from the registry (Windows 11 named from its build), newest hotfix date from /Date(ms)/', async () => {
  const r = await osVersion.run(ctxFor('win32', () => ok(fx('win-os-version.json'))).ctx);
  assert.equal(r.facts?.osVersion, '10.0.22631.4460');
  assert.equal(r.facts?.osName, 'Windows 11 Pro');
  assert.equal(r.facts?.lastUpdate, '2024-11-13T00:00:00.000Z');
  assert.equal(r.status, 'FAIL', 'two years without an update');
  assert.match(r.remedy!, /Windows Update/);
});

test('macOS: sw_vers and the newest system update in InstallHistory (App Store apps do not count)', async () => {
  const t = ctxFor('darwin', (cmd) => (cmd.args[0] === '-productVersion' ? ok('15.7.2\n') : cmd.args[0] === '-buildVersion' ? ok('24G325\n') : ok(fx('mac-installhistory.json'))));
  const r = await osVersion.run(t.ctx);
  assert.equal(r.status, 'PASS');
  assert.equal(r.facts?.osVersion, '15.7.2');
  assert.equal(r.facts?.lastUpdate, '2026-11-18T07:00:12.000Z');
  assert.ok(t.lines().includes('/usr/bin/plutil -convert json -o - /Library/Receipts/InstallHistory.plist'));
});

// ------------------------------------------------------------------ Secure Boot

test('Linux: the SecureBoot EFI variable decides; no EFI is legacy BIOS (FAIL); no /sys/firmware is UNKNOWN', async () => {
  assert.equal(parseSecureBootVar(Buffer.from([6, 0, 0, 0, 1])), true);
  assert.equal(parseSecureBootVar(Buffer.from([6, 0, 0, 0, 0])), false);
  const efi = (v: number) => ctxFor('linux', () => ok('SecureBoot enabled\n'), { exists: () => true, readBytes: () => Buffer.from([6, 0, 0, 0, v]) });
  assert.equal((await secureBoot.run(efi(1).ctx)).status, 'PASS');
  assert.equal((await secureBoot.run(efi(0).ctx)).status, 'FAIL');
  const bios = await secureBoot.run(ctxFor('linux', () => ok(), { exists: (f) => f === '/sys/firmware' }).ctx);
  assert.equal(bios.status, 'FAIL');
  assert.match(bios.summary, /legacy BIOS/);
  assert.equal((await secureBoot.run(ctxFor('linux', () => ok()).ctx)).status, 'UNKNOWN');
});

test('Windows: the SecureBoot State value (any user), then Confirm-SecureBootUEFI (BIOS → FAIL, access denied → device task)', async () => {
  const t = (reg: CommandResult, confirm: CommandResult) => ctxFor('win32', (_c, script) => (script.includes('Confirm-SecureBootUEFI') ? confirm : reg));
  assert.equal((await secureBoot.run(t(ok(fx('win-secureboot-reg-on.json')), ok()).ctx)).status, 'PASS');
  assert.equal((await secureBoot.run(t(ok(fx('win-secureboot-reg-off.json')), ok()).ctx)).status, 'FAIL');
  assert.equal((await secureBoot.run(t(ok(''), fail('', 3, fx('win-confirm-secureboot-bios.json'))).ctx)).status, 'FAIL');
  const denied = await secureBoot.run(t(ok(''), fail('', 3, fx('win-confirm-secureboot-denied.json'))).ctx);
  assert.equal(denied.status, 'UNKNOWN');
  assert.equal(denied.needsPrivilege, true);
});

test('macOS: T2 "Full Security" passes; Apple silicon needs root (bputil) and then judges the boot policy', async () => {
  const t2 = ctxFor('darwin', (cmd) => ok(cmd.args[0] === 'SPHardwareDataType' ? '{"SPHardwareDataType":[{"chip_type":""}]}' : fx('mac-system-profiler-ibridge-full.json')));
  assert.equal((await secureBoot.run(t2.ctx)).status, 'PASS');
  const m2user = await secureBoot.run(ctxFor('darwin', () => ok(fx('mac-system-profiler-hardware-m2.json'))).ctx);
  assert.equal(m2user.status, 'UNKNOWN');
  assert.equal(m2user.needsPrivilege, true);
  const m2root = ctxFor('darwin', (cmd) => ok(cmd.file.endsWith('bputil') ? fx('mac-bputil-reduced.txt') : fx('mac-system-profiler-hardware-m2.json')), { privileged: true });
  const r = await secureBoot.run(m2root.ctx);
  assert.equal(r.status, 'FAIL');
  assert.match(r.summary, /Reduced/);
  assert.ok(m2root.lines().includes('/usr/bin/bputil -d'));
});

// ------------------------------------------------------------------ endpoint protection and admin checks

test('Windows: Security Center product state and Defender status', async () => {
  assert.deepEqual(decodeProductState(397568), { enabled: true, upToDate: true });
  assert.deepEqual(decodeProductState(393472), { enabled: false, upToDate: true });
  assert.equal((await endpointProtection.run(ctxFor('win32', () => ok(fx('win-endpoint-defender-on.json'))).ctx)).status, 'PASS');
  const third = await endpointProtection.run(ctxFor('win32', () => ok(fx('win-endpoint-third-party.json'))).ctx);
  assert.equal(third.status, 'PASS');
  assert.match(third.summary, /Contoso Antivirus/);
  const off = await endpointProtection.run(ctxFor('win32', () => ok(fx('win-endpoint-off.json'))).ctx);
  assert.equal(off.status, 'FAIL');
  assert.match(off.remedy!, /real-time protection/);
});

test('Linux/macOS: the configured process names and services', async () => {
  const opts = { ...DEFAULT_POSTURE_OPTIONS, endpointProcesses: ['falcon-sensor'], endpointServices: ['mdatp'] };
  const running = ctxFor('linux', () => fail('', 3), { processes: () => ['systemd', 'falcon-sensor'], options: opts });
  assert.equal((await endpointProtection.run(running.ctx)).status, 'PASS');
  const svc = ctxFor('linux', (cmd) => (cmd.args.includes('mdatp') ? ok() : fail('', 3)), { options: opts });
  assert.equal((await endpointProtection.run(svc.ctx)).status, 'PASS');
  assert.deepEqual(svc.lines(), ['systemctl is-active --quiet mdatp']);
  const mac = ctxFor('darwin', () => fail('', 113), { options: { ...opts, endpointServices: ['com.crowdstrike.falcond'] } });
  const r = await endpointProtection.run(mac.ctx);
  assert.equal(r.status, 'FAIL');
  assert.deepEqual(mac.lines(), ['/bin/launchctl print system/com.crowdstrike.falcond']);
});

test('admin-defined checks: registry value, plist key, service, file — must and must not exist', async () => {
  const reg = ctxFor('win32', () => ok());
  const r1 = await runAdminCheck(reg.ctx, { name: 'edr-key', kind: 'registry', target: 'HKLM\\SOFTWARE\\Contoso\\EDR', key: 'Installed' });
  assert.equal(r1.status, 'PASS');
  assert.equal(r1.check, 'admin:edr-key');
  assert.deepEqual(reg.lines(), ['reg.exe query HKLM\\SOFTWARE\\Contoso\\EDR /v Installed /reg:64']);
  const plist = ctxFor('darwin', () => fail('Could not extract value', 1));
  const r2 = await runAdminCheck(plist.ctx, { name: 'no-guest', kind: 'plist', target: '/Library/Preferences/com.apple.loginwindow.plist', key: 'GuestEnabled', mustExist: false });
  assert.equal(r2.status, 'PASS');
  assert.deepEqual(plist.lines(), ['/usr/bin/plutil -extract GuestEnabled raw -o - /Library/Preferences/com.apple.loginwindow.plist']);
  const file = ctxFor('linux', () => ok(), { exists: (f) => f === '/etc/telnetd.conf' });
  const r3 = await runAdminCheck(file.ctx, { name: 'no-telnet', kind: 'file', target: '/etc/telnetd.conf', mustExist: false, remedy: 'Remove telnetd.' });
  assert.equal(r3.status, 'FAIL');
  assert.equal(r3.remedy, 'Remove telnetd.');
  const wrongPlatform = await runAdminCheck(file.ctx, { name: 'x', kind: 'registry', target: 'HKLM\\X' });
  assert.equal(wrongPlatform.status, 'UNKNOWN');
});

test('a check that throws is UNKNOWN with the reason, and the others still answer', async () => {
  const { ctx } = ctxFor('linux', () => { throw new Error('boom'); }, { readFile: () => { throw new Error('disk on fire'); } });
  const results = await runPostureChecks(ctx);
  assert.equal(results.length, 6);
  for (const r of results) {
    assert.ok(['PASS', 'FAIL', 'UNKNOWN'].includes(r.status));
    if (r.status === 'UNKNOWN') assert.ok(r.why, `${r.check} says why`);
  }
  assert.match(results.find((r) => r.check === 'os-version')!.why!, /disk on fire/);
});
