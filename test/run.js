#!/usr/bin/env node
// Runs every compiled test file under dist/test with Node's own test runner. Unit and integration tests run
// two files at a time (the machine has two cores); each test prints its own skip reason when it must skip.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const root = path.resolve('dist/test');
const only = process.argv.slice(2);
const files = [];
(function walk(dir) {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) walk(p);
    else if (e.name.endsWith('.test.js') && (only.length === 0 || only.some((o) => p.includes(o)))) files.push(p);
  }
})(root);
files.sort();
if (files.length === 0) {
  console.error('no test files found under dist/test (did the build run?)');
  process.exit(1);
}
// The spec reporter, then each file's duration at the end (test/durations-reporter.mjs).
const durations = path.resolve('test/durations-reporter.mjs');
const r = spawnSync(process.execPath, ['--test', '--test-reporter=spec', '--test-reporter-destination=stdout', `--test-reporter=${durations}`,
  '--test-reporter-destination=stdout', '--test-concurrency=2', ...files], { stdio: 'inherit' });
process.exit(r.status ?? 1);
