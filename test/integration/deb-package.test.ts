/**
 * The Linux package scripts, for real: a .deb built here with dpkg-deb from build/linux/*.sh (macros substituted as
 * electron-builder does) is installed, upgraded and purged with dpkg into a test root (`--root`, scripts run
 * `--force-script-chrootless` with DPKG_ROOT set). The payload's executable is a launcher for this checkout's
 * command line, standing in for the Electron binary that cannot be built here. The device task really runs
 * against the lab org and writes, then removes, the browser policies inside the test root.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startLabOrg, type LabOrg } from '../../lab/org.js';
import { AGENT_BIN, REPO, tempDir } from '../support/agent.js';

const PRODUCT = 'Device Trust Agent';
const EXECUTABLE = 'device-trust-agent';

function have(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
}

const skipReason = !have('dpkg-deb') || !have('dpkg') ? 'skipped: dpkg and dpkg-deb are needed (Debian/Ubuntu)' : undefined;
if (skipReason) console.log(`# deb-package ${skipReason}`);

/** electron-builder replaces ${macro} names in the scripts it hands to fpm; so do we. */
function script(name: string): string {
  return fs.readFileSync(path.join(REPO, 'build', 'linux', name), 'utf8').replace(/\$\{(productFilename|executable)\}/g, (_m, k: string) => (k === 'executable' ? EXECUTABLE : PRODUCT));
}

