#!/usr/bin/env node
// `npm run package:linux`: the headless agent as a Debian package, built here with dpkg-deb (no Electron):
//   /usr/bin/device-trust-agent                  launcher (sh): the Node runtime below + the bundled agent
//   /usr/lib/device-trust-agent/                 node (the runtime npm installed for this project),
//                                                device-trust-agent.mjs + lib/ (esbuild), node_modules/ (natives)
//   /usr/lib/systemd/system/device-trust-agent-device.{service,timer}   the device task (root), enabled by postinst
//   /usr/lib/systemd/user/device-trust-agent{,-check}.service, -check.timer   the user task, enabled globally
//   DEBIAN/postinst, prerm, postrm               build/linux/after-install.sh, before-remove.sh, after-remove.sh
// The units come from the same code as `device-trust-agent install` (src-main/platform/tasks/linux.ts).
// Options: --version V (default package.json's), --out DIR (default release/). Prints the .deb's path last.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({ options: { version: { type: 'string' }, out: { type: 'string' }, 'skip-build': { type: 'boolean' } } });
const pkg = JSON.parse(fs.readFileSync(path.join(repo, 'package.json'), 'utf8'));
const version = values.version ?? pkg.version;
const outDir = path.resolve(values.out ?? path.join(repo, 'release'));
const NAME = 'device-trust-agent';
const LIB = `/usr/lib/${NAME}`;
const MACROS = { productFilename: 'Device Trust Agent', executable: NAME };

function must(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8', ...opts });
  if (r.error?.code === 'ENOENT') {
    console.error(`${cmd} is not installed: it is needed to build the package (Debian/Ubuntu: apt install dpkg-dev).`);
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
  fs.writeFileSync(path.join(stage, 'usr', 'bin', NAME), `#!/bin/sh
# The headless Device Trust Agent: its own Node runtime and bundled script (${LIB}).
here=$(dirname "$(readlink -f "$0")")
exec "$here/../lib/${NAME}/node" "$here/../lib/${NAME}/device-trust-agent.mjs" "$@"
`, { mode: 0o755 });

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
    'Depends: libc6, libstdc++6',
    // libengine-pkcs11-openssl and p11-kit: the agent's own mTLS check presents a key held in the NSS token or the TPM.
    'Recommends: libnss3-tools, openssl, libengine-pkcs11-openssl, p11-kit, p11-kit-modules',
    'Suggests: krb5-user, device-trust-agent-tray',
    `Description: Device Trust Agent (headless program, Node ${process.version} included)`,
    ' Enrolls this device for mutual-TLS device trust and keeps its certificate current: the device task',
    ' (systemd timer, root) and the user task (systemd user units) run this program; the tray app is separate.',
    '',
  ].join('\n'));
  for (const [file, src] of [['postinst', 'after-install.sh'], ['prerm', 'before-remove.sh'], ['postrm', 'after-remove.sh']]) {
    // The same scripts electron-builder hands to fpm for the tray app's package, its ${name} macros substituted alike.
    const text = fs.readFileSync(path.join(repo, 'build', 'linux', src), 'utf8').replace(/\$\{(productFilename|executable)\}/g, (_m, k) => MACROS[k]);
    fs.writeFileSync(path.join(stage, 'DEBIAN', file), text, { mode: 0o755 });
  }
  fs.mkdirSync(outDir, { recursive: true });
  const deb = path.join(outDir, `${NAME}_${version}_${arch}.deb`);
  must('dpkg-deb', ['--build', '--root-owner-group', '-Zgzip', '-z3', stage, deb]);
  console.log(deb);
} finally {
  fs.rmSync(stage, { recursive: true, force: true });
}
