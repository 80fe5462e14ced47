// A node:test reporter beside `spec`: at the end, each test file's duration (the sum of its top-level tests and
// suites, which run one after another within a file), slowest first, so a contributor sees where the time goes.
import path from 'node:path';

export default async function* durations(source) {
  const perFile = new Map();
  for await (const event of source) {
    if ((event.type === 'test:pass' || event.type === 'test:fail') && event.data.nesting === 0 && event.data.file) {
      const f = path.relative(process.cwd(), event.data.file);
      perFile.set(f, (perFile.get(f) ?? 0) + (event.data.details?.duration_ms ?? 0));
    }
  }
  const rows = [...perFile].sort((a, b) => b[1] - a[1]);
  const total = rows.reduce((s, [, ms]) => s + ms, 0);
  yield `\nDuration per test file (slowest first; ${rows.length} files, ${(total / 1000).toFixed(1)} s in all):\n`;
  for (const [f, ms] of rows) yield `${(ms / 1000).toFixed(1).padStart(8)} s  ${f}\n`;
}
