// The device channel (docs/PROTOCOL.md §13): its wire contract, the device side's handler (rate limit, per-user
// deviceId binding, org check, keytab check) over a real Unix socket pair made by the real server, and the
// Windows/macOS channel data (SDDL, icacls and schtasks command lines, the LaunchDaemon plist).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import { DeviceTokenService, checkKeytabReadable } from '../../src-main/core/enrollment/device-service.js';
import { loadConfig } from '../../src-main/core/config.js';
import { DeviceTokenRequestSchema, RATE_LIMIT } from '../../src-main/platform/device-channel.js';
import { exchange, knockPath, UnixChannelServer, UnixDeviceChannel, userSocketPath } from '../../src-main/platform/device-channel-unix.js';
import { macChannelLayout, macDeviceServicePlist, MAC_DEVICE_SERVICE_LABEL } from '../../src-main/platform/device-channel-darwin.js';
import {
  parseWhoamiUser, sddlAces, winDeviceServiceCommands, winDeviceServiceTaskXml, winDirIsPrivateTo, winKnockDirCommands, WIN_KNOCK_DIR_SDDL, winUserDir,
  winUserDirCommands, winUserDirSddl,
} from '../../src-main/platform/device-channel-win32.js';
import { AgentError, exitCodeFor } from '../../src-main/base/errors.js';
import { stateForFailure } from '../../src-main/core/scheduler/states.js';
import { tempDir } from '../support/agent.js';

const tmp = tempDir('chan-unit');
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

const ORG = 'https://org.example.test';
const good = { v: 1, op: 'device-token', orgUrl: ORG, deviceId: '0c2f8a5e-6b1d-4e8f-9a3b-2d7c1e5f4a6b', keyThumbprint: 'a'.repeat(43), deadlineMs: 5000 } as const;

function config(over: Record<string, unknown> = {}) {
  const stateDir = fs.mkdtempSync(path.join(tmp, 'state-'));
  return loadConfig({ env: { HOME: tmp }, cli: { orgUrl: ORG, stateDir, deviceKeytab: path.join(tmp, 'no-such.keytab'), ...over }, managed: { read: () => [] } as never }).config;
}

test('the request schema: version, operation, a deadline within bounds, a thumbprint, nothing else', () => {
  assert.ok(DeviceTokenRequestSchema.safeParse(good).success);
  for (const bad of [{ ...good, v: 2 }, { ...good, deadlineMs: 10 }, { ...good, deadlineMs: 600_000 }, { ...good, keyThumbprint: 'x' }, { ...good, orgUrl: 'http://org' }, { ...good, extra: 1 }, { ...good, deviceId: 'not-a-guid' }]) {
    assert.equal(DeviceTokenRequestSchema.safeParse(bad).success, false, JSON.stringify(bad));
  }
});

test('the device side refuses another org, a deviceId of another local user, a flood, and says a missing keytab is configuration', async () => {
  const cfg = config();
  const service = new DeviceTokenService({ loadConfig: () => cfg });
  const other = await service.handle(1000, { ...good, orgUrl: 'https://evil.example.test' });
  assert.equal(other.ok, false);
  assert.equal(!other.ok && other.code, 'DEVICE_ORG_MISMATCH');
  // The first uid to ask binds the deviceId (then the keytab check fails: this test machine has none at that path).
  const first = await service.handle(1000, good);
  assert.equal(!first.ok && first.code, 'DEVICE_KEYTAB_MISSING');
  assert.equal(!first.ok && first.failure, 'config');
  const thief = await service.handle(1001, good);
  assert.equal(!thief.ok && thief.code, 'DEVICE_ID_IN_USE');
  assert.match(!thief.ok ? thief.message : '', /belongs to another user of this machine \(uid 1000\)/);
  assert.equal(JSON.parse(fs.readFileSync(path.join(cfg.stateDir, 'device-users.json'), 'utf8'))[good.deviceId], 1000);
  const invalid = await service.handle(1000, { op: 'device-token' });
  assert.equal(!invalid.ok && invalid.code, 'DEVICE_REQUEST_INVALID');
  // The per-uid rate limit: the window is full after RATE_LIMIT.requests requests (the ones above count).
  let limited;
  for (let i = 0; i < RATE_LIMIT.requests + 1; i++) limited = await service.handle(1002, { ...good, deviceId: '1c2f8a5e-6b1d-4e8f-9a3b-2d7c1e5f4a6b' });
  assert.equal(limited && !limited.ok && limited.code, 'DEVICE_SERVICE_RATE_LIMITED');
  assert.ok(limited && !limited.ok && limited.retryAfterMs! > 0);
  // Other users are not held up by one user's flood.
  assert.notEqual((await service.handle(1003, { ...good, deviceId: '2c2f8a5e-6b1d-4e8f-9a3b-2d7c1e5f4a6b' }) as { code?: string }).code, 'DEVICE_SERVICE_RATE_LIMITED');
});

