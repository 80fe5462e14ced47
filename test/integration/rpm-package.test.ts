/**
 * The real RPM of the headless agent: `npm run package:linux` (build/package-linux.mjs) builds it with Debian's
 * rpmbuild from the same files and scripts as the DEB, and rpm installs, upgrades and erases it for real in a test
 * root. The root is this machine's own system as the read-only lower layer of an overlay (private mount namespace,
 * `unshare -m`), with every write going to an upper directory: rpm chroots into it to run %post/%preun/%postun with
 * a real /bin/sh, systemctl and libc, and the upper directory is exactly what the package changed. Its RPM database
 * starts empty (`rpm --initdb`), so rpm refuses the package with its declared Requires unmet (asserted), and the
 * tests then install with --nodeps: this Debian machine's libraries are dpkg's, not rpm's to see.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { startLabOrg, type LabOrg } from '../../lab/org.js';
import { makeProfile, REPO, tempDir, writeRootCa } from '../support/agent.js';

const NAME = 'device-trust-agent';
const LIB = `/usr/lib/${NAME}`;
/**
 * HOME of rpm and its scriptlets (chroot), as the DEB test gives dpkg its own: the device task run by %post (as root)
 * creates $HOME/.pki/nssdb and $HOME/.cache/dconf, which stay after erase — a finding for the device task, kept out
 * of the "nothing left behind" check here by pointing HOME at a directory of the test's own.
 */
const SCRIPTS_HOME = '/var/tmp/dta-rpm-test-home';

function have(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
}

/** Mounts MERGED as / overlaid with UPPER (writes) in a private mount namespace, then runs the rest there. */
const OVERLAY = 'set -e; mount -t overlay overlay -o "lowerdir=/,upperdir=$1,workdir=$2" "$3"; mount -t proc proc "$3/proc"; mount --rbind /dev "$3/dev"; shift 3; exec "$@"';

function probeOverlay(): string | undefined {
  if (!have('rpm') || !have('rpmbuild')) return 'rpm and rpmbuild are needed (Debian/Ubuntu: apt install rpm)';
  if (process.getuid?.() !== 0) return 'installing into an overlay root needs root (mount namespaces)';
  const r = fs.mkdtempSync('/tmp/dta-ovlprobe-');
  for (const d of ['u', 'w', 'm']) fs.mkdirSync(path.join(r, d));
  const p = spawnSync('unshare', ['-m', '--propagation', 'private', 'sh', '-c', OVERLAY, 'sh', `${r}/u`, `${r}/w`, `${r}/m`, 'true'], { encoding: 'utf8' });
  fs.rmSync(r, { recursive: true, force: true });
  return p.status === 0 ? undefined : `an overlay of / in a private mount namespace is not possible here: ${(p.stderr || p.error?.message || '').trim()}`;
}
const skipReason = probeOverlay();
if (skipReason) console.log(`# rpm-package skipped: ${skipReason}`);

interface Ran {
  code: number;
  out: string;
  err: string;
}

function run(file: string, args: string[], env: Record<string, string>, timeoutMs = 120_000): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, out, err });
    });
  });
}