function buildDeb(version: string): string {
  const pkg = tempDir('debpkg');
  fs.mkdirSync(path.join(pkg, 'DEBIAN'));
  fs.writeFileSync(path.join(pkg, 'DEBIAN', 'control'), [
    `Package: ${EXECUTABLE}`, `Version: ${version}`, 'Architecture: all', 'Maintainer: Device Trust Agent contributors <dta@example.com>',
    'Description: Device Trust Agent (test package built from build/linux scripts)', '',
  ].join('\n'));
  for (const [file, src] of [['postinst', 'after-install.sh'], ['prerm', 'before-remove.sh'], ['postrm', 'after-remove.sh']] as const) {
    fs.writeFileSync(path.join(pkg, 'DEBIAN', file), script(src), { mode: 0o755 });
  }
  const appDir = path.join(pkg, 'opt', PRODUCT);
  fs.mkdirSync(appDir, { recursive: true });
  fs.writeFileSync(path.join(appDir, EXECUTABLE), `#!/bin/sh\nexec "${process.execPath}" "${AGENT_BIN}" "$@"\n`, { mode: 0o755 });
  const deb = path.join(tempDir('deb'), `${EXECUTABLE}_${version}_all.deb`);
  const r = spawnSync('dpkg-deb', ['--build', '--root-owner-group', pkg, deb], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return deb;
}

/** The link points into the root's /opt, which is not this machine's: check the link itself. */
function isLink(p: string): boolean {
  try {
    return fs.lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}

function makeRoot(): string {
  const root = tempDir('dpkgroot');
  for (const d of ['var/lib/dpkg/info', 'var/lib/dpkg/updates', 'var/lib/dpkg/triggers', 'var/lib/dpkg/alternatives', 'usr/bin', 'etc']) fs.mkdirSync(path.join(root, d), { recursive: true });
  for (const f of ['var/lib/dpkg/status', 'var/lib/dpkg/available']) fs.writeFileSync(path.join(root, f), '');
  return root;
}

/** dpkg runs here asynchronously: the lab org answering the device task lives in this process. */
function dpkg(root: string, args: string[], env: Record<string, string> = {}): Promise<{ code: number; out: string }> {
  const notRoot = process.getuid?.() !== 0 ? ['--force-not-root'] : [];
  return new Promise((resolve) => {
    const child = spawn('dpkg', [`--root=${root}`, '--force-script-chrootless', ...notRoot, `--log=${path.join(root, 'dpkg.log')}`, ...args], {
      env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', HOME: tempDir('dpkghome'), ...env },
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('close', (code) => resolve({ code: code ?? -1, out }));
  });
}

describe('DEB package scripts under a test root (dpkg --root, chrootless)', { skip: skipReason }, () => {
  let lab: LabOrg;
  let root: string;
  const chromiumPolicy = () => path.join(root, 'etc', 'chromium', 'policies', 'managed', 'device-trust-agent.json');
  const firefoxPolicies = () => path.join(root, 'etc', 'firefox', 'policies', 'policies.json');
  const adminFirefox = { policies: { DisableTelemetry: true } };

  before(async () => {
    lab = await startLabOrg({});
    root = makeRoot();
    const caFile = path.join(root, 'etc', 'lab-root.pem');
    fs.writeFileSync(caFile, lab.rootCaPem);
    // What an admin deploys beside the package: the org (install parameter OktaURL=) as managed configuration.
    fs.mkdirSync(path.join(root, 'etc', 'device-trust-agent'));
    fs.writeFileSync(path.join(root, 'etc', 'device-trust-agent', '10-org.json'), JSON.stringify({ OktaURL: lab.orgUrl, tlsCaFile: caFile }));
    fs.mkdirSync(path.dirname(firefoxPolicies()), { recursive: true });
    fs.writeFileSync(firefoxPolicies(), JSON.stringify(adminFirefox));
  });

  after(() => lab?.close());

  test('the scripts pass shellcheck (after macro substitution)', (t) => {
    if (!have('shellcheck')) {
      const why = 'skipped: shellcheck is not installed (apt install shellcheck)';
      console.log(`# ${why}`);
      t.skip(why);
      return;
    }
    const dir = tempDir('sc');
    const files = ['after-install.sh', 'before-remove.sh', 'after-remove.sh'].map((f) => {
      fs.writeFileSync(path.join(dir, f), script(f));
      return path.join(dir, f);
    });
    const r = spawnSync('shellcheck', ['-s', 'sh', ...files, path.join(REPO, 'build', 'pkg-scripts', 'postinstall'), path.join(REPO, 'build', 'macos', 'uninstall.sh')], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stdout + r.stderr);
  });

  test('install: the command is linked, the device task runs once and writes the browser policies into the root', async () => {
    const r = await dpkg(root, ['-i', buildDeb('0.1.0')]);
    assert.equal(r.code, 0, r.out);
    assert.equal(fs.readlinkSync(path.join(root, 'usr', 'bin', EXECUTABLE)), `/opt/${PRODUCT}/${EXECUTABLE}`);
    const chromium = JSON.parse(fs.readFileSync(chromiumPolicy(), 'utf8'));
    assert.deepEqual(chromium.AutoSelectCertificateForUrls.map((e: string) => JSON.parse(e).pattern), [new URL(lab.mtlsUrl).origin]);
    const ff = JSON.parse(fs.readFileSync(firefoxPolicies(), 'utf8'));
    assert.equal(ff.policies.DisableTelemetry, true, 'the admin\'s Firefox policy is kept');
    assert.equal(ff.policies.Preferences['security.default_personal_cert'].Value, 'Select Automatically');
    assert.ok(fs.existsSync(path.join(root, 'var', 'lib', 'device-trust-agent')), 'the device task\'s state lives in the root');
    assert.ok(!fs.existsSync('/etc/chromium/policies/managed/device-trust-agent.json') || fs.statSync('/etc/chromium/policies/managed/device-trust-agent.json').mtimeMs < Date.now() - 60_000,
      'nothing was written to this machine\'s own /etc');
  });

  test('upgrade keeps the policies (prerm "upgrade", like rpm %preun 1)', async () => {
    const r = await dpkg(root, ['-i', buildDeb('0.1.1')]);
    assert.equal(r.code, 0, r.out);
    assert.ok(fs.existsSync(chromiumPolicy()));
    assert.ok(isLink(path.join(root, 'usr', 'bin', EXECUTABLE)), 'the link survives the old version\'s postrm "upgrade"');
    const status = fs.readFileSync(path.join(root, 'var', 'lib', 'dpkg', 'status'), 'utf8');
    assert.match(status, /Package: device-trust-agent\nStatus: install ok installed[\s\S]*Version: 0\.1\.1/);
    assert.doesNotMatch(r.out, /Removed:/, 'the old prerm did not remove anything');
  });

  test('rpm semantics: %preun with 1 (upgrade) and %postun with 1 leave everything in place', async () => {
    const run = (name: string, arg: string) => new Promise<{ code: number; out: string }>((resolve) => {
      const file = path.join(tempDir('rpmsc'), name);
      fs.writeFileSync(file, script(name), { mode: 0o755 });
      const child = spawn('sh', [file, arg], { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', DPKG_ROOT: root } });
      let out = '';
      child.stdout.on('data', (d) => (out += d));
      child.stderr.on('data', (d) => (out += d));
      child.on('close', (code) => resolve({ code: code ?? -1, out }));
    });
    for (const name of ['before-remove.sh', 'after-remove.sh']) {
      const r = await run(name, '1');
      assert.equal(r.code, 0, r.out);
      assert.equal(r.out, '', `${name} 1 does nothing`);
    }
    assert.ok(fs.existsSync(chromiumPolicy()));
    assert.ok(isLink(path.join(root, 'usr', 'bin', EXECUTABLE)));
  });

  test('purge: our policies leave (the admin\'s Firefox policy stays), the link and the state go, /etc/device-trust-agent stays', async () => {
    const r = await dpkg(root, ['--purge', EXECUTABLE]);
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /Removed: .*device-trust-agent\.json/, 'prerm ran browser-setup --remove');
    assert.ok(!fs.existsSync(chromiumPolicy()));
    assert.deepEqual(JSON.parse(fs.readFileSync(firefoxPolicies(), 'utf8')), adminFirefox);
    assert.ok(!isLink(path.join(root, 'usr', 'bin', EXECUTABLE)));
    assert.ok(!fs.existsSync(path.join(root, 'opt', PRODUCT)));
    assert.ok(!fs.existsSync(path.join(root, 'var', 'lib', 'device-trust-agent')));
    assert.ok(fs.existsSync(path.join(root, 'etc', 'device-trust-agent', '10-org.json')), 'the admin\'s managed configuration is not the package\'s to delete');
  });
});
