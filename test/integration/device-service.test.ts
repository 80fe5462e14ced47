/**
 * The trust boundary on Linux (docs/PROTOCOL.md §13), with real parts: an MIT KDC, the lab org over TLS, the
 * device side as root (`daemon --device`, the systemd device service's command), and the user side as an
 * unprivileged uid made for the test (useradd; setpriv), traced with strace. The machine keytab is root:0600: the
 * user side enrolls through the device side and never opens it; with the device side stopped it says so (exit 50),
 * keeps what it has and schedules a retry. Also, through the agent: the lab refuses a deviceId copied from another
 * machine (exit 30).
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { kerberosToolsAvailable, type Kdc } from '../../lab/kdc.js';
import { startLabOrg, type LabOrg } from '../../lab/org.js';
import { hasCommand } from '../support/host.js';
import { startKerberosLab } from '../support/kerberos-lab.js';
import { AGENT_BIN, makeProfile, REPO, runAgent, tempDir, writeRootCa, type AgentResult, type Profile } from '../support/agent.js';
import { nssUserCerts } from '../support/nss.js';
import { readState } from '../support/state.js';

const skipReason = !kerberosToolsAvailable() ? 'skipped: MIT Kerberos is not installed (apt install krb5-kdc krb5-admin-server krb5-user)'
  : process.getuid?.() !== 0 ? 'skipped: needs root (it creates a user and runs the device side as root)'
    : !hasCommand('useradd') || !hasCommand('setpriv') ? 'skipped: useradd/setpriv are not installed (passwd, util-linux)'
      : !hasCommand('strace') ? 'skipped: strace is not installed (apt install strace)' : undefined;
if (skipReason) console.log(`# device-service ${skipReason}`);

describe('device side and user side: the machine keytab stays with root (real KDC, lab org, strace)', { skip: skipReason }, () => {
  let kdc: Kdc;
  let lab: LabOrg;
  let rootCaFile: string;
  let kdcEnv: Record<string, string>;
  let channelDir: string;
  let device: ChildProcess | undefined;
  let deviceOut = '';
  const user = `dta${process.pid % 100000}`;
  let uid = 0;
  let gid = 0;
  const profiles: Profile[] = [];

  /** A profile owned by the test user, with alice's ticket in a ccache of its own. */
  async function userProfile(): Promise<Profile & { ccache: string }> {
    const p = makeProfile({ orgUrl: lab.orgUrl, rootCaFile, extraEnv: { USER: user } });
    const ccache = path.join(p.home, 'krb5cc');
    const env = await kdc.kinit(kdc.users[0]!.principal);
    fs.copyFileSync(env.KRB5CCNAME!.replace(/^FILE:/, ''), ccache);
    execFileSync('chown', ['-R', `${uid}:${gid}`, p.home]);
    profiles.push(p);
    return { ...p, ccache };
  }

  /** The user side, as the test user, under strace (open/openat of every thread and child). */
  function runAsUser(p: Profile & { ccache: string }, args: string[]): Promise<AgentResult & { opened: string[] }> {
    const traceFile = path.join(p.home, `strace-${Date.now()}.txt`);
    const env = {
      PATH: process.env.PATH ?? '/usr/bin:/bin', ...p.env, ...kdcEnv, KRB5CCNAME: `FILE:${p.ccache}`, DTA_DEVICE_CHANNEL_DIR: channelDir,
    };
    return new Promise((resolve, reject) => {
      const child = spawn('setpriv', [`--reuid=${uid}`, `--regid=${gid}`, '--clear-groups', '--',
        'strace', '-f', '-qq', '-e', 'trace=openat,open', '-o', traceFile, process.execPath, AGENT_BIN, ...args], { env, cwd: p.home, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d) => (stdout += d));
      child.stderr.on('data', (d) => (stderr += d));
      const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
      child.on('error', reject);
      child.on('close', (code) => {
        clearTimeout(timer);
        const trace = fs.readFileSync(traceFile, 'utf8');
        const opened = [...trace.matchAll(/open(?:at)?\((?:[^,]*, )?"([^"]*)"/g)].map((m) => m[1]!);
        resolve({ code: code ?? -1, stdout, stderr, opened });
      });
    });
  }

  async function startDeviceSide(): Promise<void> {
    await stopDeviceSide();
    const stateDir = tempDir('device-state');
    const home = tempDir('device-home');
    const env = {
      PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: home, ...kdcEnv,
      DTA_ORG_URL: lab.orgUrl, DTA_TLS_CA_FILE: rootCaFile, DTA_STATE_DIR: stateDir, DTA_DEVICE_CHANNEL_DIR: channelDir,
      DTA_DEVICE_KEYTAB: kdc.deviceKeytab, DTA_DEVICE_PRINCIPAL: kdc.devicePrincipal,
      DTA_MANAGED_CONFIG_DIR: path.join(home, 'managed'), DTA_BROWSER_POLICY_DIRS: path.join(home, 'policies'),
      DTA_FIREFOX_POLICY_DIRS: path.join(home, 'firefox'), DTA_METRICS_DIR: 'off',
    };
    deviceOut = '';
    device = spawn(process.execPath, [AGENT_BIN, 'daemon', '--device', '--no-network-watch'], { env, cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
    device.stdout!.on('data', (d) => (deviceOut += d));
    device.stderr!.on('data', (d) => (deviceOut += d));
    const t0 = Date.now();
    while (!/device channel listening/.test(deviceOut)) {
      if (Date.now() - t0 > 30_000 || device.exitCode !== null) throw new Error(`the device side did not start:\n${deviceOut}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async function stopDeviceSide(): Promise<void> {
    if (!device || device.exitCode !== null) return;
    const exited = new Promise((r) => device!.once('exit', r));
    device.kill('SIGTERM');
    await exited;
    device = undefined;
  }

  before(async () => {
    let kerberosLab;
    ({ kdc, lab, rootCaFile, agentEnv: kerberosLab } = await startKerberosLab());
    kdcEnv = { KRB5_CONFIG: kerberosLab.KRB5_CONFIG! };
    // The realm's directory is readable (krb5.conf, the lab CA), its keytabs are root's: as on a joined machine.
    fs.chmodSync(path.dirname(kdc.deviceKeytab), 0o755);
    fs.chownSync(kdc.deviceKeytab, 0, 0);
    fs.chmodSync(kdc.deviceKeytab, 0o600);
    fs.chmodSync(rootCaFile, 0o644);
    execFileSync('useradd', ['--no-create-home', '--home-dir', '/nonexistent', '--shell', '/usr/sbin/nologin', '--user-group', user]);
    uid = Number(execFileSync('id', ['-u', user], { encoding: 'utf8' }).trim());
    gid = Number(execFileSync('id', ['-g', user], { encoding: 'utf8' }).trim());
    channelDir = tempDir('channel');
    fs.chmodSync(channelDir, 0o755);
  });

  after(async () => {
    await stopDeviceSide();
    try {
      execFileSync('userdel', [user], { stdio: 'ignore' });
    } catch {
      /* not made */
    }
    await lab?.close();
    await kdc?.stop();
  });

  test('as an ordinary user with the keytab root:0600, run --user enrolls through the device side; the keytab is never opened', async () => {
    await startDeviceSide();
    const p = await userProfile();
    const r = await runAsUser(p, ['run', '--user', '--debug']);
    assert.equal(r.code, 0, r.stderr + r.stdout + deviceOut);
    assert.match(r.stdout, /Certificate enrolled/);
    assert.match(r.stderr, /Get a device token from the device service/);
    // strace saw the user side's files (so the trace is real), and not the keytab.
    assert.ok(r.opened.some((f) => f.endsWith('state.json')), `the trace has the user side's opens: ${r.opened.length}`);
    assert.ok(r.opened.some((f) => f === kdcEnv.KRB5_CONFIG), 'the user side read krb5.conf (for the user token)');
    assert.deepEqual(r.opened.filter((f) => f.includes('device.keytab')), [], 'the user side never opened the machine keytab');
    // The endpoint the device side made for this uid on its knock: only this user can enter it.
    const userDir = path.join(channelDir, 'users', String(uid));
    const st = fs.statSync(userDir);
    assert.equal(st.uid, uid);
    assert.equal(st.mode & 0o777, 0o700);
    const state = readState(p);
    assert.equal(nssUserCerts(p.nssDb)[0]!.serial, state.current.serialNumber);
    assert.match(deviceOut, new RegExp(`device token for uid ${uid} \\(device ${state.deviceId}`));
    // The certificate names the machine's principal: the lab bound the deviceId to it.
    assert.equal(lab.issued().find((i) => i.serialNumber === state.current.serialNumber)?.deviceId, state.deviceId);
  });

  test('with the device side stopped: exit 50, "the device service is not running" with the systemctl command, certificate kept, a retry scheduled; renewal still works', async () => {
    await startDeviceSide();
    const p = await userProfile();
    assert.equal((await runAsUser(p, ['run', '--user'])).code, 0);
    const before = readState(p);
    await stopDeviceSide();

    // A forced renewal needs a new device token: refused plainly, nothing lost.
    const forced = await runAsUser(p, ['run', '--user', '--forceRenewal']);
    assert.equal(forced.code, 50, forced.stdout + forced.stderr);
    const said = forced.stdout + forced.stderr;
    assert.match(said, /device service is not running/);
    assert.match(said, /systemctl start device-trust-agent-device\.service/);
    assert.doesNotMatch(said, /corporate network/);
    assert.deepEqual(forced.opened.filter((f) => f.includes('device.keytab')), []);
    const after = readState(p);
    assert.equal(after.current.serialNumber, before.current.serialNumber, 'the certificate is kept');
    assert.deepEqual(nssUserCerts(p.nssDb).map((c) => c.serial), [before.current.serialNumber]);

    // The scheduler's pass: the same words, a named state, and a next deadline.
    const pass = await runAsUser(p, ['daemon', '--once', '--trigger', 'manual', '--no-network-watch']);
    assert.match(pass.stdout, /DEVICE_SERVICE_DOWN/, pass.stdout + pass.stderr);
    assert.match(pass.stdout, /next \w[\w -]* at \d{4}-\d\d-\d\dT/, pass.stdout);

    // A fresh user who has nothing yet: the same, exit 50.
    const fresh = await userProfile();
    const r = await runAsUser(fresh, ['run', '--user']);
    assert.equal(r.code, 50, r.stdout + r.stderr);
    assert.match(r.stdout + r.stderr, /device service is not running/);

    // Renewal needs no machine identity (a token signed by the current key): it works with the device side down.
    const plain = await runAsUser(p, ['run', '--user']);
    assert.equal(plain.code, 50, 'the forced renewal requested above is still pending, and still needs the device side');
    lab.switches.renewalWindowSeconds = 400 * 86400;
    try {
      const fresh2 = await userProfile();
      await startDeviceSide();
      assert.equal((await runAsUser(fresh2, ['run', '--user'])).code, 0);
      await stopDeviceSide();
      const renewed = await runAsUser(fresh2, ['run', '--user']);
      assert.equal(renewed.code, 0, renewed.stdout + renewed.stderr);
      assert.match(renewed.stdout, /renewed/);
      assert.deepEqual(renewed.opened.filter((f) => f.includes('device.keytab')), []);
    } finally {
      lab.switches.renewalWindowSeconds = 30 * 86400;
    }
  });

  test('a keytab the device side cannot read is a configuration error naming the file, its owner and mode', () => {
    const script = `import(${JSON.stringify(path.join(REPO, 'dist', 'src-main', 'core', 'enrollment', 'device-service.js'))}).then((m) => { try { m.checkKeytabReadable(${JSON.stringify(kdc.deviceKeytab)}); console.log('readable'); } catch (e) { console.log(JSON.stringify({ failure: e.failure, code: e.code, message: e.message, remedy: e.remedy })); } })`;
    const out = execFileSync('setpriv', [`--reuid=${uid}`, `--regid=${gid}`, '--clear-groups', '--', process.execPath, '--input-type=module', '-e', script], { encoding: 'utf8', cwd: '/' });
    const e = JSON.parse(out);
    assert.equal(e.failure, 'config');
    assert.equal(e.code, 'DEVICE_KEYTAB_UNREADABLE');
    assert.match(e.message, new RegExp(`${kdc.deviceKeytab.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\(owner uid 0, mode 0600\\): EACCES`));
    assert.match(e.remedy, /never make the keytab readable by ordinary users/);
  });
});

describe('through the agent: the org refuses a deviceId copied from another machine', () => {
  let lab: LabOrg;
  let rootCaFile: string;
  before(async () => {
    lab = await startLabOrg({ allowLabSignIn: true });
    rootCaFile = writeRootCa(lab.rootCaPem);
  });
  after(async () => {
    await lab?.close();
  });

  test('ws02 with ws01\'s state.json: DEVICE_ID_BOUND, exit 30, nothing installed', async () => {
    const ws01 = makeProfile({ orgUrl: lab.orgUrl, rootCaFile, extraEnv: { DTA_LAB_SIGN_IN: 'true', DTA_DEVICE_NAME: 'ws01' } });
    assert.equal((await runAgent(['run'], ws01.env)).code, 0);
    const ws02 = makeProfile({ orgUrl: lab.orgUrl, rootCaFile, extraEnv: { DTA_LAB_SIGN_IN: 'true', DTA_DEVICE_NAME: 'ws02' } });
    const state = readState(ws01);
    fs.mkdirSync(ws02.stateDir, { recursive: true, mode: 0o700 });
    fs.writeFileSync(path.join(ws02.stateDir, 'state.json'), JSON.stringify({ version: state.version, deviceId: state.deviceId, createdAt: state.createdAt }));
    const r = await runAgent(['run'], ws02.env);
    assert.equal(r.code, 30, r.stdout + r.stderr);
    assert.equal(readState(ws02).lastRun.code, 'DEVICE_ID_BOUND');
    assert.match(r.stdout + r.stderr, /registered to another machine/);
    assert.match(r.stdout + r.stderr, /Do not copy agent state between machines/);
    assert.deepEqual(nssUserCerts(ws02.nssDb), []);
    assert.equal(lab.issued().filter((i) => i.deviceId === state.deviceId).length, 1);
  });
});
