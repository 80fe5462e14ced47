/**
 * The headless program's start-up snapshot (issue 27: `status` as fast as Node starts). build/headless.mjs bundles
 * this file as one CommonJS script and runs it under `node --build-snapshot`: the modules `status` uses are then
 * loaded, compiled and their schemas built once, at build time, and every start deserializes them instead. The
 * launcher starts `node --snapshot-blob device-trust-agent.blob -- status …` for plain `status`, and the ES-module
 * bundle beside it for every other command, exactly as without a snapshot.
 *
 * Nothing read at build time may leak into a run: the modules here read environment, paths and clocks only when
 * called, and nothing may ask for a random value while it is built (refuseRandomness below).
 * test/integration/headless-snapshot.test.ts compares its `status` with the source checkout's.
 */
import crypto from 'node:crypto';
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import v8 from 'node:v8';
import { COMMANDS } from './commands/index.js';
import { runHeadless, zodWithoutJit } from './headless.js';
import { commandNameOf, loadWiring } from './main.js';

/**
 * The commands the snapshot runs (build/launcher.mjs chooses the same); `status --check` asks the network with
 * libraries the snapshot leaves out, so the bundle runs it.
 */
const FROM_SNAPSHOT = new Set(['status']);
const servedHere = (args: string[]) => FROM_SNAPSHOT.has(commandNameOf(args)) && !args.includes('--check');

/** Build time: the modules of the commands above, evaluated now so that the snapshot holds them. */
async function preload(): Promise<void> {
  // As in every run of the program: schemas built without zod's generated parsers (measured: no gain here either).
  zodWithoutJit();
  // Node's own modules that `status` loads on first use (WebCrypto for key thumbprints, util.parseArgs): pure
  // JavaScript over the crypto binding, so they can be in the snapshot.
  void globalThis.crypto.subtle;
  void parseArgs;
  for (const c of COMMANDS.filter((x) => FROM_SNAPSHOT.has(x.name))) await c.load();
  await (await loadWiring()).platform.loadPlatform();
}

/** Where the bundle sits: beside the blob this process was started from (`--snapshot-blob FILE`). */
function bundleDir(): string {
  const i = process.execArgv.indexOf('--snapshot-blob');
  const blob = i >= 0 ? process.execArgv[i + 1] : process.execArgv.find((a) => a.startsWith('--snapshot-blob='))?.slice('--snapshot-blob='.length);
  if (!blob) throw new Error('started without --snapshot-blob');
  return path.dirname(path.resolve(blob));
}

function startFromSnapshot(): void {
  const dir = bundleDir();
  const entry = path.join(dir, 'device-trust-agent.mjs');
  // Every module sees the arguments as a run of the bundle itself would: [node, bundle, ...args].
  process.argv.splice(1, 0, entry);
  // The bundled modules name files beside their chunks (helpers/, node_modules/): import.meta is lib/'s.
  const here = pathToFileURL(path.join(dir, 'lib', 'snapshot.cjs')).href;
  const requireHere = createRequire(here);
  (globalThis as { __dtaImportMeta?: unknown }).__dtaImportMeta = { url: here, resolve: (s: string) => pathToFileURL(requireHere.resolve(s)).href };
  (globalThis as { __dtaRequire?: unknown }).__dtaRequire = requireHere;
  if (!servedHere(process.argv.slice(2))) {
    // The launcher starts only plain `status` from the snapshot; anything else belongs to the bundle.
    process.stderr.write(`This start-up snapshot runs "status" only: run the launcher (device-trust-agent) or ${entry}.\n`);
    process.exitCode = 64;
    return;
  }
  void runHeadless(pathToFileURL(entry).href).then((code) => {
    process.exitCode = code;
  });
}

/**
 * Build time: a random value made now would be the same in every run from the snapshot (a nonce, a key, an ID), so
 * asking for one fails the build; Node's own functions are back in place before the heap is written.
 */
function refuseRandomness(): void {
  const c = crypto as unknown as Record<string, unknown>;
  const saved = ['randomBytes', 'randomUUID', 'randomInt', 'randomFill', 'randomFillSync', 'generateKeyPair', 'generateKeyPairSync'].map((n) => [n, c[n]] as const);
  for (const [n] of saved) {
    c[n] = () => {
      throw new Error(`crypto.${n} was called while the start-up snapshot was built: every run would share its value`);
    };
  }
  v8.startupSnapshot.addSerializeCallback(() => {
    for (const [n, f] of saved) c[n] = f;
  });
}

if (v8.startupSnapshot.isBuildingSnapshot()) {
  refuseRandomness();
  // A module that cannot be in the snapshot fails the build here, naming itself (the build then ships no blob).
  preload().catch((e: unknown) => {
    process.stderr.write(`The start-up snapshot could not load status's modules: ${(e as Error).stack ?? String(e)}\n`);
    process.exit(1);
  });
  v8.startupSnapshot.setDeserializeMainFunction(startFromSnapshot);
}
