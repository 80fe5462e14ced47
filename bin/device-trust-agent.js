#!/usr/bin/env node
// Entry point of the command line in a source checkout; the TypeScript is compiled to dist/ by `npm install`
// (prepare) or `npm run build`. The shipped headless program is the same code bundled (npm run build:headless).
import { runHeadless } from '../dist/src-main/cli/headless.js';

process.exitCode = await runHeadless(import.meta.url);
