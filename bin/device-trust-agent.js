#!/usr/bin/env node
// Entry point of the command line; the TypeScript is compiled to dist/ by `npm install` (prepare) or `npm run build`.
import { main } from '../dist/src-main/cli/main.js';

const code = await main(process.argv.slice(2), {
  out: (s) => process.stdout.write(s + '\n'),
  err: (s) => process.stderr.write(s + '\n'),
  env: process.env,
});
process.exitCode = code;
