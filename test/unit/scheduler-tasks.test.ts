/**
 * OS trigger registration as data: the generated systemd units and XDG autostart entry are checked by the
 * tools the OS itself uses (systemd-analyze verify, desktop-file-validate); the Windows task XML is checked
 * for well-formedness by xmllint and for its triggers and principal; macOS plists are read by Python's
 * plistlib (an independent reader of Apple's format). The
 * command lines (systemctl, schtasks, launchctl) are asserted exactly.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import type { CommandRunner } from '../../src-main/base/exec.js';
import { darwinProcess, darwinTasks, GLOBAL_LAUNCH_AGENT_PATH, LAUNCH_DAEMON_PATH, MAC_LABELS, MAC_NETWORK_WATCH_PATH } from '../../src-main/platform/tasks/darwin.js';
import { applyInstall, applyRemoval } from '../../src-main/platform/tasks/index.js';
import { desktopArg, linuxTasks, systemdArg } from '../../src-main/platform/tasks/linux.js';
import type { TaskRequest } from '../../src-main/platform/tasks/types.js';
import { taskXml, win32Tasks, windowsArg, WINDOWS_TASKS } from '../../src-main/platform/tasks/win32.js';
import { tempDir } from '../support/agent.js';
import { hasCommand } from '../support/host.js';

/** An "agent" at a path with a space and a percent sign: quoting mistakes make the verifiers fail. */
function awkwardAgent(): string[] {
  const dir = path.join(tempDir('exec'), 'Device Trust 100%');
  fs.mkdirSync(dir, { recursive: true });
  const exe = path.join(dir, 'agent');
  fs.writeFileSync(exe, '#!/bin/sh\nexit 0\n', { mode: 0o755 });
  return [exe];
}

function request(over: Partial<TaskRequest> = {}): TaskRequest {
  const home = tempDir('home');
  return { scope: 'user', agent: awkwardAgent(), extraArgs: ['OktaURL=https://org.example.com'], env: { HOME: home }, linuxMode: 'systemd', ...over };
}

test('Linux user units: the daemon at login, an hourly check and the Firefox token server; systemd-analyze verify accepts them', (t) => {
  const req = request();
  const plan = linuxTasks.install(req);
  assert.equal(plan.mode, 'systemd');
  assert.deepEqual(plan.files.map((f) => path.relative(req.env.HOME!, f.path)), [
    '.config/systemd/user/device-trust-agent.service', '.config/systemd/user/device-trust-agent-check.service',
    '.config/systemd/user/device-trust-agent-p11-kit.service', '.config/systemd/user/device-trust-agent-check.timer']);
  const service = String(plan.files[0]!.content);
  assert.match(service, /^ExecStart=".*Device Trust 100%%\/agent" daemon --trigger logon OktaURL=https:\/\/org\.example\.com$/m);
  assert.match(service, /^WantedBy=default\.target$/m);
  assert.match(String(plan.files[3]!.content), /^Persistent=true$/m);
  // p11-kit's server for Firefox: only once the agent wrote its module file, on the socket the client module finds.
  const p11 = String(plan.files[2]!.content);
  assert.match(p11, /^ConditionPathExists=%E\/pkcs11\/modules\/device-trust-agent-nssdb\.module$/m);
  assert.match(p11, /^ExecStart=\/usr\/bin\/p11-kit server --foreground --name %t\/p11-kit\/pkcs11 pkcs11:token=NSS%%20Certificate%%20DB$/m);
  assert.deepEqual(plan.commands.map((c) => [c.file, ...c.args].join(' ')), [
    'systemctl --user daemon-reload',
    'systemctl --user enable device-trust-agent.service device-trust-agent-check.timer device-trust-agent-p11-kit.service',
    'systemctl --user start device-trust-agent.service device-trust-agent-check.timer',
  ]);
  assert.equal(plan.commands[1]!.optional, undefined, 'enable must work (it needs no running manager)');
  if (!hasCommand('systemd-analyze')) {
    console.log('skipped: systemd-analyze is not installed (apt install systemd); the content was checked above');
    return t.skip('skipped: systemd-analyze is not installed');
  }
  const dir = path.dirname(plan.files[0]!.path);
  fs.mkdirSync(dir, { recursive: true });
  for (const f of plan.files) fs.writeFileSync(f.path, f.content);
  const runtime = fs.mkdtempSync(path.join(tempDir('rt'), 'r'));
  const r = spawnSync('systemd-analyze', ['--user', 'verify', ...plan.files.map((f) => f.path)], { encoding: 'utf8', env: { ...process.env, HOME: req.env.HOME, XDG_RUNTIME_DIR: runtime } });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stderr.trim(), '', 'no warnings');
});

