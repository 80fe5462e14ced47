#!/usr/bin/env node
// Runs every compiled test file under dist/test with Node's own test runner. Unit and integration tests run
// two files at a time (the machine has two cores); each test prints its own skip reason when it must skip.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const root = path.resolve('dist/test');
// --quick (npm run test:unit): the unit files that start none of the lab's servers (lab org, KDC, scepserver,
// squid, swtpm, Chromium); `npm test` runs them all.
const quick = process.argv.includes('--quick');
const only = process.argv.slice(2).filter((a) => a !== '--quick');
if (quick && only.length === 0) only.push(path.join('dist', 'test', 'unit') + path.sep);
const LAB = /^import [^;]*?from ['"](?:\.\.\/)+(?:lab\/|support\/(?:scep|squid|kerberos-lab|lab-org|tpm|chromium|dashboard)\.js['"])/m;
const leftOut = [];
const files = [];
(function walk(dir) {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) walk(p);
    else if (e.name.endsWith('.test.js') && (only.length === 0 || only.some((o) => p.includes(o)))) {
      if (quick && LAB.test(fs.readFileSync(p, 'utf8'))) leftOut.push(path.relative(process.cwd(), p));
      else files.push(p);
    }
  }
})(root);
files.sort();
if (leftOut.length) console.log(`--quick: left out ${leftOut.length} file(s) that start the lab's servers (npm test runs them): ${leftOut.join(', ')}`);
if (files.length === 0) {
  console.error('no test files found under dist/test (did the build run?)');
  process.exit(1);
}
// tpm2-pkcs11 makes its store in the working directory when a process loads it without HOME or TPM2_PKCS11_STORE:
// a test that lets that happen fails the run instead of leaving a file to be committed.
const strayStore = path.resolve('tpm2_pkcs11.sqlite3');
const hadStore = fs.existsSync(strayStore);
// The spec reporter, then each file's duration at the end (test/durations-reporter.mjs).
const durations = path.resolve('test/durations-reporter.mjs');
const r = spawnSync(process.execPath, ['--test', '--test-reporter=spec', '--test-reporter-destination=stdout', `--test-reporter=${durations}`,
  '--test-reporter-destination=stdout', '--test-concurrency=2', ...files], { stdio: 'inherit' });
if (!hadStore && fs.existsSync(strayStore)) {
  console.error(`a test loaded tpm2-pkcs11 without HOME or TPM2_PKCS11_STORE: it wrote ${strayStore} (give the process a scratch HOME or store)`);
  process.exit(1);
}
process.exit(r.status ?? 1);
