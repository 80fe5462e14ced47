/**
 * The real Debian package of the headless agent: `npm run package:linux` (build/package-linux.mjs) builds it with
 * dpkg-deb — the bundled agent, the Node runtime that runs this test, the systemd units and the maintainer scripts —
 * and dpkg installs, upgrades and purges it in a test root (`--root`, scripts `--force-script-chrootless` with
 * DPKG_ROOT set). Everything the tests run, they run FROM THE INSTALLED FILES: the device task at install time, a
 * user enrollment against the lab org, and exactly what the units and `install` register.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startLabOrg, type LabOrg } from '../../lab/org.js';
import { AGENT_BIN, makeProfile, REPO, tempDir, writeRootCa } from '../support/agent.js';

const NAME = 'device-trust-agent';
const LIB = `/usr/lib/${NAME}`;

function have(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
}

const skipReason = !have('dpkg-deb') || !have('dpkg') ? 'skipped: dpkg and dpkg-deb are needed (Debian/Ubuntu)' : undefined;
if (skipReason) console.log(`# deb-package ${skipReason}`);

interface Ran {
  code: number;
  out: string;
  err: string;
}

/** Runs a program asynchronously: the lab org answering it lives in this process. */
/** The device service's first pass has finished (the daemon's line for it). */
const DEVICE_PASS_DONE = / (?:pass: \w|\w+: skipped)/;

/** `stopWhen`: a long-running program (the device service) is sent SIGTERM, as systemd stops it, once its output matches. */
function run(file: string, args: string[], env: Record<string, string>, timeoutMs = 120_000, stopWhen?: RegExp): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let stopped = false;
    child.stdout.on('data', (d) => {
      out += d;
      // Once: a second SIGTERM would end the daemon while it is stopping cleanly.
      if (!stopped && stopWhen?.test(out)) {
        stopped = true;
        child.kill('SIGTERM');
      }
    });
    child.stderr.on('data', (d) => (err += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, out, err });
    });
  });
}

/** The package as `npm run package:linux` builds it (the headless bundle is built once, then repackaged). */
function buildDeb(version: string, outDir: string, skipBuild: boolean): string {
  const r = spawnSync(process.execPath, [path.join(REPO, 'build', 'package-linux.mjs'), '--version', version, '--out', outDir, '--no-rpm', ...(skipBuild ? ['--skip-build'] : [])], { encoding: 'utf8', cwd: REPO });
  assert.equal(r.status, 0, r.stderr + r.stdout);
  const deb = r.stdout.trim().split('\n').filter((l) => l.endsWith('.deb')).pop()!;
  assert.ok(fs.existsSync(deb), deb);
  return deb;
}

function makeRoot(): string {
  const root = tempDir('dpkgroot');
  for (const d of ['var/lib/dpkg/info', 'var/lib/dpkg/updates', 'var/lib/dpkg/triggers', 'var/lib/dpkg/alternatives', 'usr/bin', 'etc']) fs.mkdirSync(path.join(root, d), { recursive: true });
  for (const f of ['var/lib/dpkg/status', 'var/lib/dpkg/available']) fs.writeFileSync(path.join(root, f), '');
  return root;
}

/** Every path under the root but dpkg's own database and log. */
function tree(root: string): string[] {
  const out: string[] = [];
  (function walk(rel: string) {
    for (const e of fs.readdirSync(path.join(root, rel), { withFileTypes: true })) {
      const p = path.join(rel, e.name);
      if (p === 'var/lib/dpkg' || p === 'dpkg.log') continue;
      out.push(p);
      if (e.isDirectory()) walk(p);
    }
  })('');
  return out.sort();
}