test('an unreadable keytab names the file, the owner and the mode', { skip: process.getuid?.() === 0 ? 'skipped: root reads any file (test/integration/device-service.test.ts runs this as an ordinary user)' : false }, () => {
  const kt = path.join(tmp, 'root.keytab');
  fs.writeFileSync(kt, 'x', { mode: 0o000 });
  assert.throws(() => checkKeytabReadable(kt), (e: AgentError) => e.code === 'DEVICE_KEYTAB_UNREADABLE' && e.failure === 'config' && /mode 0000/.test(e.message));
});

test('over real sockets: the user side gets the device side\'s answer, knocking for its endpoint first; the endpoint is 0700 and the uid\'s', { skip: process.getuid?.() !== 0 ? 'skipped: the device side chowns endpoints to their uid, which needs root' : false }, async () => {
  const dir = path.join(tmp, 'run');
  const seen: number[] = [];
  const server = new UnixChannelServer({ dir, userRuntimeRoot: path.join(tmp, 'no-run-user'), handle: async (uid, req) => {
    seen.push(uid);
    return DeviceTokenRequestSchema.safeParse(req).success ? { v: 1, ok: true, deviceToken: 'aaa.bbb.ccc', iwaUrl: 'https://iwa.example.test/IWA' } : { v: 1, ok: false, failure: 'bad-answer', code: 'DEVICE_REQUEST_INVALID', message: 'no' };
  } });
  await server.start();
  try {
    assert.equal(fs.statSync(knockPath(dir)).mode & 0o777, 0o777, 'anyone may knock');
    assert.equal(fs.existsSync(userSocketPath(dir, 4242)), false);
    const channel = new UnixDeviceChannel({ dir, uid: 4242, startCommand: 'start it' });
    const got = await channel.deviceToken({ orgUrl: good.orgUrl, deviceId: good.deviceId, keyThumbprint: good.keyThumbprint, deadlineMs: good.deadlineMs });
    assert.deepEqual(got, { deviceToken: 'aaa.bbb.ccc', iwaUrl: 'https://iwa.example.test/IWA' });
    assert.deepEqual(seen, [4242], 'the device side knew the caller by the endpoint it used');
    const st = fs.statSync(path.dirname(userSocketPath(dir, 4242)));
    assert.equal(st.uid, 4242);
    assert.equal(st.mode & 0o777, 0o700);
    // The knock refuses uid 0 and garbage; a silent or oversized peer does not hold the device side.
    const k = await exchange(knockPath(dir), { v: 1, op: 'open', uid: 0 }, 2000);
    assert.ok(k.ok && (k.message as { ok: boolean }).ok === false);
  } finally {
    await server.close();
  }
  // Stopped: the user side says the device service is not running, with the command, exit 50, a state that retries.
  const channel = new UnixDeviceChannel({ dir, uid: 4242, startCommand: 'sudo systemctl start device-trust-agent-device.service' });
  const err = await channel.deviceToken({ orgUrl: ORG, deviceId: good.deviceId, keyThumbprint: good.keyThumbprint, deadlineMs: 2000 }).then(() => undefined, (e: AgentError) => e);
  assert.ok(err);
  assert.equal(err.code, 'DEVICE_SERVICE_DOWN');
  assert.match(err.message, /device service is not running/);
  assert.doesNotMatch(`${err.message} ${err.remedy}`, /corporate network/);
  assert.match(err.remedy!, /sudo systemctl start device-trust-agent-device\.service/);
  assert.equal(exitCodeFor(err), 50);
  assert.equal(stateForFailure(err.failure, err.code), 'DEVICE_SERVICE_DOWN');
});

