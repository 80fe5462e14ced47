/**
 * The Python and JXA helper programs are files of their own (src-main/platform/helpers/) that the agent finds where
 * it is installed: in this checkout (the tsc build, the tray app), and in the headless bundle's layout, from the entry
 * module and from a chunk in lib/ (build/headless.mjs copies them to dist/headless/helpers/).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { pathToFileURL } from 'node:url';
import * as esbuild from 'esbuild';
import { helperScript, type HelperScript } from '../../src-main/platform/helper-scripts.js';
import { REPO, tempDir } from '../support/agent.js';

const SOURCE = path.join(REPO, 'src-main', 'platform', 'helpers');
const NAMES: HelperScript[] = ['tpm-attest.py', 'tpm2-ptool-stdin.py', 'darwin-keys.jxa'];

test('every helper program is read from its file, and is valid in its own language', () => {
  assert.deepEqual(fs.readdirSync(SOURCE).sort(), [...NAMES].sort(), 'each file in helpers/ is a known helper');
  for (const name of NAMES) assert.equal(helperScript(name), fs.readFileSync(path.join(SOURCE, name), 'utf8'), name);
  assert.doesNotThrow(() => new Function(helperScript('darwin-keys.jxa')), 'the JXA program is valid JavaScript');
  const py = spawnSync('python3', ['-c', 'import ast, sys; [ast.parse(open(f).read(), f) for f in sys.argv[1:]]', ...NAMES.filter((n) => n.endsWith('.py')).map((n) => path.join(SOURCE, n))], { encoding: 'utf8' });
  if (py.error) console.log(`# python3 not found (${py.error.message}): the Python helpers' syntax is not checked here`);
  else assert.equal(py.status, 0, py.stderr);
});

test('the headless bundle finds them beside itself, from its entry module and from a chunk in lib/', async () => {
  const dir = tempDir('helpers-');
  fs.cpSync(SOURCE, path.join(dir, 'helpers'), { recursive: true });
  fs.mkdirSync(path.join(dir, 'lib'));
  // The same module as esbuild bundles it into dist/headless/, at the two depths it may run from.
  for (const out of ['entry.mjs', 'lib/chunk.mjs']) {
    await esbuild.build({ entryPoints: [path.join(REPO, 'src-main', 'platform', 'helper-scripts.ts')], outfile: path.join(dir, out), bundle: true, format: 'esm', platform: 'node', logLevel: 'warning' });
  }
  fs.writeFileSync(path.join(dir, 'helpers', 'tpm-attest.py'), '# the installed copy\n');
  for (const out of ['entry.mjs', 'lib/chunk.mjs']) {
    const mod = (await import(pathToFileURL(path.join(dir, out)).href)) as typeof import('../../src-main/platform/helper-scripts.js');
    assert.equal(mod.helperScript('tpm-attest.py'), '# the installed copy\n', `${out} reads the copy beside the bundle`);
    assert.equal(mod.helperScript('darwin-keys.jxa'), fs.readFileSync(path.join(SOURCE, 'darwin-keys.jxa'), 'utf8'));
  }
  fs.rmSync(path.join(dir, 'helpers'), { recursive: true });
  const bare = tempDir('helpers-none-');
  await esbuild.build({ entryPoints: [path.join(REPO, 'src-main', 'platform', 'helper-scripts.ts')], outfile: path.join(bare, 'entry.mjs'), bundle: true, format: 'esm', platform: 'node', logLevel: 'warning' });
  const mod = (await import(pathToFileURL(path.join(bare, 'entry.mjs')).href)) as typeof import('../../src-main/platform/helper-scripts.js');
  assert.throws(() => mod.helperScript('tpm2-ptool-stdin.py'), /helper program tpm2-ptool-stdin\.py is missing from this installation .*reinstall the agent/);
});