test('Linux device units (system timer as root) verify too, with their own state directory', (t) => {
  const plan = linuxTasks.install(request({ scope: 'device' }));
  assert.deepEqual(plan.files.map((f) => f.path), ['/etc/systemd/system/device-trust-agent-device.service', '/etc/systemd/system/device-trust-agent-device.timer']);
  assert.match(String(plan.files[0]!.content), / daemon --device --state-dir \/var\/lib\/device-trust-agent OktaURL=/);
  assert.deepEqual(plan.commands.map((c) => c.args.join(' ')), ['daemon-reload', 'enable device-trust-agent-device.service device-trust-agent-device.timer', 'restart device-trust-agent-device.service', 'start device-trust-agent-device.timer']);
  if (!hasCommand('systemd-analyze')) {
    console.log('skipped: systemd-analyze is not installed (apt install systemd)');
    return t.skip('skipped: systemd-analyze is not installed');
  }
  const dir = tempDir('units');
  const files = plan.files.map((f) => path.join(dir, path.basename(f.path)));
  plan.files.forEach((f, i) => fs.writeFileSync(files[i]!, f.content));
  const r = spawnSync('systemd-analyze', ['verify', ...files], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
});

test('Linux without systemd: an XDG autostart entry that desktop-file-validate accepts', (t) => {
  const req = request({ linuxMode: 'autostart' });
  const plan = linuxTasks.install(req);
  assert.equal(plan.mode, 'autostart');
  assert.equal(plan.files.length, 1);
  assert.match(String(plan.files[0]!.content), /^Exec=".*Device Trust 100%%\/agent" daemon --trigger logon OktaURL=https:\/\/org\.example\.com$/m);
  if (!hasCommand('desktop-file-validate')) {
    console.log('skipped: desktop-file-validate is not installed (apt install desktop-file-utils)');
    return t.skip('skipped: desktop-file-validate is not installed');
  }
  const file = path.join(tempDir('desk'), 'device-trust-agent.desktop');
  fs.writeFileSync(file, plan.files[0]!.content);
  const r = spawnSync('desktop-file-validate', [file], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.equal((r.stdout + r.stderr).trim(), '', 'no warnings');
});

test('Linux uninstall removes both modes\' files and stops before it removes', () => {
  const req = request();
  const plan = linuxTasks.uninstall(req);
  assert.ok(plan.files.some((f) => f.endsWith('systemd/user/device-trust-agent.service')));
  assert.ok(plan.files.some((f) => f.endsWith('autostart/device-trust-agent.desktop')));
  assert.deepEqual(plan.commands, [], 'no systemctl calls when no unit is installed');
  const device = linuxTasks.uninstall(request({ scope: 'device' }));
  assert.deepEqual(device.commands.map((c) => c.args.join(' ')), ['stop device-trust-agent-device.timer device-trust-agent-device.service', 'disable device-trust-agent-device.service device-trust-agent-device.timer']);
  assert.deepEqual(device.after.map((c) => c.args.join(' ')), ['daemon-reload']);
});

test('quoting: systemd ExecStart and desktop Exec arguments', () => {
  assert.equal(systemdArg('/usr/bin/node'), '/usr/bin/node');
  assert.equal(systemdArg('/opt/Device Trust/agent'), '"/opt/Device Trust/agent"');
  assert.equal(systemdArg('100%'), '100%%');
  assert.equal(systemdArg('$HOME'), '$$HOME');
  assert.equal(systemdArg('a"b'), '"a\\"b"');
  assert.equal(desktopArg('/opt/Device Trust/agent'), '"/opt/Device Trust/agent"');
  assert.equal(desktopArg('a$b'), '"a\\\\$b"', 'escaped inside quotes, and the backslash doubled for the string');
  assert.equal(desktopArg('50%'), '50%%');
});

test('Windows: task XML (UTF-16, well-formed) with logon, hourly and network-connect triggers; schtasks command lines', () => {
  const req = request({ agent: ['C:\\Program Files\\Device Trust Agent\\Device Trust Agent.exe'], now: new Date(2026, 0, 5, 9, 30, 0), tmpDir: 'C:\\Temp' });
  const plan = win32Tasks.install(req);
  const buf = plan.files[0]!.content as Buffer;
  assert.deepEqual([...buf.subarray(0, 2)], [0xff, 0xfe], 'UTF-16 LE byte-order mark');
  const xml = buf.subarray(2).toString('utf16le');
  assert.equal(xml, taskXml(req).replace(/\n/g, '\r\n'));
  assert.match(xml, /<LogonTrigger>/);
  assert.match(xml, /<StartBoundary>2026-01-05T09:30:00<\/StartBoundary>/);
  assert.match(xml, /<Interval>PT1H<\/Interval>/);
  assert.match(xml, /EventID=10000/);
  assert.match(xml, /<Delay>PT1M<\/Delay>/);
  assert.match(xml, /<GroupId>S-1-5-32-545<\/GroupId>/);
  assert.match(xml, /<MultipleInstancesPolicy>IgnoreNew<\/MultipleInstancesPolicy>/);
  assert.match(xml, /<StartWhenAvailable>true<\/StartWhenAvailable>/);
  assert.match(xml, /<Command>C:\\Program Files\\Device Trust Agent\\Device Trust Agent.exe<\/Command>/);
  assert.match(xml, /<Arguments>daemon --trigger logon OktaURL=https:\/\/org.example.com<\/Arguments>/);
  assert.deepEqual(plan.commands.map((c) => [c.file, ...c.args]), [
    ['schtasks', '/Create', '/TN', WINDOWS_TASKS.user, '/XML', path.join('C:\\Temp', 'device-trust-agent-user-task.xml'), '/F'],
    ['schtasks', '/Run', '/TN', WINDOWS_TASKS.user],
  ]);
  assert.deepEqual(plan.cleanup, [plan.files[0]!.path], 'the XML is removed once imported');

  const device = taskXml({ ...req, scope: 'device' });
  assert.match(device, /<UserId>S-1-5-18<\/UserId>/, 'SYSTEM: the only service account that may write HKLM\\SOFTWARE\\Policies');
  assert.match(device, /<BootTrigger>/);
  assert.match(device, /daemon --once --device --trigger timer --state-dir C:\\ProgramData\\device-trust-agent/);
  // Issue 25.4: the Event Log source comes with the device task (every installer runs install --device elevated).
  const src = 'HKLM\\SYSTEM\\CurrentControlSet\\Services\\EventLog\\Application\\Okta Device Trust';
  assert.deepEqual(win32Tasks.install({ ...req, scope: 'device' }).commands.map((c) => [c.file, ...c.args]), [
    ['schtasks', '/Create', '/TN', WINDOWS_TASKS.device, '/XML', path.join('C:\\Temp', 'device-trust-agent-device-task.xml'), '/F'],
    ['reg', 'add', src, '/v', 'EventMessageFile', '/t', 'REG_EXPAND_SZ', '/d', '%SystemRoot%\\Microsoft.NET\\Framework64\\v4.0.30319\\EventLogMessages.dll', '/f', '/reg:64'],
    ['reg', 'add', src, '/v', 'TypesSupported', '/t', 'REG_DWORD', '/d', '7', '/f', '/reg:64'],
  ]);
  assert.ok(!plan.commands.some((c) => c.file === 'reg'), 'the user task (no administrator) never registers it');
  assert.deepEqual(win32Tasks.uninstall({ ...req, scope: 'device' }).commands.map((c) => c.args), [
    ['/End', '/TN', WINDOWS_TASKS.device], ['/Delete', '/TN', WINDOWS_TASKS.device, '/F'], ['delete', src, '/f', '/reg:64']]);

  if (!hasCommand('xmllint')) {
    console.log('skipped: xmllint is not installed (apt install libxml2-utils); the content was checked above');
    return;
  }
  for (const x of [xml, device]) {
    const file = path.join(tempDir('xml'), 'task.xml');
    fs.writeFileSync(file, Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(x, 'utf16le')]));
    execFileSync('xmllint', ['--noout', file]);
    const subscription = execFileSync('xmllint', ['--xpath', "string(//*[local-name()='Subscription'])", file], { encoding: 'utf8' });
    // The event query is itself XML, escaped inside the task XML: it must parse too.
    const q = path.join(tempDir('xml'), 'query.xml');
    fs.writeFileSync(q, subscription);
    execFileSync('xmllint', ['--noout', q]);
  }
});