/** One test root: the upper layer (what the package changed) and where it is mounted while a command runs. */
class OverlayRoot {
  readonly dir = fs.mkdtempSync('/tmp/dta-rpmroot-');
  readonly upper = path.join(this.dir, 'u');
  private readonly work = path.join(this.dir, 'w');
  readonly merged = path.join(this.dir, 'm');
  constructor() {
    for (const d of [this.upper, this.work, this.merged]) fs.mkdirSync(d);
  }
  /** Runs a command with the root mounted (the command sees it at this.merged). */
  exec(cmd: string[], env: Record<string, string> = {}): Promise<Ran> {
    return run('unshare', ['-m', '--propagation', 'private', 'sh', '-c', OVERLAY, 'sh', this.upper, this.work, this.merged, ...cmd], { HOME: SCRIPTS_HOME, ...env });
  }
  rpm(args: string[]): Promise<Ran> {
    return this.exec(['rpm', `--root=${this.merged}`, '--dbpath=/var/lib/rpm', ...args]);
  }
  /** A command run inside the root (chroot), as the package's scripts are. */
  chroot(cmd: string[], env: Record<string, string>): Promise<Ran> {
    return this.exec(['chroot', this.merged, ...cmd], env);
  }
  /** The root's file as this process sees it (written to the upper layer). */
  file(p: string): string {
    return path.join(this.upper, p);
  }
  /** What the root holds beyond this machine's own system: every path of the upper layer that / does not have. */
  changes(): string[] {
    const out: string[] = [];
    const walk = (rel: string) => {
      for (const e of fs.readdirSync(path.join(this.upper, rel), { withFileTypes: true })) {
        const p = path.join(rel, e.name);
        const lower = fs.existsSync(path.join('/', p)) && fs.lstatSync(path.join('/', p));
        if (e.isCharacterDevice()) out.push(`${p} (deleted)`); // an overlay whiteout: a file of this machine removed
        else if (e.isDirectory()) {
          if (!lower || !lower.isDirectory()) out.push(p);
          walk(p);
        } else out.push(p);
      }
    };
    walk('');
    return out.sort();
  }
  remove(): void {
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

function buildRpm(version: string, outDir: string, skipBuild: boolean): string {
  const r = spawnSync(process.execPath, [path.join(REPO, 'build', 'package-linux.mjs'), '--version', version, '--out', outDir, ...(skipBuild ? ['--skip-build'] : [])], { encoding: 'utf8', cwd: REPO });
  assert.equal(r.status, 0, r.stderr + r.stdout);
  const rpm = r.stdout.trim().split('\n').pop()!;
  assert.equal(path.basename(rpm), `${NAME}-${version}.x86_64.rpm`.replace('x86_64', rpmArch()));
  assert.ok(fs.existsSync(rpm), rpm);
  return rpm;
}

function rpmArch(): string {
  return ({ x64: 'x86_64', arm64: 'aarch64' } as Record<string, string>)[process.arch] ?? process.arch;
}

describe('the headless agent\'s RPM, built and installed for real (rpm --root on an overlay of this system)', { skip: skipReason }, () => {
  let lab: LabOrg;
  let root: OverlayRoot;
  let rpms: { v1: string; v2: string };
  let declared: { requires: string[]; recommends: string[] };
  const ORG_FILE = `etc/${NAME}/10-rpm-test-org.json`;
  const CA = 'etc/dta-rpm-test-root.pem';
  const installed = () => root.file(`usr/bin/${NAME}`);
  const stateDir = () => root.file(`var/lib/${NAME}`);
  const chromiumPolicy = () => root.file('etc/chromium/policies/managed/device-trust-agent.json');

  before(async () => {
    lab = await startLabOrg({ allowLabSignIn: true });
    const out = tempDir('rpms');
    rpms = { v1: buildRpm('0.1.0', out, false), v2: buildRpm('0.1.1', out, true) };
    const { DEPENDENCIES } = (await import(pathToFileURL(path.join(REPO, 'build', 'linux-dependencies.mjs')).href)) as { DEPENDENCIES: { requires: [string, string | null][]; recommends: [string, string | null][] } };
    declared = { requires: DEPENDENCIES.requires.map(([, r]) => r!).filter(Boolean), recommends: DEPENDENCIES.recommends.map(([, r]) => r!).filter(Boolean) };
    root = new OverlayRoot();
    // What an admin deploys beside the package: the org as managed configuration (inside the root's /etc).
    fs.mkdirSync(root.file(`etc/${NAME}`), { recursive: true });
    fs.writeFileSync(root.file(CA), lab.rootCaPem);
    fs.writeFileSync(root.file(ORG_FILE), JSON.stringify({ OktaURL: lab.orgUrl, tlsCaFile: `/${CA}` }));
    const init = await root.rpm(['--initdb']);
    assert.equal(init.code, 0, init.err);
  });

  after(async () => {
    await lab?.close();
    root?.remove();
  });

  test('the package declares what each path needs: Requires for the NSS + p11-kit path, Recommends for TPM and Kerberos', () => {
    const q = (flag: string) => spawnSync('rpm', ['-qp', flag, rpms.v1], { encoding: 'utf8' }).stdout.split('\n').filter((l) => l && !l.startsWith('rpmlib(') && l !== '/bin/sh');
    assert.deepEqual(q('--requires').sort(), [...declared.requires].sort());
    for (const r of ['nss-softokn', 'nss-tools', 'p11-kit', 'p11-kit-server']) assert.ok(q('--requires').includes(r), `Requires: ${r}`);
    assert.deepEqual(q('--recommends').sort(), [...declared.recommends].sort());
    for (const r of ['tpm2-pkcs11', 'tpm2-abrmd', 'python3-tpm2-pytss']) assert.ok(q('--recommends').includes(r), `Recommends: ${r}`);
    const list = spawnSync('rpm', ['-qpl', rpms.v1], { encoding: 'utf8' }).stdout;
    for (const p of [`${LIB}/node`, `${LIB}/device-trust-agent.mjs`, `${LIB}/helpers/tpm-attest.py`, `${LIB}/helpers/tpm2-ptool-stdin.py`, `/usr/bin/${NAME}`, '/usr/lib/systemd/system/device-trust-agent-device.timer', '/usr/lib/systemd/user/device-trust-agent.service']) {
      assert.ok(list.split('\n').includes(p), `${p} is in the package`);
    }
    assert.doesNotMatch(list, /electron|chrome-sandbox|libffmpeg|\.cpp$/im, 'no Electron, no add-on sources');
    assert.ok(!list.split('\n').includes('/usr/lib/systemd/system'), 'systemd\'s directories are not the package\'s to own (erase would remove them)');
    const scripts = spawnSync('rpm', ['-qp', '--scripts', rpms.v1], { encoding: 'utf8' }).stdout;
    for (const s of ['postinstall', 'preuninstall', 'postuninstall']) assert.match(scripts, new RegExp(`${s} scriptlet`));
  });

  test('rpmlint finds no error but the missing signature (packages are signed when published, by the fleet\'s repository key)', (t) => {
    if (!have('rpmlint')) {
      const why = 'skipped: rpmlint is not installed (apt install rpmlint)';
      console.log(`# ${why}`);
      t.skip(why);
      return;
    }
    const r = spawnSync('rpmlint', [rpms.v1], { encoding: 'utf8', timeout: 300_000 });
    const errors = r.stdout.split('\n').filter((l) => /: E: /.test(l) && !/: E: no-signature\b/.test(l));
    assert.deepEqual(errors, [], r.stdout);
  });

  test('rpm refuses the package on a root whose database lacks its Requires, naming each one', async () => {
    const r = await root.rpm(['-i', rpms.v1]);
    assert.notEqual(r.code, 0);
    for (const dep of declared.requires) assert.ok((r.out + r.err).includes(`${dep} is needed by ${NAME}-0.1.0`), `${dep} named\n${r.err}`);
    assert.ok(!fs.existsSync(installed()), 'nothing installed');
  });

  test('install (--nodeps: the libraries are this Debian machine\'s): %post enables the units and runs the device task, which writes the browser policy', async () => {
    const r = await root.rpm(['-i', '--nodeps', rpms.v1]);
    assert.equal(r.code, 0, r.out + r.err);
    assert.doesNotMatch(r.err, /first run did not complete/, r.err);
    assert.ok(fs.existsSync(installed()));
    const chromium = JSON.parse(fs.readFileSync(chromiumPolicy(), 'utf8'));
    assert.deepEqual(chromium.AutoSelectCertificateForUrls.map((e: string) => JSON.parse(e).pattern), [new URL(lab.mtlsUrl).origin]);
    assert.ok(fs.existsSync(path.join(stateDir(), 'state.json')), 'the device task\'s state lives in the root');
    // systemctl links the unit where it finds it: /lib/systemd/system on a Debian (merged /usr), /usr/lib elsewhere.
    assert.match(fs.readlinkSync(root.file('etc/systemd/system/timers.target.wants/device-trust-agent-device.timer')), /^(\/usr)?\/lib\/systemd\/system\/device-trust-agent-device\.timer$/);
    assert.ok(fs.lstatSync(root.file('etc/systemd/user/default.target.wants/device-trust-agent.service')).isSymbolicLink(), 'the user daemon is enabled for every user');
    const q = await root.rpm(['-q', NAME]);
    assert.equal(q.out.trim(), `${NAME}-0.1.0-1.${rpmArch()}`);
  });

  test('the installed program runs on its own Node: --version, then enrolls a user against the lab org and reports it', async () => {
    const v = await run(installed(), ['--version'], {});
    assert.equal(v.code, 0, v.err);
    assert.equal(v.out.trim(), '0.1.0');
    const p = makeProfile({ orgUrl: lab.orgUrl, rootCaFile: writeRootCa(lab.rootCaPem), extraEnv: { DTA_LAB_SIGN_IN: 'true' } });
    const r = await run(installed(), ['run', '--user'], p.env);
    assert.equal(r.code, 0, r.out + r.err);
    assert.match(r.out, /Certificate enrolled/);
    const s = await run(installed(), ['status', '--json'], p.env);
    assert.equal(JSON.parse(s.out).state, 'ENROLLED', s.out + s.err);
  });

  test('upgrade (rpm -U) keeps the device\'s state and identity, the policy and the enabled units', async () => {
    const deviceId = JSON.parse(fs.readFileSync(path.join(stateDir(), 'state.json'), 'utf8')).deviceId;
    const stateBefore = fs.readdirSync(stateDir()).sort();
    const r = await root.rpm(['-U', '--nodeps', rpms.v2]);
    assert.equal(r.code, 0, r.out + r.err);
    assert.equal((await root.rpm(['-q', NAME])).out.trim(), `${NAME}-0.1.1-1.${rpmArch()}`);
    assert.deepEqual(fs.readdirSync(stateDir()).sort().filter((f) => stateBefore.includes(f)), stateBefore);
    assert.equal(JSON.parse(fs.readFileSync(path.join(stateDir(), 'state.json'), 'utf8')).deviceId, deviceId, 'the same device identity');
    assert.ok(fs.existsSync(chromiumPolicy()), 'the old %preun (1 = upgrade) removed nothing');
    assert.ok(fs.lstatSync(root.file('etc/systemd/system/timers.target.wants/device-trust-agent-device.timer')).isSymbolicLink());
    assert.ok(fs.existsSync(installed()));
  });

  test('erase (rpm -e) leaves nothing behind: the root holds only the admin\'s files and the RPM database', async () => {
    const r = await root.rpm(['-e', NAME]);
    assert.equal(r.code, 0, r.out + r.err);
    assert.match(r.out + r.err, /Removed: .*device-trust-agent\.json/, '%preun ran browser-setup --remove');
    assert.notEqual((await root.rpm(['-q', NAME])).code, 0);
    const ours = (p: string) => p.startsWith('var/lib/rpm') || p.startsWith(SCRIPTS_HOME.slice(1)) || [`etc/${NAME}`, ORG_FILE, CA].includes(p);
    const left = root.changes().filter((p) => !ours(p));
    assert.deepEqual(left, [], `left behind: ${left.join(', ')}`);
    assert.ok(fs.existsSync(root.file(ORG_FILE)), 'the admin\'s managed configuration is not the package\'s to delete');
  });

  test('on a root without the NSS software token, the installed program says what is missing and which package to install', async () => {
    const bare = new OverlayRoot();
    try {
      assert.equal((await bare.rpm(['--initdb'])).code, 0);
      const i = await bare.rpm(['-i', '--nodeps', '--noscripts', rpms.v1]);
      assert.equal(i.code, 0, i.err);
      // The root without libnss3 (libsoftokn3.so): this machine's copies hidden in the overlay, as if never installed.
      const soft = ['/usr/lib/x86_64-linux-gnu/libsoftokn3.so', '/usr/lib/aarch64-linux-gnu/libsoftokn3.so', '/usr/lib64/libsoftokn3.so', '/usr/lib/libsoftokn3.so', '/usr/lib/x86_64-linux-gnu/nss/libsoftokn3.so'];
      const env = { HOME: '/tmp/alice', USER: 'alice', DTA_ORG_URL: lab.orgUrl, DTA_TLS_CA_FILE: '/tmp/lab-root.pem', DTA_LAB_SIGN_IN: 'true', DTA_METRICS_DIR: 'off',
        DTA_BROWSER_POLICY_DIRS: '/tmp/alice/policy', DTA_FIREFOX_POLICY_DIRS: '/tmp/alice/ff', DTA_MANAGED_CONFIG_DIR: '/tmp/alice/managed', PATH: '/usr/sbin:/usr/bin:/sbin:/bin' };
      fs.mkdirSync(bare.file('tmp/alice'), { recursive: true });
      fs.writeFileSync(bare.file('tmp/lab-root.pem'), lab.rootCaPem);
      const r = await bare.exec(['sh', '-c', `rm -f ${soft.map((f) => `"$0${f}"`).join(' ')} && exec chroot "$0" /usr/bin/${NAME} run --user`, bare.merged], env);
      assert.equal(r.code, 40, `a local failure (exit 40)\n${r.out}${r.err}`);
      assert.match(r.err, /The NSS software token \(libsoftokn3\.so\) is not installed/);
      assert.match(r.err, /What to do: .*apt install libnss3.*dnf install nss-softokn/);
    } finally {
      bare.remove();
    }
  });
});
