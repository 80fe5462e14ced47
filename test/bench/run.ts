/**
 * `npm run bench`: runs every `*.bench.js` section next to this file (or those whose name contains an
 * argument) and prints their tables. Timings are reported, never asserted. Each section runs in its own Node
 * process, so what one leaves behind (environment, loaded PKCS#11 modules, timers) cannot skew the next.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const self = fileURLToPath(import.meta.url);
const args = process.argv.slice(2);

if (args[0] === '--section') {
  const mod = (await import(path.join(here, args[1]!))) as { default: () => Promise<void> };
  await mod.default();
  process.exit(0);
}

const sections = fs.readdirSync(here).filter((f) => f.endsWith('.bench.js') && (args.length === 0 || args.some((o) => f.includes(o)))).sort();
let failed = 0;
for (const file of sections) {
  console.log(`\n=== ${file.replace(/\.bench\.js$/, '')} ===`);
  const r = spawnSync(process.execPath, [self, '--section', file], { stdio: 'inherit' });
  if (r.status !== 0) {
    failed++;
    console.log(`(section ${file} ended with ${r.status ?? r.signal})`);
  }
}
process.exit(failed ? 1 : 0);
