#!/usr/bin/env node
// Builds the headless `device-trust-agent` program into dist/headless/ (after tsc):
//   device-trust-agent.mjs   the whole command line bundled by esbuild into one ES module
//   node_modules/            the few packages that cannot be bundled: they read files beside their own code
//                            (quickjs-wasi's .wasm) or are native add-ons (the OS keyring, optional kerberos)
//   node                     with --with-node: the Node runtime that runs it (the npm `node` package's
//                            platform binary, i.e. the Node that runs this build), for packages
// Scheduled tasks, services, package scripts and the tray app's device task run this, never Electron.
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import * as esbuild from 'esbuild';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const out = path.join(repo, 'dist', 'headless');
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
  bundle: true,
  format: 'esm',
  platform: 'node',
  target: ['node20'],
  external: EXTERNAL,
  minifySyntax: true,
  minifyWhitespace: true,
  legalComments: 'none',
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
fs.writeFileSync(path.join(repo, 'dist', 'headless-meta.json'), JSON.stringify(result.metafile));
