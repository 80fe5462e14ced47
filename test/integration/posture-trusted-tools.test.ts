/**
 * Posture a user cannot fake (issue 22.2): fake `findmnt`, `lsblk`, `cryptsetup`, `nft`, `iptables`, `mokutil`
 * first on PATH, with LD_PRELOAD and a changed locale in the environment, do not change the reported truth of
 * this machine — through the real command line, and on a real LUKS2 header on a loop device (and a blank one).
 * The device task's shared answers are used only when root wrote them where only root could; otherwise the user
 * side's facts are marked user-reported.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { probeLuks } from '../../src-main/platform/posture/disk-encryption.js';
import { machineContext } from '../../src-main/platform/posture/index.js';
import { runAgent, tempDir } from '../support/agent.js';
import { hasCommand, luksAndBlankDevices } from '../support/host.js';

/** A directory of tools that claim an encrypted root, a firewall and Secure Boot; each leaves a mark when run. */
function fakeTools(): { dir: string; ran: () => string[] } {
  const dir = tempDir('fake-tools');
  const marks = path.join(dir, 'ran');
  const tool = (name: string, body: string) => fs.writeFileSync(path.join(dir, name), `#!/bin/sh\necho ${name} >> "${marks}"\n${body}\n`, { mode: 0o755 });
  tool('findmnt', `echo '{"filesystems":[{"source":"/dev/mapper/fake-root","fstype":"ext4","target":"/"}]}'`);
  tool('lsblk', `echo '{"blockdevices":[{"name":"/dev/mapper/fake-root","type":"crypt","fstype":"ext4","children":[{"name":"/dev/fake1","type":"part","fstype":"crypto_LUKS"}]}]}'`);
  tool('cryptsetup', `case "$1" in isLuks) exit 0;; luksDump) printf 'Version:\\t2\\nUUID:\\tfake\\nData segments:\\n  0: crypt\\n\\tcipher: aes-xts-plain64\\n';; esac`);
  tool('dmsetup', `echo 'fake-root: 0 100 crypt aes-xts-plain64 :64:logon:x 0 /dev/fake1 32768'`);
  tool('nft', `echo '{"nftables":[{"chain":{"family":"inet","table":"filter","name":"input","type":"filter","hook":"input","prio":0,"policy":"drop"}}]}'`);
  tool('iptables', `echo '-P INPUT DROP'`);
  tool('mokutil', `echo 'SecureBoot enabled'`);
  return { dir, ran: () => (fs.existsSync(marks) ? fs.readFileSync(marks, 'utf8').trim().split('\n') : []) };
}

type Result = { check: string; status: string; evidence: string[]; source?: string };
const pick = (rs: Result[], id: string) => rs.find((r) => r.check === id)!;

function hostileEnv(fake: string, base: Record<string, string>): Record<string, string> {
  return { ...base, PATH: `${fake}:${process.env.PATH ?? '/usr/bin:/bin'}`, LD_PRELOAD: path.join(fake, 'libfake.so'), LANG: 'de_DE.UTF-8', LC_ALL: 'de_DE.UTF-8' };
}