test('Windows command-line quoting follows the C runtime rules', () => {
  assert.equal(windowsArg('plain'), 'plain');
  assert.equal(windowsArg('two words'), '"two words"');
  assert.equal(windowsArg('say "hi"'), '"say \\"hi\\""');
  assert.equal(windowsArg('C:\\dir with space\\'), '"C:\\dir with space\\\\"');
  assert.equal(windowsArg(''), '""');
});

/** CPython's plistlib reads the plist (or the test says why it cannot). */
function parsePlist(t: { skip: (m: string) => void }, xml: string): Record<string, unknown> | undefined {
  const r = spawnSync('python3', ['-c', 'import sys, json, plistlib; print(json.dumps(plistlib.loads(sys.stdin.buffer.read())))'], { input: xml, encoding: 'utf8' });
  if (r.error || r.status !== 0 && /No module|not found/.test(r.stderr)) {
    console.log('skipped: python3 (plistlib) is not installed, so the plist is not read by an independent reader');
    t.skip('skipped: python3 missing');
    return undefined;
  }
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as Record<string, unknown>;
}

test('macOS: a LaunchAgent and a LaunchDaemon that plistlib reads; launchctl bootstrap/bootout command lines', (t) => {
  const req = request({ uid: 501, agent: ['/Applications/Device Trust Agent.app/Contents/MacOS/Device Trust Agent'] });
  const wasRoot = darwinProcess.isRoot;
  darwinProcess.isRoot = () => false; // the user installing for themselves
  t.after(() => { darwinProcess.isRoot = wasRoot; });
  const plan = darwinTasks.install(req);
  assert.deepEqual(plan.commands.map((c) => c.args), [['bootout', `gui/501/${MAC_LABELS.user}`], ['print', `gui/501/${MAC_LABELS.user}`], ['bootstrap', 'gui/501', plan.files[0]!.path]]);
  const dplan0 = darwinTasks.install({ ...req, scope: 'device' });
  assert.deepEqual(dplan0.commands.map((c) => c.args), [['bootout', `system/${MAC_LABELS.device}`], ['print', `system/${MAC_LABELS.device}`], ['bootstrap', 'system', LAUNCH_DAEMON_PATH]]);
  assert.deepEqual(darwinTasks.uninstall({ ...req, scope: 'device' }).commands.map((c) => c.args), [['bootout', `system/${MAC_LABELS.device}`]]);
  const agent = parsePlist(t, String(plan.files[0]!.content));
  if (!agent) return;
  assert.equal(agent.Label, MAC_LABELS.user);
  assert.deepEqual(agent.ProgramArguments, ['/Applications/Device Trust Agent.app/Contents/MacOS/Device Trust Agent', 'daemon', '--trigger', 'logon', 'OktaURL=https://org.example.com']);
  assert.equal(agent.RunAtLoad, true);
  assert.deepEqual(agent.KeepAlive, { SuccessfulExit: false });
  assert.equal(plan.files[0]!.path, path.join(req.env.HOME!, 'Library/LaunchAgents/com.example.devicetrustagent.user.plist'));

  const dplan = darwinTasks.install({ ...req, scope: 'device' });
  const daemon = parsePlist(t, String(dplan.files[0]!.content))!;
  assert.equal(dplan.files[0]!.path, LAUNCH_DAEMON_PATH);
  assert.equal(daemon.StartInterval, 3600);
  assert.deepEqual(daemon.WatchPaths, [MAC_NETWORK_WATCH_PATH]);
  assert.deepEqual((daemon.ProgramArguments as string[]).slice(1, 7), ['daemon', '--once', '--device', '--trigger', 'timer', '--state-dir']);
});

