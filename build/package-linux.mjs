#!/usr/bin/env node
// `npm run package:linux`: the headless agent as a Debian package (dpkg-deb) and an RPM (rpmbuild: Debian's `rpm`
// package builds it here too), the same files and scripts in both (no Electron):
//   /usr/bin/device-trust-agent                  launcher (sh): the Node runtime below + the bundled agent
//   /usr/lib/device-trust-agent/                 node (the runtime npm installed for this project),
//                                                device-trust-agent.mjs + lib/ (esbuild), node_modules/ (natives)
//   /usr/lib/systemd/system/device-trust-agent-device.{service,timer}   the device task (root), enabled by postinst
//   /usr/lib/systemd/user/device-trust-agent{,-check}.service, -check.timer   the user task, enabled globally
//   DEBIAN/postinst, prerm, postrm               build/linux/after-install.sh, before-remove.sh, after-remove.sh
//   (RPM: %post, %preun, %postun)                the same scripts: they take deb's and rpm's arguments alike
// The units come from the same code as `device-trust-agent install` (src-main/platform/tasks/linux.ts).
// Options: --version V (default package.json's), --out DIR (default release/), --no-rpm. Prints the .deb's path,
// then the .rpm's (when rpmbuild is installed; without it says how to get it and builds the .deb alone).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { DEPENDENCIES } from './linux-dependencies.mjs';
import { launcherScript } from './launcher.mjs';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({ options: { version: { type: 'string' }, out: { type: 'string' }, 'skip-build': { type: 'boolean' }, 'no-rpm': { type: 'boolean' } } });
const pkg = JSON.parse(fs.readFileSync(path.join(repo, 'package.json'), 'utf8'));
const version = values.version ?? pkg.version;
const outDir = path.resolve(values.out ?? path.join(repo, 'release'));
const NAME = 'device-trust-agent';
const LIB = `/usr/lib/${NAME}`;
const MACROS = { productFilename: 'Device Trust Agent', executable: NAME };

function must(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8', ...opts });
  if (r.error?.code === 'ENOENT') {
    console.error(`${cmd} is not installed: it is needed to build the package (Debian/Ubuntu: apt install ${cmd.startsWith('rpm') ? 'rpm' : 'dpkg-dev'}).`);
    process.exit(2);
  }
  if (r.status !== 0) {
    console.error(`${cmd} ${args.join(' ')} failed:\n${r.stderr}${r.stdout}`);
    process.exit(1);
  }
  return (r.stdout ?? "").trim();
}