test('fake tools first on PATH (and LD_PRELOAD, locale) change no device fact `posture --json` reports', async () => {
  const fake = fakeTools();
  const base = { HOME: tempDir('home'), DTA_PLATFORM_LOG: 'off', DTA_MANAGED_CONFIG_DIR: '/nonexistent', PATH: process.env.PATH ?? '/usr/bin:/bin' };
  const truth = JSON.parse((await runAgent(['posture', '--json', '--state-dir', tempDir('pt-truth')], base)).stdout) as { results: Result[] };
  const faked = await runAgent(['posture', '--json', '--state-dir', tempDir('pt-faked')], hostileEnv(fake.dir, base));
  const got = JSON.parse(faked.stdout) as { results: Result[] };
  assert.deepEqual(fake.ran(), [], 'no fake tool was ever run');
  for (const id of ['disk-encryption', 'firewall', 'secure-boot', 'os-version']) {
    assert.equal(pick(got.results, id).status, pick(truth.results, id).status, `${id}: the same answer as without the fakes`);
    assert.deepEqual(pick(got.results, id).evidence, pick(truth.results, id).evidence, `${id}: the same evidence`);
    assert.ok(!pick(got.results, id).evidence.join('\n').includes('fake'), `${id} evidence names nothing fake`);
  }
  // This machine's root is not on dm-crypt (a container or VM image): the fakes would have said PASS.
  if (!/crypt/.test(execFileSync('lsblk', ['-s', '-n', '-o', 'TYPE', execFileSync('findmnt', ['-n', '-o', 'SOURCE', '/'], { encoding: 'utf8' }).trim().replace(/\[.*\]$/, '')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).toString())) {
    assert.notEqual(pick(got.results, 'disk-encryption').status, 'PASS');
  }
});

describe('a real LUKS2 header on a loop device, and none, with fake tools on PATH', () => {
  const dir = tempDir('luks-fake');
  const loops: string[] = [];
  const saved = { PATH: process.env.PATH, LD_PRELOAD: process.env.LD_PRELOAD };
  after(() => {
    process.env.PATH = saved.PATH;
    if (saved.LD_PRELOAD === undefined) delete process.env.LD_PRELOAD;
    for (const l of loops) spawnSync('losetup', ['-d', l]);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('cryptsetup of the user\'s own says LUKS for the blank device and not-LUKS for the LUKS2 one: the truth is reported', async (t) => {
    if (!hasCommand('cryptsetup') || !hasCommand('losetup')) return t.skip('skipped: cryptsetup or losetup is not installed (apt install cryptsetup-bin)');
    const devices = luksAndBlankDevices(dir, loops);
    if (!devices) return t.skip('skipped: no loop device available (losetup -f failed)');
    const { luks: dev, blank: plain } = devices;
    // The liar: LUKS for the blank device, nothing for the real one.
    const liar = tempDir('liar');
    fs.writeFileSync(path.join(liar, 'cryptsetup'), `#!/bin/sh\necho ran >> "${path.join(liar, 'ran')}"\n[ "$2" = "${plain}" ] && exit 0\nexit 1\n`, { mode: 0o755 });
    process.env.PATH = `${liar}:${saved.PATH ?? '/usr/bin:/bin'}`;
    process.env.LD_PRELOAD = path.join(liar, 'libfake.so');
    const ctx = machineContext();
    const luks = await probeLuks(ctx, dev);
    assert.equal(luks.luks, true);
    assert.equal(luks.header?.version, 2);
    assert.equal(luks.header?.cipher, 'aes-xts-plain64');
    const none = await probeLuks(ctx, plain);
    assert.equal(none.luks, false);
    assert.match(none.evidence, /no LUKS header/);
    assert.ok(!fs.existsSync(path.join(liar, 'ran')), 'the user\'s cryptsetup was never run');
  });
});

test('the device task\'s shared answers are used only when root-owned and not writable by others; otherwise facts are user-reported', async () => {
  const fake = fakeTools();
  const shared = path.join(tempDir('pt-shared'), 'shared');
  const managed = tempDir('pt-managed');
  fs.writeFileSync(path.join(managed, 'posture.json'), JSON.stringify({ posture: { deviceFile: path.join(shared, 'posture.json') } }));
  const base = { HOME: tempDir('home'), DTA_PLATFORM_LOG: 'off', DTA_MANAGED_CONFIG_DIR: managed, PATH: process.env.PATH ?? '/usr/bin:/bin' };
  const dev = await runAgent(['posture', '--device', '--json', '--state-dir', tempDir('pt-dev')], base);
  const deviceResults = (JSON.parse(dev.stdout) as { results: Result[] }).results;
  assert.ok(fs.existsSync(path.join(shared, 'posture.json')), dev.stderr);
  assert.equal(fs.statSync(path.join(shared, 'posture.json')).uid, 0);

  const user = await runAgent(['posture', '--json', '--state-dir', tempDir('pt-user')], hostileEnv(fake.dir, base));
  const rs = (JSON.parse(user.stdout) as { results: Result[] }).results;
  for (const id of ['disk-encryption', 'firewall', 'secure-boot']) {
    assert.equal(pick(rs, id).source, 'device', `${id} comes from the device side`);
    assert.equal(pick(rs, id).status, pick(deviceResults, id).status);
  }
  assert.equal(pick(rs, 'screen-lock').source, 'user', 'the screen lock is the user\'s own setting');

  // A snapshot another user could have written is not the device side's.
  fs.chownSync(path.join(shared, 'posture.json'), 65534, 65534);
  const planted = await runAgent(['posture', '--json', '--state-dir', tempDir('pt-user2')], hostileEnv(fake.dir, base));
  const ps = (JSON.parse(planted.stdout) as { results: Result[] }).results;
  for (const id of ['disk-encryption', 'firewall', 'secure-boot']) assert.equal(pick(ps, id).source, 'user', `${id} is marked user-reported`);
  assert.deepEqual(fake.ran(), []);
});
