/**
 * The headless `device-trust-agent` program: what scheduled tasks, services, package scripts and the tray
 * app's device task start. `npm run build:headless` bundles this file (with the whole command line) into one
 * script, dist/headless/device-trust-agent.mjs, run by the Node runtime shipped beside it; a source checkout
 * runs it as bin/device-trust-agent.js. Either way it declares itself, so `install` registers exactly this
 * program, never the Electron tray app.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { declareAgentCommand } from '../base/self.js';
import { main } from './main.js';

export async function runHeadless(entryUrl: string): Promise<number> {
  declareAgentCommand([process.execPath, path.resolve(fileURLToPath(entryUrl))]);
  return main(process.argv.slice(2), {
    out: (s) => process.stdout.write(s + '\n'),
    err: (s) => process.stderr.write(s + '\n'),
    env: process.env,
  });
}
