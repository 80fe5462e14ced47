#!/usr/bin/env node
// Builds the headless `device-trust-agent` program into dist/headless/ (after tsc):
//   device-trust-agent.mjs   the whole command line bundled by esbuild into one ES module
//   node_modules/            the few packages that cannot be bundled: they read files beside their own code
//                            (quickjs-wasi's .wasm) or are native add-ons (the OS keyring, optional kerberos)
//   device-trust-agent.blob  the start-up snapshot `status` runs from (cli/snapshot-entry.ts), made by the
//                            runtime below; device-trust-agent (sh) starts it, or the script when there is none
//   node                     with --with-node: the Node runtime that runs it (the npm `node` package's
//                            platform binary, i.e. the Node that runs this build), for packages
// Scheduled tasks, services, package scripts and the tray app's device task run this, never Electron.
import fs from 'node:fs';
import path from 'node:path';
import { builtinModules, createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { spawnSync } from 'node:child_process';
import * as esbuild from 'esbuild';
import { launcherScript } from './launcher.mjs';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
// --out DIR: elsewhere than dist/headless (a test builds its own copy; the metafile then stays beside it).
const outArg = process.argv.indexOf('--out');
const out = outArg > 0 ? path.resolve(process.argv[outArg + 1]) : path.join(repo, 'dist', 'headless');
const withNode = process.argv.includes('--with-node');

/**
 * Loaded at run time from node_modules beside the bundle (a missing optional one is reported by the agent); tldts
 * too, so that only a command that asks for the Public Suffix List compiles it (base/public-suffix.ts).
 */
const EXTERNAL = ['quickjs-wasi', '@napi-rs/keyring', 'kerberos', 'pkcs11js', 'tldts', 'electron'];
/** What each external needs at run time besides its package.json `main` (build-only dependencies left out). */
const RUNTIME_ONLY = { kerberos: ['package.json', 'lib', 'build/Release/kerberos.node'], pkcs11js: ['package.json', 'index.js', 'LICENSE', 'build/Release/pkcs11.node'] };

/**
 * zod's `z` namespace re-exports every locale (`z.locales` and `z.core.locales`, about 290 KiB of the 570 KiB zod chunk) that each
 * command parsing a schema would load and compile; the agent uses English messages only (zod's default, imported
 * by zod's schemas directly), so its locale index is built with English alone.
 */
const zodEnglishOnly = {
  name: 'zod-english-only',
  setup(build) {
    build.onResolve({ filter: /^\.\.\/locales\/index\.js$/ }, (args) =>
      /[\\/]zod[\\/]v4[\\/](classic[\\/]external|core[\\/]index)\.js$/.test(args.importer) ? { path: path.join(path.dirname(args.importer), '..', 'locales', 'index.js'), namespace: 'zod-locales' } : undefined);
    build.onLoad({ filter: /.*/, namespace: 'zod-locales' }, (args) =>
      ({ contents: `export { default as en } from ${JSON.stringify(path.join(path.dirname(args.path), 'en.js'))};`, resolveDir: path.dirname(args.path) }));
  },
};

/**
 * The snapshot holds `status` and what every command is wired with (cli/snapshot-entry.ts); the other commands'
 * modules stay out of it (the launcher's snapshot hands them to the ES-module bundle, which loads them).
 */
const onlySnapshotCommands = {
  name: 'only-snapshot-commands',
  setup(build) {
    build.onResolve({ filter: /^\.\/[a-z-]+\.js$/ }, (args) =>
      /[\\/]cli[\\/]commands[\\/]index\.ts$/.test(args.importer) && args.path !== './status.js' ? { path: args.path, external: true } : undefined);
    // Of the libraries, only those plain `status` runs: every megabyte of a snapshot costs each start about 12 ms to
    // deserialize (`status --check`, which loads the HTTP stack, X.509 and CMS, runs from the ES-module bundle).
    build.onResolve({ filter: /^[@a-z]/ }, (args) => {
      const pkg = /^(@[^/]+\/)?[^/]+/.exec(args.path)[0];
      return pkg.startsWith('node:') || SNAPSHOT_PACKAGES.includes(pkg) || builtinModules.includes(pkg) ? undefined : { path: args.path, external: true };
    });
  },
};
/** The libraries the snapshot holds (a static import of any other fails the snapshot's build, naming it). */
const SNAPSHOT_PACKAGES = ['zod', 'jose'];

/** What both builds share: the bundle and the snapshot's script. */
const COMMON = { bundle: true, platform: 'node', target: ['node20'], external: EXTERNAL, minifySyntax: true, minifyWhitespace: true, legalComments: 'none' };

const t0 = performance.now();
fs.rmSync(out, { recursive: true, force: true });
fs.mkdirSync(out, { recursive: true });
const result = await esbuild.build({
  entryPoints: { 'device-trust-agent': path.join(repo, 'src-main', 'cli', 'headless-entry.ts') },
  outdir: out,
  outExtension: { '.js': '.mjs' },
  // Each command's code in a chunk of its own, loaded when that command runs (help and --version load none).
  splitting: true,
  chunkNames: 'lib/[name]-[hash]',
  ...COMMON,
  format: 'esm',
  metafile: true,
  plugins: [zodEnglishOnly],
  // Bundled CommonJS (undici, asn1js…) needs require(); an ES module has none of its own.
  banner: { js: "import { createRequire as __dtaCreateRequire } from 'node:module'; const require = __dtaCreateRequire(import.meta.url);" },
  logLevel: 'warning',
});

// The externals that are installed here, each with its own runtime dependencies (and platform binaries).
const require = createRequire(path.join(repo, 'package.json'));
const copied = [];
function copyPackage(name, fromDir) {
  const dest = path.join(out, 'node_modules', name);
  if (fs.existsSync(dest)) return;
  let pkgJson;
  try {
    pkgJson = createRequire(path.join(fromDir, 'noop.js')).resolve(`${name}/package.json`);
  } catch {
    return; // not installed (an optional part): the agent says what to install when it is needed
  }
  const src = path.dirname(pkgJson);
  const only = RUNTIME_ONLY[name];
  if (only) {
    if (!only.every((p) => fs.existsSync(path.join(src, p)))) return; // not built here
    for (const p of only) fs.cpSync(path.join(src, p), path.join(dest, p), { recursive: true });
  } else {
    // A library's own command-line tools (`bin/`, e.g. tldts's cli.js with `#!/usr/bin/env node`) are never run by
    // the agent and would make packages depend on whatever `node` is on PATH (rpmlint: env-script-interpreter).
    const ownBin = path.join(src, 'bin');
    fs.cpSync(src, dest, { recursive: true, filter: (f) => f !== ownBin && !/[\\/](test|docs?|\.github)$/.test(f) && !/\.(map|d\.ts|md)$/.test(f) });
  }
  copied.push(name);
  const pkg = JSON.parse(fs.readFileSync(pkgJson, 'utf8'));
  if (!only) for (const dep of Object.keys(pkg.dependencies ?? {})) copyPackage(dep, src);
  for (const dep of Object.keys(pkg.optionalDependencies ?? {})) copyPackage(dep, src);
}
for (const name of EXTERNAL) if (name !== 'electron') copyPackage(name, repo);

if (withNode) {
  fs.copyFileSync(process.execPath, path.join(out, process.platform === 'win32' ? 'node.exe' : 'node'));
  fs.chmodSync(path.join(out, process.platform === 'win32' ? 'node.exe' : 'node'), 0o755);
}
/**
 * require() in the snapshot script. A package (not a Node built-in) comes from lib/ at run time, as for the chunks.
 * A built-in Node does not support in a snapshot (tls, http, child_process, worker_threads…: their native state
 * cannot be serialized) is a stand-in while the snapshot is built, loaded on first use at run time; a module that
 * used one while being built fails the build, naming it.
 */
const SNAPSHOT_REQUIRE = `var __dtaBuiltinRequire = require;
var __dtaSafe = new Set(${JSON.stringify(['fs', 'path', 'crypto', 'os', 'v8', 'fs/promises', 'stream', 'events', 'buffer', 'util', 'util/types', 'url', 'assert', 'string_decoder', 'zlib', 'timers', 'timers/promises', 'querystring', 'diagnostics_channel', 'dns'])});
var __dtaLazy = (id) => {
  let real;
  const building = () => __dtaBuiltinRequire('v8').startupSnapshot.isBuildingSnapshot();
  const load = () => {
    if (real) return real;
    if (building()) throw new Error('node:' + id + ' was used while the start-up snapshot was built: use it only when called');
    return (real = __dtaBuiltinRequire(id));
  };
  return new Proxy({}, {
    get: (_, k) => (k === '__esModule' && !real ? undefined : Reflect.get(load(), k)),
    has: (_, k) => k in load(),
    ownKeys: () => (building() ? [] : Reflect.ownKeys(load())),
    getOwnPropertyDescriptor: (_, k) => { const d = Reflect.getOwnPropertyDescriptor(load(), k); return d && { ...d, configurable: true }; },
    getPrototypeOf: () => Object.prototype,
  });
};
var require = (id) => {
  if (!__dtaBuiltinRequire('module').isBuiltin(id)) return globalThis.__dtaRequire ? globalThis.__dtaRequire(id) : __dtaBuiltinRequire(id);
  const bare = id.replace(/^node:/, '');
  return __dtaSafe.has(bare) || !__dtaBuiltinRequire('v8').startupSnapshot.isBuildingSnapshot() ? __dtaBuiltinRequire(id) : __dtaLazy(id);
};`;

// The start-up snapshot (issue 27): the same sources as one CommonJS script, which `node --build-snapshot` runs once
// so that each start deserializes `status`'s modules already loaded. A blob works only with the Node binary that
// made it, so it is made by the runtime that runs it: the shipped one, else this one (named by the launcher).
const runtime = withNode ? path.join(out, process.platform === 'win32' ? 'node.exe' : 'node') : process.execPath;
const snapshotScript = path.join(out, 'lib', 'snapshot.cjs');
await esbuild.build({
  entryPoints: [path.join(repo, 'src-main', 'cli', 'snapshot-entry.ts')],
  outfile: snapshotScript,
  ...COMMON,
  format: 'cjs',
  plugins: [zodEnglishOnly, onlySnapshotCommands],
  // import.meta of the chunks in lib/, set when the snapshot starts; require() of a package (not a Node built-in,
  // which the snapshot's own require serves) from lib/ too, as the ES-module chunks do.
  define: { 'import.meta': 'globalThis.__dtaImportMeta' },
  banner: { js: SNAPSHOT_REQUIRE },
  logLevel: 'error',
});
const blob = path.join(out, 'device-trust-agent.blob');
const built = spawnSync(runtime, ['--snapshot-blob', blob, '--build-snapshot', snapshotScript], { cwd: out, encoding: 'utf8', env: { PATH: process.env.PATH ?? '' } });
// The script is only the snapshot's input: the blob holds its code (its import.meta still names lib/).
fs.rmSync(snapshotScript);
if (built.status !== 0) {
  fs.rmSync(blob, { force: true });
  console.warn(`warning: no start-up snapshot (the program runs without one, slower to start): ${(built.stderr || built.error?.message || '').trim().slice(0, 2000)}`);
}
fs.writeFileSync(path.join(out, 'device-trust-agent'), launcherScript({ node: withNode ? '"$here/node"' : JSON.stringify(runtime), lib: '"$here"', comment: 'The headless Device Trust Agent (build/headless.mjs): the start-up snapshot or the bundled script.' }), { mode: 0o755 });

// The CNG key store's PowerShell scripts as files (issue 25.2): on AppLocker/WDAC machines only allowed or signed
// script files run in FullLanguage. Generated from the compiled module (tsc ran first), byte for byte what the
// agent checks before it runs one; sign them after this step (docs/VERIFY-WINDOWS.md).
const cng = await import(pathToFileURL(path.join(repo, 'dist', 'src-main', 'platform', 'win32-cng.js')).href);
fs.mkdirSync(path.join(out, 'ps'), { recursive: true });
for (const f of cng.cngScriptFiles()) fs.writeFileSync(path.join(out, 'ps', f.file), f.content);
// The helper programs in other languages (Python, JXA) beside the bundle, where platform/helper-scripts.ts looks for them.
fs.cpSync(path.join(repo, 'src-main', 'platform', 'helpers'), path.join(out, 'helpers'), { recursive: true });

void require;
const size = fs.statSync(path.join(out, 'device-trust-agent.mjs')).size;
console.log(`headless program: dist/headless/device-trust-agent.mjs (${(size / 1024).toFixed(0)} KiB), external packages: ${copied.join(', ') || 'none'}${withNode ? `, Node ${process.version}` : ''} (${(performance.now() - t0).toFixed(0)} ms)`);
fs.writeFileSync(outArg > 0 ? path.join(out, 'headless-meta.json') : path.join(repo, 'dist', 'headless-meta.json'), JSON.stringify(result.metafile));
