/**
 * Posture on this Linux machine, with real parts: every check run for real (whatever this machine is, each
 * answer must carry evidence, and an UNKNOWN must say why); a real LUKS2 header made by cryptsetup on a loop
 * device (device-mapper is absent here, so it cannot be opened: the detection reads the header itself);
 * nftables rulesets inside a private network namespace; GNOME screen-lock settings in a private dconf
 * database written through a private D-Bus session.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { runCommand, type Command } from '../../src-main/base/exec.js';
import { probeLuks } from '../../src-main/platform/posture/disk-encryption.js';
import { firewall } from '../../src-main/platform/posture/firewall.js';
import { machineContext, runPostureChecks, type PostureContext } from '../../src-main/platform/posture/index.js';
import { screenLock } from '../../src-main/platform/posture/screen-lock.js';
import { runAgent, tempDir } from '../support/agent.js';
import { hasCommand, luksAndBlankDevices } from '../support/host.js';

test('every check runs on this machine and gives evidence; an UNKNOWN always says why and never hides a PASS', async () => {
  const results = await runPostureChecks(machineContext());
  assert.deepEqual(results.map((r) => r.check).sort(), ['disk-encryption', 'endpoint-protection', 'firewall', 'os-version', 'screen-lock', 'secure-boot']);
  for (const r of results) {
    assert.ok(['PASS', 'FAIL', 'UNKNOWN'].includes(r.status), r.check);
    assert.ok(r.summary.length > 10, `${r.check} has a sentence for the user`);
    assert.ok(r.evidence.every((e) => typeof e === 'string' && e.length > 0 && e.length < 1000), `${r.check} evidence lines`);
    if (r.status === 'UNKNOWN') assert.ok(r.why && r.why.length > 10, `${r.check} says why it is UNKNOWN`);
    if (r.status === 'FAIL') assert.ok(r.remedy && r.remedy.length > 10, `${r.check} says what to do`);
    if (r.status !== 'UNKNOWN') assert.ok(r.evidence.length > 0 || r.check === 'screen-lock', `${r.check} shows what it looked at`);
  }
  // Facts this machine certainly has: its os-release, and a root device findmnt can name.
  const os = results.find((r) => r.check === 'os-version')!;
  const rel = fs.readFileSync('/etc/os-release', 'utf8');
  assert.equal(os.facts?.osVersion, /^VERSION_ID="?([^"\n]*)/m.exec(rel)?.[1] ?? 'unknown');
  const disk = results.find((r) => r.check === 'disk-encryption')!;
  if (disk.status !== 'UNKNOWN') assert.match(disk.evidence[0]!, /^findmnt \/: \/dev\//);
  // Secure Boot: no /sys/firmware/efi means legacy BIOS boot, which is a FAIL, not an UNKNOWN.
  const sb = results.find((r) => r.check === 'secure-boot')!;
  if (fs.existsSync('/sys/firmware') && !fs.existsSync('/sys/firmware/efi')) assert.equal(sb.status, 'FAIL');
});

test('`posture --json` prints every check, stores them, and the exit code says whether one fails', async () => {
  const stateDir = tempDir('posture-cli');
  const r = await runAgent(['posture', '--json', '--state-dir', stateDir], { HOME: tempDir('home'), DTA_PLATFORM_LOG: 'off' });
  const out = JSON.parse(r.stdout);
  assert.equal(out.results.length, 6);
  assert.equal(r.code, out.results.some((x: { status: string }) => x.status === 'FAIL') ? 30 : 0);
  assert.ok(fs.existsSync(path.join(stateDir, 'posture.json')));
  assert.equal(fs.statSync(path.join(stateDir, 'posture.json')).mode & 0o777, 0o600);
  const text = await runAgent(['posture', '--state-dir', stateDir], { HOME: tempDir('home'), DTA_PLATFORM_LOG: 'off' });
  assert.match(text.stdout, /^Device posture \(user task, .*\): \d pass, \d fail, \d unknown/);
  for (const x of out.results.filter((y: { status: string }) => y.status === 'FAIL')) assert.ok(text.stdout.includes(`what to do: ${x.remedy}`));
  const status = await runAgent(['status', '--state-dir', stateDir], { HOME: tempDir('home'), DTA_PLATFORM_LOG: 'off' });
  assert.match(status.stdout, /posture: +\d pass, \d fail, \d unknown/);
});

describe('disk encryption: a real LUKS2 header on a loop device', () => {
  const dir = tempDir('luks');
  const loops: string[] = [];
  after(() => {
    for (const l of loops) spawnSync('losetup', ['-d', l]);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('cryptsetup isLuks/luksDump on the device: LUKS2 with its cipher; a blank device is not LUKS', async (t) => {
    if (!hasCommand('cryptsetup') || !hasCommand('losetup')) return t.skip('skipped: cryptsetup or losetup is not installed (apt install cryptsetup-bin)');
    const devices = luksAndBlankDevices(dir, loops);
    if (!devices) return t.skip('skipped: no loop device available (losetup -f failed)');
    const { luks: dev, blank: plain } = devices;
    const ctx = machineContext();
    const luks = await probeLuks(ctx, dev);
    assert.equal(luks.luks, true);
    assert.equal(luks.header?.version, 2);
    assert.equal(luks.header?.cipher, 'aes-xts-plain64');
    assert.match(luks.evidence, new RegExp(`cryptsetup isLuks ${dev}: LUKS2, cipher aes-xts-plain64`));
    // blkid reads the same header independently.
    assert.match(execFileSync('blkid', ['-p', '-o', 'export', dev], { encoding: 'utf8' }), /TYPE=crypto_LUKS/);
    assert.equal(luks.header?.uuid, /UUID=(\S+)/.exec(execFileSync('blkid', ['-p', '-o', 'export', dev], { encoding: 'utf8' }))?.[1]);
    const none = await probeLuks(ctx, plain);
    assert.equal(none.luks, false);
    assert.match(none.evidence, /no LUKS header/);
    const missing = await probeLuks(ctx, path.join(dir, 'no-such-device'));
    assert.equal(missing.luks, undefined, 'a device that cannot be read is not "not LUKS"');
  });
});

describe('firewall: nftables in a private network namespace', () => {
  let ns: ChildProcess | undefined;
  after(() => ns?.kill('SIGKILL'));

  test('no ruleset fails; an input chain with policy drop or a reject rule passes; an accepting chain fails', async (t) => {
    if (!hasCommand('nft') || !hasCommand('unshare') || !hasCommand('nsenter')) return t.skip('skipped: nft, unshare or nsenter is not installed');
    ns = spawn('unshare', ['-n', 'sleep', '300'], { stdio: 'ignore' });
    await new Promise((r) => setTimeout(r, 300));
    if (ns.exitCode !== null || !ns.pid) return t.skip('skipped: unshare -n is not permitted here');
    const netns = `/proc/${ns.pid}/ns/net`;
    const inNs = (cmd: Command): Command => ({ ...cmd, file: 'nsenter', args: [`--net=${netns}`, cmd.file, ...cmd.args] });
    const ctx: PostureContext = machineContext({}, { run: (cmd) => runCommand(inNs(cmd)), readFile: () => undefined, privileged: true });
    const load = (rules: string) => execFileSync('nsenter', [`--net=${netns}`, 'nft', '-f', '-'], { input: `flush ruleset\n${rules}` });
    const check = async () => firewall.run(ctx);

    load('');
    const empty = await check();
    assert.equal(empty.status, 'FAIL');
    assert.match(empty.evidence.join('\n'), /no chain on the input hook/);
    assert.match(empty.remedy!, /ufw enable|firewalld/);

    load('table inet filter {\n chain input {\n  type filter hook input priority 0; policy drop;\n  ct state established,related accept\n  iif "lo" accept\n }\n}\n');
    const drop = await check();
    assert.equal(drop.status, 'PASS');
    assert.match(drop.evidence.join('\n'), /chain inet filter input: policy drop/);

    load('table inet filter {\n chain input {\n  type filter hook input priority 0; policy accept;\n  tcp dport 23 reject\n }\n}\n');
    assert.equal((await check()).status, 'PASS');

    load('table inet filter {\n chain input {\n  type filter hook input priority 0; policy accept;\n  tcp dport 22 accept\n }\n}\n');
    const accepting = await check();
    assert.equal(accepting.status, 'FAIL');
    assert.match(accepting.evidence.join('\n'), /all accepting/);

    // The same namespace seen without root: the ruleset cannot be read, and the answer is left to the device task.
    const user = await firewall.run({ ...ctx, privileged: false, run: async (cmd) => (cmd.file === 'nft' ? { code: 1, stdout: '', stderr: 'Error: Operation not permitted' } : runCommand(inNs(cmd))) });
    assert.equal(user.status, 'UNKNOWN');
    assert.equal(user.needsPrivilege, true);
  });
});

describe('screen lock: GNOME settings in a private dconf database', () => {
  test('lock on with a short idle delay passes; lock off and a long delay fail; values read back from the real dconf file', async (t) => {
    if (!hasCommand('gsettings') || !hasCommand('dbus-run-session')) return t.skip('skipped: gsettings or dbus-run-session is not installed (apt install libglib2.0-bin dbus)');
    const schemas = spawnSync('gsettings', ['list-keys', 'org.gnome.desktop.screensaver'], { encoding: 'utf8' });
    if (schemas.status !== 0) return t.skip('skipped: the GNOME schemas are not installed (apt install gsettings-desktop-schemas)');
    const home = tempDir('dconf');
    const runtime = path.join(home, 'run');
    fs.mkdirSync(runtime, { mode: 0o700 });
    const env = { HOME: home, XDG_CONFIG_HOME: path.join(home, 'config'), XDG_RUNTIME_DIR: runtime, GSETTINGS_BACKEND: 'dconf' };
    const set = (pairs: [string, string, string][]) => execFileSync('dbus-run-session', ['--', 'sh', '-c', pairs.map(([s, k, v]) => `gsettings set ${s} ${k} ${v}`).join(' && ')], { env: { ...process.env, ...env }, stdio: 'ignore' });
    const ctx = machineContext({}, { env: { XDG_CURRENT_DESKTOP: 'GNOME' }, privileged: false, run: (cmd) => runCommand({ ...cmd, env: { ...cmd.env, ...env } }) });

    set([['org.gnome.desktop.screensaver', 'lock-enabled', 'true'], ['org.gnome.desktop.session', 'idle-delay', '300'], ['org.gnome.desktop.screensaver', 'lock-delay', '0']]);
    assert.ok(fs.existsSync(path.join(home, 'config', 'dconf', 'user')), 'dconf-service wrote the private database');
    const on = await screenLock.run(ctx);
    assert.equal(on.status, 'PASS');
    assert.match(on.summary, /5 min/);
    assert.match(on.evidence[0]!, /lock-enabled=true, idle-delay=uint32 300/);

    set([['org.gnome.desktop.session', 'idle-delay', '1800']]);
    const long = await screenLock.run(ctx);
    assert.equal(long.status, 'FAIL');
    assert.match(long.summary, /30 min/);

    set([['org.gnome.desktop.session', 'idle-delay', '300'], ['org.gnome.desktop.screensaver', 'lock-enabled', 'false']]);
    const off = await screenLock.run(ctx);
    assert.equal(off.status, 'FAIL');
    assert.match(off.remedy!, /Automatic Screen Lock/);
  });
});