test('macOS, installed by root (package postinstall): the LaunchAgent serves every user and loads for the console user, not gui/0', (t) => {
  const wasRoot = darwinProcess.isRoot;
  darwinProcess.isRoot = () => true;
  t.after(() => { darwinProcess.isRoot = wasRoot; });
  const req = request({ agent: ['/Applications/Device Trust Agent.app/Contents/MacOS/Device Trust Agent'], env: { HOME: '/var/root', DTA_CONSOLE_UID: '502' } });
  const plan = darwinTasks.install(req);
  assert.equal(plan.files[0]!.path, GLOBAL_LAUNCH_AGENT_PATH);
  assert.ok(!plan.files.some((f) => f.path.startsWith('/var/root')), 'nothing under root\'s home');
  assert.deepEqual(plan.commands.map((c) => c.args), [['bootout', `gui/502/${MAC_LABELS.user}`], ['print', `gui/502/${MAC_LABELS.user}`], ['bootstrap', 'gui/502', GLOBAL_LAUNCH_AGENT_PATH]]);
  assert.ok(!plan.commands.some((c) => c.args.some((a) => a.startsWith('gui/0'))));
  const agent = parsePlist(t, String(plan.files[0]!.content));
  if (agent) {
    assert.equal(agent.LimitLoadToSessionType, 'Aqua');
    assert.equal(agent.StandardOutPath, undefined, 'no per-user path in a file shared by every user');
  }
  const nobody = darwinTasks.install(request({ agent: ['/x'], env: { HOME: '/var/root' } }));
  assert.deepEqual(nobody.commands, [], 'no console user: nothing to bootstrap now');
  assert.match(nobody.notes.join(' '), /next login/);
  assert.deepEqual(darwinTasks.uninstall(req).files, [GLOBAL_LAUNCH_AGENT_PATH]);
});