if (!values['skip-build']) must(process.execPath, [path.join(repo, 'build', 'headless.mjs'), '--with-node'], { stdio: 'inherit' });
const headless = path.join(repo, 'dist', 'headless');
if (!fs.existsSync(path.join(headless, 'node'))) {
  console.error('dist/headless/node is missing: run node build/headless.mjs --with-node first.');
  process.exit(1);
}
const arch = must('dpkg', ['--print-architecture']);
const stage = fs.mkdtempSync(path.join(os.tmpdir(), 'dta-deb-'));
try {
  fs.mkdirSync(path.join(stage, 'usr', 'lib'), { recursive: true });
  fs.cpSync(headless, path.join(stage, LIB), { recursive: true });
  fs.mkdirSync(path.join(stage, 'usr', 'bin'));
  // Relative to its own location, so the same launcher works from any root (dpkg --root, a chroot, a test).
  fs.writeFileSync(path.join(stage, 'usr', 'bin', NAME), launcherScript({ node: `"$here/../lib/${NAME}/node"`, lib: `"$here/../lib/${NAME}"`,
    comment: `The headless Device Trust Agent: its own Node runtime and bundled script (${LIB}).` }), { mode: 0o755 });

  const { deviceUnits, userUnits } = await import(pathToFileURL(path.join(repo, 'dist', 'src-main', 'platform', 'tasks', 'linux.js')).href);
  const req = { scope: 'device', agent: [`${LIB}/node`, `${LIB}/device-trust-agent.mjs`], extraArgs: [], env: {} };
  for (const [dir, units] of [['system', deviceUnits(req)], ['user', userUnits({ ...req, scope: 'user' })]]) {
    const d = path.join(stage, 'usr', 'lib', 'systemd', dir);
    fs.mkdirSync(d, { recursive: true });
    for (const [name, text] of Object.entries(units)) {
      fs.writeFileSync(path.join(d, name), text.replace(/^# Written by device-trust-agent install.*$/m, `# Shipped by the ${NAME} package; enabled by its postinst, disabled by its prerm.`), { mode: 0o644 });
    }
  }

  fs.mkdirSync(path.join(stage, 'DEBIAN'));
  const size = Math.ceil(Number(must('du', ['-sk', '--exclude=DEBIAN', stage]).split(/\s/)[0]));
  fs.writeFileSync(path.join(stage, 'DEBIAN', 'control'), [
    `Package: ${NAME}`, `Version: ${version}`, `Architecture: ${arch}`, `Maintainer: Device Trust Agent contributors <dta@example.com>`,
    `Installed-Size: ${size}`, 'Section: admin', 'Priority: optional',
    `Depends: ${DEPENDENCIES.requires.map(([deb]) => deb).join(', ')}`,
    `Recommends: ${DEPENDENCIES.recommends.map(([deb]) => deb).join(', ')}`,
    'Suggests: device-trust-agent-tray',
    `Description: Device Trust Agent (headless program, Node ${process.version} included)`,
    ' Enrolls this device for mutual-TLS device trust and keeps its certificate current: the device task',
    ' (systemd timer, root) and the user task (systemd user units) run this program; the tray app is separate.',
    '',
  ].join('\n'));
  // The same scripts electron-builder hands to fpm for the tray app's package, its ${name} macros substituted alike.
  const script = (src) => fs.readFileSync(path.join(repo, 'build', 'linux', src), 'utf8').replace(/\$\{(productFilename|executable)\}/g, (_m, k) => MACROS[k]);
  const SCRIPTS = [['postinst', '%post', 'after-install.sh'], ['prerm', '%preun', 'before-remove.sh'], ['postrm', '%postun', 'after-remove.sh']];
  for (const [file, , src] of SCRIPTS) fs.writeFileSync(path.join(stage, 'DEBIAN', file), script(src), { mode: 0o755 });
  fs.mkdirSync(outDir, { recursive: true });
  const deb = path.join(outDir, `${NAME}_${version}_${arch}.deb`);
  must('dpkg-deb', ['--build', '--root-owner-group', '-Zgzip', '-z3', stage, deb]);
  console.log(deb);
  if (!values['no-rpm']) {
    if (spawnSync('sh', ['-c', 'command -v rpmbuild'], { stdio: 'ignore' }).status !== 0) {
      console.error('rpmbuild is not installed: the .rpm is not built (Debian/Ubuntu: apt install rpm).');
    } else {
      console.log(buildRpm(stage, script, SCRIPTS));
    }
  }
} finally {
  fs.rmSync(stage, { recursive: true, force: true });
}

/** The RPM, from the same staged files and scripts (rpm passes 1/2 to %post, 0/1 to %preun and %postun). */
function buildRpm(stage, script, scripts) {
  const top = fs.mkdtempSync(path.join(os.tmpdir(), 'dta-rpm-'));
  try {
    const rpmArch = { amd64: 'x86_64', arm64: 'aarch64' }[arch] ?? arch;
    // Every file the package owns; directories only where they are ours (/usr/lib/systemd/* belongs to systemd).
    const files = [];
    (function walk(rel) {
      for (const e of fs.readdirSync(path.join(stage, rel), { withFileTypes: true })) {
        const p = path.posix.join(rel, e.name);
        if (p === 'DEBIAN') continue;
        if (p === LIB.slice(1)) files.push(`/${p}`); // the whole tree, directories included
        else if (e.isDirectory()) walk(p);
        else files.push(`/${p}`);
      }
    })('');
    const [rpmVersion, rpmRelease] = version.includes('-') ? [version.slice(0, version.indexOf('-')), version.slice(version.indexOf('-') + 1).replace(/-/g, '.')] : [version, '1'];
    const spec = [
      `Name: ${NAME}`, `Version: ${rpmVersion}`, `Release: ${rpmRelease}`, `Summary: Device Trust Agent (headless program, Node ${process.version} included)`,
      `License: ${pkg.license}`, 'Group: System Environment/Daemons', 'Packager: Device Trust Agent contributors <dta@example.com>',
      'URL: https://example.com/device-trust-agent', `BuildArch: ${rpmArch}`,
      // The dependencies are declared by path below, not derived from the bundled Node and add-ons' ELF headers.
      'AutoReqProv: no',
      `Requires: ${DEPENDENCIES.requires.map(([, rpm]) => rpm).filter(Boolean).join(', ')}`,
      ...DEPENDENCIES.recommends.filter(([, rpm]) => rpm).map(([, rpm]) => `Recommends: ${rpm}`),
      // The files are built already (esbuild, the Node binary): no debuginfo split, no stripping, no byte-compiling.
      '%global debug_package %{nil}', '%global __os_install_post %{nil}', '%global _build_id_links none',
      '%description',
      'Enrolls this device for mutual-TLS device trust and keeps its certificate',
      'current: the device task (systemd timer, root) and the user task (systemd',
      'user units) run this program; the tray app is separate.',
      '%install', `cp -a ${JSON.stringify(path.join(stage, 'usr'))} %{buildroot}/`,
      ...scripts.flatMap(([, tag, src]) => [`${tag} -p /bin/sh`, script(src).replace(/%/g, '%%')]),
      '%files', '%defattr(-,root,root,-)', ...files.map((f) => (/\s/.test(f) ? JSON.stringify(f) : f)),
      '%changelog', `* ${new Date(Number(process.env.SOURCE_DATE_EPOCH ?? Date.now() / 1000) * 1000).toUTCString().replace(/^(\w+), (\d+) (\w+) (\d+).*$/, '$1 $3 $2 $4')} Device Trust Agent contributors <dta@example.com> - ${rpmVersion}-${rpmRelease}`,
      `- Built by npm run package:linux (see the project's git history for changes).`,
      '',
    ].join('\n');
    const specFile = path.join(top, `${NAME}.spec`);
    fs.writeFileSync(specFile, spec);
    must('rpmbuild', ['-bb', '--quiet', '--define', `_topdir ${top}`, '--define', '_binary_payload w3.gzdio', '--target', rpmArch, specFile]);
    const built = path.join(top, 'RPMS', rpmArch, `${NAME}-${rpmVersion}-${rpmRelease}.${rpmArch}.rpm`);
    const rpm = path.join(outDir, `${NAME}-${version}.${rpmArch}.rpm`);
    fs.copyFileSync(built, rpm);
    return rpm;
  } finally {
    fs.rmSync(top, { recursive: true, force: true });
  }
}