/** systemd's ExecStart= split into arguments (the quoting systemdArg writes: "…" with \-escapes, %% and $$). */
function execStart(unit: string): string[] {
  const line = /^ExecStart=(.*)$/m.exec(unit)?.[1];
  assert.ok(line, `no ExecStart in\n${unit}`);
  const args: string[] = [];
  for (const m of line.matchAll(/"((?:[^"\\]|\\.)*)"|(\S+)/g)) args.push((m[1] !== undefined ? m[1].replace(/\\(.)/g, '$1') : m[2]!).replace(/%%/g, '%').replace(/\$\$/g, '$'));
  return args;
}

describe('the headless agent\'s DEB, built and installed for real (dpkg --root, chrootless scripts)', { skip: skipReason }, () => {
  let lab: LabOrg;
  let root: string;
  let debs: { v1: string; v2: string };
  let before0: string[];
  let caFile: string;
  const installed = () => path.join(root, 'usr', 'bin', NAME);
  const stateDir = () => path.join(root, 'var', 'lib', NAME);
  const chromiumPolicy = () => path.join(root, 'etc', 'chromium', 'policies', 'managed', 'device-trust-agent.json');
  const firefoxPolicies = () => path.join(root, 'etc', 'firefox', 'policies', 'policies.json');
  const adminFirefox = { policies: { DisableTelemetry: true } };
  /** What the package scripts give the agent when installing into another root (after-install.sh). */
  const rootEnv = () => ({
    DTA_STATE_DIR: stateDir(),
    DTA_MANAGED_CONFIG_DIR: path.join(root, 'etc', NAME),
    DTA_BROWSER_POLICY_DIRS: path.join(root, 'etc', 'chromium', 'policies', 'managed'),
    DTA_FIREFOX_POLICY_DIRS: path.join(root, 'etc', 'firefox', 'policies'),
    HOME: tempDir('roothome'),
  });
  // --force-depends: the test root's dpkg database knows no libc6 (this machine's libraries are what runs).
  const dpkg = (args: string[]) => run('dpkg', [`--root=${root}`, '--force-script-chrootless', '--force-depends', ...(process.getuid?.() !== 0 ? ['--force-not-root'] : []), `--log=${path.join(root, 'dpkg.log')}`, ...args],
    { HOME: tempDir('dpkghome') });

  before(async () => {
    lab = await startLabOrg({ allowLabSignIn: true });
    const out = tempDir('debs');
    debs = { v1: buildDeb('0.1.0', out, false), v2: buildDeb('0.1.1', out, true) };
    root = makeRoot();
    caFile = path.join(root, 'etc', 'lab-root.pem');
    fs.writeFileSync(caFile, lab.rootCaPem);
    // What an admin deploys beside the package: the org (install parameter OktaURL=) as managed configuration.
    fs.mkdirSync(path.join(root, 'etc', NAME));
    fs.writeFileSync(path.join(root, 'etc', NAME, '10-org.json'), JSON.stringify({ OktaURL: lab.orgUrl, tlsCaFile: caFile }));
    fs.mkdirSync(path.dirname(firefoxPolicies()), { recursive: true });
    fs.writeFileSync(firefoxPolicies(), JSON.stringify(adminFirefox));
    before0 = tree(root);
  });

  after(() => lab?.close());

  test('the package holds the headless program with its own Node, the units and the scripts — no Electron', () => {
    const list = spawnSync('dpkg-deb', ['--contents', debs.v1], { encoding: 'utf8' }).stdout;
    for (const p of [`.${LIB}/node`, `.${LIB}/device-trust-agent.mjs`, `.${LIB}/helpers/tpm-attest.py`, `.${LIB}/helpers/tpm2-ptool-stdin.py`, './usr/bin/device-trust-agent', './usr/lib/systemd/system/device-trust-agent-device.timer',
      './usr/lib/systemd/system/device-trust-agent-device.service', './usr/lib/systemd/user/device-trust-agent.service', './usr/lib/systemd/user/device-trust-agent-check.timer']) {
      assert.ok(list.includes(` ${p}\n`), `${p} is in the package`);
    }
    assert.doesNotMatch(list, /electron|chrome-sandbox|libffmpeg/i, 'no Electron in the headless package');
    const control = spawnSync('dpkg-deb', ['--info', debs.v1], { encoding: 'utf8' }).stdout;
    assert.match(control, /postinst/);
    assert.match(control, /prerm/);
    assert.match(control, /postrm/);
    // What each path needs (build/linux-dependencies.mjs): the NSS software token, certutil and p11-kit for the
    // default path; the TPM path's packages only recommended.
    assert.match(control, /Depends: libc6, libstdc\+\+6, libnss3, libnss3-tools, p11-kit, p11-kit-modules\n/);
    assert.match(control, /Recommends: libtpm2-pkcs11-1, libtpm2-pkcs11-tools, tpm2-abrmd, libtss2-tcti-tabrmd0, python3-tpm2-pytss, krb5-user, openssl, tpm2-tools, libengine-pkcs11-openssl\n/);
  });

  test('the maintainer scripts pass shellcheck (as packaged)', (t) => {
    if (!have('shellcheck')) {
      const why = 'skipped: shellcheck is not installed (apt install shellcheck)';
      console.log(`# ${why}`);
      t.skip(why);
      return;
    }
    const dir = tempDir('sc');
    const r0 = spawnSync('dpkg-deb', ['--control', debs.v1, dir]);
    assert.equal(r0.status, 0);
    const r = spawnSync('shellcheck', ['-s', 'sh', ...['postinst', 'prerm', 'postrm'].map((f) => path.join(dir, f)), path.join(REPO, 'build', 'pkg-scripts', 'postinstall'), path.join(REPO, 'build', 'macos', 'uninstall.sh')], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stdout + r.stderr);
  });

  test('install: postinst enables the shipped units and runs the device task once, which writes the browser policies into the root', async () => {
    const r = await dpkg(['-i', debs.v1]);
    assert.equal(r.code, 0, r.out + r.err);
    assert.ok(fs.existsSync(installed()));
    const chromium = JSON.parse(fs.readFileSync(chromiumPolicy(), 'utf8'));
    assert.deepEqual(chromium.AutoSelectCertificateForUrls.map((e: string) => JSON.parse(e).pattern), [new URL(lab.mtlsUrl).origin]);
    const ff = JSON.parse(fs.readFileSync(firefoxPolicies(), 'utf8'));
    assert.equal(ff.policies.DisableTelemetry, true, 'the admin\'s Firefox policy is kept');
    // No global "Select Automatically" (every site would get the device ID): the user task remembers the certificate
    // per org host in each profile instead; the admin's opt-in FirefoxSelectAutomatically=true would add it.
    assert.equal(ff.policies.Preferences?.['security.default_personal_cert'], undefined);
    assert.ok(fs.existsSync(path.join(stateDir(), 'state.json')) || fs.readdirSync(stateDir()).length > 0, 'the device task\'s state lives in the root');
    assert.equal(fs.readlinkSync(path.join(root, 'etc/systemd/system/timers.target.wants/device-trust-agent-device.timer')), '/usr/lib/systemd/system/device-trust-agent-device.timer');
    assert.ok(fs.lstatSync(path.join(root, 'etc/systemd/user/default.target.wants/device-trust-agent.service')).isSymbolicLink(), 'the user daemon is enabled for every user');
    assert.ok(fs.lstatSync(path.join(root, 'etc/systemd/user/timers.target.wants/device-trust-agent-check.timer')).isSymbolicLink());
  });

  test('the installed program runs on its own Node and is no Electron: --version, help, run --device', async () => {
    const v = await run(installed(), ['--version'], {});
    assert.equal(v.code, 0, v.err);
    assert.equal(v.out.trim(), '0.1.0');
    const dev = await run(installed(), ['run', '--device'], rootEnv());
    assert.ok(dev.code === 0 || dev.code === 10, `run --device from the installed path: exit ${dev.code}\n${dev.out}${dev.err}`);
    assert.ok(fs.existsSync(chromiumPolicy()));
  });

  test('the installed program enrolls a user against the lab org (run --user, then status)', async () => {
    const p = makeProfile({ orgUrl: lab.orgUrl, rootCaFile: writeRootCa(lab.rootCaPem), extraEnv: { DTA_LAB_SIGN_IN: 'true' } });
    const r = await run(installed(), ['run', '--user'], p.env);
    assert.equal(r.code, 0, r.out + r.err);
    assert.match(r.out, /Certificate enrolled/);
    const s = await run(installed(), ['status', '--json'], p.env);
    assert.equal(JSON.parse(s.out).state, 'ENROLLED', s.out + s.err);
    const certs = spawnSync('certutil', ['-L', '-d', `sql:${p.nssDb}`], { encoding: 'utf8' });
    assert.match(certs.stdout, /device-trust-/, 'the certificate is in the user\'s NSS database');
  });

  test('the shipped units pass systemd-analyze verify, and their ExecStart runs the installed program', async (t) => {
    const unitDir = path.join(root, 'usr', 'lib', 'systemd', 'system');
    const service = fs.readFileSync(path.join(unitDir, 'device-trust-agent-device.service'), 'utf8');
    const argv = execStart(service);
    assert.deepEqual(argv.slice(0, 2), [`${LIB}/node`, `${LIB}/device-trust-agent.mjs`], 'the units start the headless program, not Electron');
    // In a private mount namespace the root's /usr/lib is laid over this machine's (read-only overlay), so systemd
    // finds the units' programs where the package puts them and this machine's targets beside them.
    const verify = (args: string[]) => spawnSync('unshare', ['-m', 'sh', '-c', `mount -t overlay overlay -o lowerdir="$1/usr/lib":/usr/lib /usr/lib && shift && exec systemd-analyze verify "$@"`, 'sh', root, ...args],
      { encoding: 'utf8', env: { ...process.env, XDG_RUNTIME_DIR: tempDir('xdg') } });
    const probe = spawnSync('unshare', ['-m', 'sh', '-c', `mount -t overlay overlay -o lowerdir="$1/usr/lib":/usr/lib /usr/lib && command -v systemd-analyze`, 'sh', root], { encoding: 'utf8' });
    if (probe.status !== 0) {
      const why = `skipped: systemd-analyze verify needs systemd-analyze (apt install systemd) and a private mount namespace (unshare -m, root): ${(probe.stderr || probe.error?.message || '').trim()}`;
      console.log(`# ${why}`);
      t.skip(why);
    } else {
      const v = verify(['device-trust-agent-device.service', 'device-trust-agent-device.timer'].map((u) => path.join('/usr/lib/systemd/system', u)));
      assert.equal(v.status, 0, v.stderr + v.stdout);
      const vu = verify(['--user', ...fs.readdirSync(path.join(root, 'usr', 'lib', 'systemd', 'user')).map((u) => path.join('/usr/lib/systemd/user', u))]);
      assert.equal(vu.status, 0, vu.stderr + vu.stdout);
      // And verify notices a unit whose program is missing (here: outside the namespace, nothing is installed).
      const outside = spawnSync('systemd-analyze', ['verify', path.join(unitDir, 'device-trust-agent-device.service')], { encoding: 'utf8' });
      if (!fs.existsSync(`${LIB}/node`)) assert.notEqual(outside.status, 0, 'verify checks that ExecStart= exists');
    }
    // The unit's command, as systemd would run it (its absolute paths inside the test root).
    const [file, ...args] = argv.map((a) => (a.startsWith(LIB) ? path.join(root, a) : a));
    // The device service runs until stopped: its first pass done, it is stopped as systemd would.
    const r = await run(file!, args.map((a) => (a === '/var/lib/device-trust-agent' ? stateDir() : a)), { ...rootEnv(), DTA_DEVICE_CHANNEL_DIR: tempDir('channel') }, 120_000, DEVICE_PASS_DONE);
    assert.ok([0, 10, 20].includes(r.code), `the device service's ExecStart: exit ${r.code}\n${r.out}${r.err}`);
    assert.match(r.out, /device channel listening/);
    assert.doesNotMatch(r.err, /Unknown command/);
  });

  test('`install` registers the program it is part of: from the package and from a source checkout, what it registers runs', async () => {
    for (const [what, cmd] of [['installed package', [installed()]], ['source checkout', [process.execPath, AGENT_BIN]]] as const) {
      const sd = tempDir('regstate');
      const r = await run(cmd[0], [...cmd.slice(1), 'install', '--device', '--dry-run', '--json', '--state-dir', sd], rootEnv());
      assert.equal(r.code, 0, r.out + r.err);
      const plan = JSON.parse(r.out) as { files: { path: string; content: string }[] };
      const unit = plan.files.find((f) => f.path.endsWith('device-trust-agent-device.service'))!.content;
      const [file, ...args] = execStart(unit);
      if (what === 'installed package') assert.deepEqual([file, args[0]], [path.join(root, LIB, 'node'), path.join(root, LIB, 'device-trust-agent.mjs')]);
      else assert.deepEqual([file, args[0]], [process.execPath, AGENT_BIN]);
      const ran = await run(file!, args, { ...rootEnv(), DTA_DEVICE_CHANNEL_DIR: tempDir('channel') }, 120_000, DEVICE_PASS_DONE);
      assert.ok([0, 10].includes(ran.code), `${what}: the registered command exited ${ran.code}\n${ran.out}${ran.err}`);
      assert.ok(fs.readdirSync(sd).length > 0, `${what}: the registered command ran the device task (state in ${sd})`);
    }
  });

  test('upgrade keeps the state, the policies and the enabled units (old prerm "upgrade" does nothing)', async () => {
    const stateBefore = fs.readdirSync(stateDir()).sort();
    const deviceId = JSON.parse(fs.readFileSync(path.join(stateDir(), 'state.json'), 'utf8')).deviceId;
    const r = await dpkg(['-i', debs.v2]);
    assert.equal(r.code, 0, r.out + r.err);
    assert.deepEqual(fs.readdirSync(stateDir()).sort().filter((f) => stateBefore.includes(f)), stateBefore);
    assert.equal(JSON.parse(fs.readFileSync(path.join(stateDir(), 'state.json'), 'utf8')).deviceId, deviceId, 'the same device identity');
    assert.ok(fs.existsSync(chromiumPolicy()));
    assert.ok(fs.lstatSync(path.join(root, 'etc/systemd/system/timers.target.wants/device-trust-agent-device.timer')).isSymbolicLink());
    const status = fs.readFileSync(path.join(root, 'var', 'lib', 'dpkg', 'status'), 'utf8');
    assert.match(status, /Package: device-trust-agent\nStatus: install ok installed[\s\S]*Version: 0\.1\.1/);
    assert.equal((await run(installed(), ['--version'], {})).out.trim(), '0.1.0', 'the program reports its own version (package.json), not the package\'s test version');
  });

  test('purge removes everything it added: the root is as before install, the admin\'s files stay', async () => {
    const r = await dpkg(['--purge', NAME]);
    assert.equal(r.code, 0, r.out + r.err);
    assert.match(r.out + r.err, /Removed: .*device-trust-agent\.json/, 'prerm ran browser-setup --remove');
    assert.deepEqual(JSON.parse(fs.readFileSync(firefoxPolicies(), 'utf8')), adminFirefox);
    assert.ok(fs.existsSync(path.join(root, 'etc', NAME, '10-org.json')), 'the admin\'s managed configuration is not the package\'s to delete');
    const left = tree(root).filter((p) => !before0.includes(p));
    assert.deepEqual(left, [], `left behind: ${left.join(', ')}`);
  });
});