test('applying a plan: optional steps may fail with their explanation, a required one fails the install; temp files go', async () => {
  const req = request({ agent: ['C:\\agent.exe'], tmpDir: tempDir('wintmp') });
  const plan = win32Tasks.install(req);
  const seen: string[] = [];
  const runner = (codes: number[]): CommandRunner => async (c) => {
    seen.push([c.file, ...c.args].join(' '));
    assert.ok(fs.existsSync(plan.files[0]!.path), 'the XML exists while schtasks runs');
    return { code: codes.shift() ?? 0, stdout: '', stderr: 'ERROR: Access is denied.' };
  };
  const steps = await applyInstall(plan, runner([0, 1]));
  assert.equal(seen.length, 2);
  assert.match(steps.at(-1)!.detail, /skipped — it starts at the next logon \(ERROR: Access is denied\.\)/);
  assert.ok(!fs.existsSync(plan.files[0]!.path), 'cleanup removed the XML');
  await assert.rejects(applyInstall(plan, runner([1])), /register .*User task failed: schtasks \/Create .* exited with 1: ERROR: Access is denied\./);
  assert.ok(!fs.existsSync(plan.files[0]!.path), 'removed even when the install failed');

  const removal = win32Tasks.uninstall(req);
  const r = await applyRemoval(removal, async () => ({ code: 1, stdout: '', stderr: 'ERROR: The system cannot find the file specified.' }));
  assert.ok(r.every((s) => s.ok), 'uninstalling what is not there is fine');
});

