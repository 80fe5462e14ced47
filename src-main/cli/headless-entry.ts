// The bundle's entry point (build/headless.mjs): import.meta.url is then the bundled script itself.
import { runHeadless } from './headless.js';

process.exitCode = await runHeadless(import.meta.url);
