/**
 * First contact on a machine without the Kerberos headers: `npm install` cannot build the optional `kerberos`
 * add-on, so npm leaves it out of node_modules altogether (an optional dependency whose install script fails is
 * removed). The README then says what to do. This test replays that with real npm, offline, on a stand-in for
 * `kerberos`: an optional dependency (a packed tarball) whose install script fails until its "headers" exist, as
 * kerberos' `prebuild-install || node-gyp rebuild` does without libkrb5-dev. It shows that `npm rebuild kerberos`
 * (the old advice) does nothing, and that the advised `npm install` — run again in the checkout — builds it.
 * A stand-in, not the real module: hiding libkrb5-dev's headers on this shared machine would break the other tests.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { REPO, tempDir } from '../support/agent.js';

const ADDON = 'dta-standin-kerberos';

function npm(cwd: string, args: string[], env: Record<string, string> = {}) {
  return spawnSync('npm', [...args, '--offline', '--no-audit', '--no-fund', '--loglevel=error'], {
    cwd, encoding: 'utf8', timeout: 120_000, env: { ...process.env, npm_config_cache: path.join(cwd, '..', 'npm-cache'), npm_config_update_notifier: 'false', ...env },
  });
}

test('without the Kerberos headers the optional add-on is left out; after installing them, `npm install` (not `npm rebuild`) builds it', (t) => {
  if (spawnSync('npm', ['--version']).status !== 0) {
    const why = 'skipped: npm is not on PATH';
    console.log(`# ${why}`);
    t.skip(why);
    return;
  }
  const dir = tempDir('optional-addon');
  const headers = path.join(dir, 'usr-include-gssapi.h'); // what `apt install libkrb5-dev` provides
  // The stand-in add-on: its install step needs the headers, like kerberos' node-gyp build.
  const src = path.join(dir, 'addon');
  fs.mkdirSync(src);
  fs.writeFileSync(path.join(src, 'package.json'), JSON.stringify({ name: ADDON, version: '7.0.0', main: 'index.js', scripts: { install: 'node build.js' } }));
  fs.writeFileSync(path.join(src, 'index.js'), "module.exports = require('./build/Release/addon.json');\n");
  fs.writeFileSync(path.join(src, 'build.js'), `const fs = require('fs');
if (!fs.existsSync(${JSON.stringify(headers)})) { console.error('fatal error: gssapi/gssapi.h: No such file or directory'); process.exit(1); }
fs.mkdirSync('build/Release', { recursive: true }); fs.writeFileSync('build/Release/addon.json', '{"built":true}');
`);
  const pack = spawnSync('npm', ['pack', '--pack-destination', dir, '--loglevel=error'], { cwd: src, encoding: 'utf8' });
  assert.equal(pack.status, 0, pack.stderr);
  const tarball = path.join(dir, pack.stdout.trim().split('\n').pop()!);

  // The checkout: the agent's own package.json declares kerberos the same way (optionalDependencies).
  const agentPkg = JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { optionalDependencies: Record<string, string> };
  assert.ok(agentPkg.optionalDependencies.kerberos, 'kerberos is an optional dependency of the agent');
  const checkout = path.join(dir, 'checkout');
  fs.mkdirSync(checkout);
  fs.writeFileSync(path.join(checkout, 'package.json'), JSON.stringify({ name: 'checkout', version: '1.0.0', private: true, optionalDependencies: { [ADDON]: `file:${tarball}` } }));
  const installed = () => fs.existsSync(path.join(checkout, 'node_modules', ADDON, 'build', 'Release', 'addon.json'));

  const first = npm(checkout, ['install']);
  assert.equal(first.status, 0, `npm install succeeds without the optional add-on\n${first.stderr}`);
  assert.ok(!fs.existsSync(path.join(checkout, 'node_modules', ADDON)), 'npm removed the add-on whose build failed');

  fs.writeFileSync(headers, ''); // apt install libkrb5-dev
  const rebuild = npm(checkout, ['rebuild', ADDON]);
  assert.equal(rebuild.status, 0, rebuild.stderr);
  assert.ok(!installed(), '`npm rebuild` has nothing to rebuild: the add-on is not in node_modules');

  const again = npm(checkout, ['install']);
  assert.equal(again.status, 0, again.stderr);
  assert.ok(installed(), '`npm install` again installs and builds the optional add-on');
  fs.rmSync(dir, { recursive: true, force: true });
});