test('the user side holds the machine credentials only as root or as the keytab\'s owner', () => {
  const kt = path.join(tmp, 'mine.keytab');
  fs.writeFileSync(kt, 'x', { mode: 0o600 });
  const me = process.getuid!();
  assert.equal(new UnixDeviceChannel({ dir: tmp, uid: me, startCommand: '' }).holdsMachineCredentials(kt), true);
  assert.equal(new UnixDeviceChannel({ dir: tmp, uid: me + 1234, startCommand: '' }).holdsMachineCredentials(kt), false);
  assert.equal(new UnixDeviceChannel({ dir: tmp, uid: 0, startCommand: '' }).holdsMachineCredentials('/nonexistent'), true);
  assert.equal(new UnixDeviceChannel({ dir: tmp, uid: 1000, startCommand: '' }).holdsMachineCredentials('/nonexistent'), false);
});

// --- Windows and macOS, as data ---

const SID = 'S-1-5-21-3623811015-3361044348-30300820-1013';

test('Windows: a user directory\'s SDDL admits SYSTEM, Administrators and that user only; icacls lines produce it', () => {
  assert.equal(winUserDir(SID), `C:\\ProgramData\\device-trust-agent\\channel\\users\\${SID}`);
  assert.equal(winUserDirSddl(SID), `O:SYG:SYD:PAI(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)(A;OICI;0x1301bf;;;${SID})`);
  assert.deepEqual(sddlAces(winUserDirSddl(SID)), [['A', 'OICI', 'FA', 'SY'], ['A', 'OICI', 'FA', 'BA'], ['A', 'OICI', '0x1301bf', SID]]);
  assert.deepEqual(winUserDirCommands(SID), [
    { file: 'icacls', args: [winUserDir(SID), '/inheritance:r', '/grant:r', '*S-1-5-18:(OI)(CI)F', '*S-1-5-32-544:(OI)(CI)F', `*${SID}:(OI)(CI)M`] },
    { file: 'icacls', args: [winUserDir(SID), '/setowner', '*S-1-5-18'] },
  ]);
  assert.deepEqual(winKnockDirCommands()[0]!.args.slice(-1), ['*S-1-5-32-545:(WD,S)']);
  assert.match(WIN_KNOCK_DIR_SDDL, /\(A;;0x100002;;;BU\)$/);
  // What the device side accepts when it reads a directory's SDDL back.
  assert.equal(winDirIsPrivateTo(winUserDirSddl(SID), SID), true);
  assert.equal(winDirIsPrivateTo(winUserDirSddl(SID), 'S-1-5-21-1-2-3-1014'), false, 'another user\'s directory');
  assert.equal(winDirIsPrivateTo(`O:SYG:SYD:AI(A;OICI;FA;;;SY)(A;OICIID;0x1200a9;;;BU)(A;OICI;0x1301bf;;;${SID})`, SID), false, 'not protected, Users inherited');
  assert.equal(winDirIsPrivateTo(`O:${SID}G:SYD:PAI(A;OICI;FA;;;SY)(A;OICI;0x1301bf;;;${SID})`, SID), false, 'owned by the user (could rewrite the DACL)');
  assert.equal(winDirIsPrivateTo(`O:SYG:SYD:PAI(A;OICI;FA;;;SY)(A;OICI;FA;;;WD)`, SID), false, 'Everyone');
  // Only user SIDs reach an SDDL string or a command line.
  for (const bad of ['S-1-1-0', 'S-1-5-32-545', `${SID})(A;;FA;;;WD`, 'S-1-5-21-1-2-3', '']) assert.throws(() => winUserDirSddl(bad), /not a user SID/);
  assert.doesNotThrow(() => winUserDirSddl('S-1-12-1-1234567890-1234567890-1234567890-1234567890'));
});

