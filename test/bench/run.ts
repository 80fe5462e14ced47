/**
 * `npm run bench`: runs every `*.bench.js` section next to this file (or those whose name contains an
 * argument) and prints their tables. Timings are reported, never asserted.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const only = process.argv.slice(2);
const sections = fs.readdirSync(here).filter((f) => f.endsWith('.bench.js') && (only.length === 0 || only.some((o) => f.includes(o)))).sort();
for (const file of sections) {
  console.log(`\n=== ${file.replace(/\.bench\.js$/, '')} ===`);
  const mod = (await import(path.join(here, file))) as { default: () => Promise<void> };
  await mod.default();
}
