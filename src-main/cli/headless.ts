/**
 * The headless `device-trust-agent` program: what scheduled tasks, services, package scripts and the tray
 * app's device task start. `npm run build:headless` bundles this file (with the whole command line) into one
 * script, dist/headless/device-trust-agent.mjs, run by the Node runtime shipped beside it; a source checkout
 * runs it as bin/device-trust-agent.js. Either way it declares itself, so `install` registers exactly this
 * program, never the Electron tray app.
 */
import path from 'node:path';
import v8 from 'node:v8';
import { fileURLToPath } from 'node:url';
import { declareAgentCommand } from '../base/self.js';
import { main } from './main.js';

export async function runHeadless(entryUrl: string): Promise<number> {
  leanV8();
  zodWithoutJit();
  declareAgentCommand([process.execPath, path.resolve(fileURLToPath(entryUrl))]);
  return main(process.argv.slice(2), {
    out: (s) => process.stdout.write(s + '\n'),
    err: (s) => process.stderr.write(s + '\n'),
    env: process.env,
  });
}

/** V8 settings of the headless program; process state, so set in every process (the start-up snapshot holds none). */
export function leanV8(): void {
  // V8 doubles its young generation each time it fills, up to 2 × 16 MiB that then stay resident: in the daemon
  // that is about a sixth of its memory all year (issue 27, `npm run bench`). Kept at its first size (1 MiB) the
  // scavenges come more often and stay cheap; the figure is read when the space would grow, so it applies here.
  v8.setFlagsFromString('--semi-space-growth-factor=1');
  // WebAssembly (undici's HTTP parser, the PAC engine) stays in V8's baseline compiler: optimizing it in the
  // background took about 35 MiB for a moment in every `run` pass (its peak, 116 → 82 MiB) and a few requests do
  // not repay that compile. Read at each compile, so it applies here too.
  v8.setFlagsFromString('--liftoff-only');
}

/**
 * zod compiles each object schema into generated code on its first parse (`new Function`): a one-shot command
 * parses each schema once or twice, so compiling costs more than it saves, and the daemon keeps less code. zod
 * keeps its configuration in this global and reads it when it builds a schema (when a command's modules load).
 */
export function zodWithoutJit(): void {
  const g = globalThis as { __zod_globalConfig?: { jitless?: boolean } };
  (g.__zod_globalConfig ??= {}).jitless = true;
}