test('Windows: the user\'s SID from whoami /user /fo csv /nh, in any display language', () => {
  // Shape from `whoami /user /fo csv /nh` (English and German Windows print the same CSV: no header, two quoted fields).
  assert.equal(parseWhoamiUser(`"contoso\\alice","${SID}"\r\n`), SID);
  assert.equal(parseWhoamiUser(`\uFEFF"WS01\\Jürgen Müller","${SID}"\r\n`), SID);
  assert.throws(() => parseWhoamiUser('"nt authority\\system","S-1-5-18"\r\n'), /did not name a user SID/);
  assert.throws(() => parseWhoamiUser('FEHLER: Zugriff verweigert.'), /did not name a user SID/);
});

test('Windows: the device service is a SYSTEM task at boot, restarted on failure, running daemon --device; schtasks lines', () => {
  const xml = winDeviceServiceTaskXml(['C:\\Program Files\\Device Trust Agent\\device-trust-agent.exe'], 'C:\\ProgramData\\device-trust-agent');
  assert.match(xml, /<UserId>S-1-5-18<\/UserId>/);
  assert.match(xml, /<BootTrigger>/);
  assert.match(xml, /<ExecutionTimeLimit>PT0S<\/ExecutionTimeLimit>/);
  assert.match(xml, /<RestartOnFailure>\s*<Interval>PT1M<\/Interval>/);
  assert.match(xml, /<Command>C:\\Program Files\\Device Trust Agent\\device-trust-agent\.exe<\/Command>/);
  assert.match(xml, /<Arguments>daemon --device --trigger logon --state-dir C:\\ProgramData\\device-trust-agent<\/Arguments>/);
  assert.doesNotMatch(xml, /--once/);
  const cmds = winDeviceServiceCommands('C:\\Windows\\Temp\\dta.xml');
  assert.deepEqual(cmds.register.args, ['/Create', '/TN', '\\Device Trust Agent\\Device service', '/XML', 'C:\\Windows\\Temp\\dta.xml', '/F']);
  assert.deepEqual(cmds.start.args, ['/Run', '/TN', '\\Device Trust Agent\\Device service']);
});

test('macOS: a LaunchDaemon as root, kept alive, fixed environment; the channel layout is Linux\'s', () => {
  const plist = macDeviceServicePlist(['/Applications/Device Trust Agent.app/Contents/MacOS/device-trust-agent'], '/Library/Application Support/device-trust-agent');
  assert.match(plist, new RegExp(`<key>Label</key>\\s*<string>${MAC_DEVICE_SERVICE_LABEL.replace(/\./g, '\\.')}</string>`));
  assert.match(plist, /<key>KeepAlive<\/key>\s*<true\/>/);
  assert.match(plist, /<key>UserName<\/key>\s*<string>root<\/string>/);
  assert.match(plist, /<string>daemon<\/string>\s*<string>--device<\/string>/);
  assert.match(plist, /<key>DTA_DEVICE_CHANNEL_DIR<\/key>\s*<string>\/var\/run\/device-trust-agent<\/string>/);
  assert.doesNotMatch(plist, /--once/);
  assert.deepEqual(macChannelLayout(501), [
    { dir: '/var/run/device-trust-agent', owner: 0, mode: 0o755 },
    { dir: '/var/run/device-trust-agent/users', owner: 0, mode: 0o755 },
    { dir: '/var/run/device-trust-agent/users/501', owner: 501, mode: 0o700 },
  ]);
  assert.throws(() => macChannelLayout(0));
});