test('issue 25.10, macOS reinstall: bootstrap waits until launchctl print no longer finds the job; a job that never goes fails the install', async (t) => {
  const { LAUNCHD_GONE_DEADLINE_MS } = await import('../../src-main/platform/tasks/darwin.js');
  const wasRoot = darwinProcess.isRoot;
  darwinProcess.isRoot = () => true;
  t.after(() => { darwinProcess.isRoot = wasRoot; });
  const req = request({ agent: ['/x'], env: { HOME: '/var/root', DTA_CONSOLE_UID: '502' } });
  const dplan = darwinTasks.install({ ...req, scope: 'device' });
  assert.deepEqual(dplan.commands.map((c) => c.args), [['bootout', `system/${MAC_LABELS.device}`], ['print', `system/${MAC_LABELS.device}`], ['bootstrap', 'system', LAUNCH_DAEMON_PATH]]);
  assert.ok(dplan.commands[1]!.untilGone && dplan.commands[1]!.untilGone.deadlineMs >= 25_000, 'the wait outlasts launchd\'s 20 s ExitTimeOut');
  assert.equal(dplan.commands[2]!.optional, undefined, 'a device bootstrap that fails is a failure');
  const uplan = darwinTasks.install(req);
  assert.deepEqual(uplan.commands.map((c) => c.args[0]), ['bootout', 'print', 'bootstrap']);
  assert.equal(uplan.commands[1]!.args[1], `gui/502/${MAC_LABELS.user}`);

  // launchctl as a stand-in: the job is still there for three polls after bootout (exit 0), then gone (113).
  const fast = { ...dplan, files: [], commands: dplan.commands.map((c) => (c.untilGone ? { ...c, untilGone: { deadlineMs: 2000, intervalMs: 10 } } : c)) };
  let polls = 0;
  const seen: string[] = [];
  const steps = await applyInstall(fast, async (c) => {
    seen.push(c.args[0]!);
    if (c.args[0] === 'print') return ++polls <= 3 ? { code: 0, stdout: 'state = running\n', stderr: '' } : { code: 113, stdout: '', stderr: 'Could not find service' };
    return { code: 0, stdout: '', stderr: '' };
  });
  assert.deepEqual(seen, ['bootout', 'print', 'print', 'print', 'print', 'bootstrap'], 'bootstrap only after the job is gone');
  assert.match(steps[1]!.detail, /gone after/);
  // A job that never goes: the install fails with what to do, and bootstrap is not attempted.
  const seen2: string[] = [];
  await assert.rejects(applyInstall({ ...fast, commands: fast.commands.map((c) => (c.untilGone ? { ...c, untilGone: { deadlineMs: 100, intervalMs: 10 } } : c)) }, async (c) => {
    seen2.push(c.args[0]!);
    return { code: 0, stdout: '', stderr: '' };
  }), (e: unknown) => /wait until launchd has let go of the previous device task failed: still there after 0\.1 s/.test((e as Error).message));
  assert.ok(!seen2.includes('bootstrap'));
  // A bootstrap that fails ("5: Input/output error") fails the device install.
  await assert.rejects(applyInstall(fast, async (c) => (c.args[0] === 'bootstrap' ? { code: 5, stdout: '', stderr: 'Bootstrap failed: 5: Input/output error' } : { code: c.args[0] === 'print' ? 113 : 0, stdout: '', stderr: '' })),
    /load the device task failed: .* exited with 5: Bootstrap failed: 5/);
  assert.ok(LAUNCHD_GONE_DEADLINE_MS >= 25_000);
});
