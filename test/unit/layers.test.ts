// The dependency direction of docs/ARCHITECTURE.md, checked on the sources: composition roots (cli/, electron/)
// → ipc/ → core/ → platform/ interfaces; base/ is below everything. A violation names the file and the import.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';

const SRC = path.resolve('src-main');
/** Which layers each layer may import from (itself always allowed). */
const ALLOWED: Record<string, string[]> = {
  base: [],
  platform: ['base'],
  core: ['base', 'platform'],
  ipc: ['base', 'platform', 'core'],
  cli: ['base', 'platform', 'core', 'ipc'],
  // The packaged app answers sub-commands through the CLI (cli-mode.ts).
  electron: ['base', 'platform', 'core', 'ipc', 'cli'],
};

function sources(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? sources(p) : e.name.endsWith('.ts') ? [p] : [];
  });
}

const layerOf = (file: string) => path.relative(SRC, file).split(path.sep)[0]!;

test('every import in src-main points down the layers (roots → ipc → core → platform → base)', () => {
  const violations: string[] = [];
  for (const file of sources(SRC)) {
    const from = layerOf(file);
    const allowed = ALLOWED[from];
    assert.ok(allowed, `src-main/${from} is not a known layer; add it to this test and to docs/ARCHITECTURE.md`);
    for (const m of fs.readFileSync(file, 'utf8').matchAll(/(?:from\s+|import\s*\(\s*)['"](\.{1,2}\/[^'"]+)['"]/g)) {
      const target = path.resolve(path.dirname(file), m[1]!);
      if (!target.startsWith(SRC + path.sep)) {
        violations.push(`${path.relative('.', file)} imports ${m[1]} (outside src-main: lab/ and test/ are never imported by the agent)`);
        continue;
      }
      const to = layerOf(target);
      if (to !== from && !allowed.includes(to)) violations.push(`${path.relative('.', file)} (${from}) imports ${m[1]} (${to})`);
    }
  }
  assert.deepEqual(violations, []);
});

test('only the composition roots build the platform', () => {
  const builders = sources(SRC).filter((f) => /\bcreatePlatform\(/.test(fs.readFileSync(f, 'utf8')) && !f.endsWith(path.join('platform', 'index.ts')));
  assert.deepEqual(builders.map(layerOf).filter((l) => l !== 'cli' && l !== 'electron'), [], `createPlatform called from: ${builders.join(', ')}`);
});
