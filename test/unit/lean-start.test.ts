/**
 * What the quick commands load (issue 27): `status`, what an admin types on a support call and what the tray polls,
 * never loads the HTTP stack (undici), the PAC engine (quickjs-wasi), X.509 building (@peculiar/x509, asn1js) or the
 * Public Suffix List (tldts); `help` loads no schema library (zod) either. Seen through Node's own loader hooks (ES
 * modules) and its CommonJS cache, for the source checkout and for the headless program where it is built (what each
 * loaded chunk holds from esbuild's metafile). And the V8 settings the CLI makes for its memory (cli/headless.ts)
 * are in effect in the program.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { AGENT_BIN, makeProfile, REPO, tempDir } from '../support/agent.js';

const HEADLESS = path.join(REPO, 'dist', 'headless', 'device-trust-agent.mjs');
const META = path.join(REPO, 'dist', 'headless-meta.json');

const dir = tempDir('lean-start');
fs.writeFileSync(path.join(dir, 'hook.mjs'), `let port; export function initialize(d) { port = d.port; }
export async function load(url, context, next) { const r = await next(url, context); port.postMessage(url); return r; }`);
fs.writeFileSync(path.join(dir, 'watch.mjs'), `import { register, createRequire } from 'node:module'; import { MessageChannel } from 'node:worker_threads';
import fs from 'node:fs'; import v8 from 'node:v8';
const { port1, port2 } = new MessageChannel(); const urls = []; port1.on('message', (u) => urls.push(u)); port1.unref();
register(${JSON.stringify(pathToFileURL(path.join(dir, 'hook.mjs')).href)}, { data: { port: port2 }, transferList: [port2] });
process.on('exit', () => fs.writeFileSync(process.env.LEAN_OUT, JSON.stringify({ urls, cjs: Object.keys(createRequire(import.meta.url).cache),
  newSpaceMiB: v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_size / 1048576 })));`);

function loadedBy(args: string[], program = AGENT_BIN): { packages: Set<string>; newSpaceMiB: number } {
  const out = path.join(dir, `${path.basename(program)}-${args.join('-')}.json`);
  const p = makeProfile({ orgUrl: 'https://org.example.invalid', rootCaFile: '/dev/null' });
  const r = spawnSync(process.execPath, ['--import', pathToFileURL(path.join(dir, 'watch.mjs')).href, program, ...args], {
    env: { PATH: process.env.PATH, ...p.env, LEAN_OUT: out }, encoding: 'utf8', timeout: 60_000,
  });
  assert.ok(fs.existsSync(out), `the program ran to its exit: ${r.stderr}`);
  const seen = JSON.parse(fs.readFileSync(out, 'utf8')) as { urls: string[]; cjs: string[]; newSpaceMiB: number };
  const files = [...seen.urls.map((u) => (u.startsWith('file:') ? new URL(u).pathname : u)), ...seen.cjs];
  // A bundle chunk holds packages of its own: esbuild's metafile names its inputs.
  const outputs = fs.existsSync(META) ? (JSON.parse(fs.readFileSync(META, 'utf8')) as { outputs: Record<string, { inputs: Record<string, unknown> }> }).outputs : {};
  for (const f of [...files]) files.push(...Object.keys(outputs[path.relative(REPO, f)]?.inputs ?? {}));
  return { packages: new Set(files.map((f) => /node_modules\/((@[^/]+\/)?[^/]+)/.exec(f)?.[1]).filter((x): x is string => Boolean(x))), newSpaceMiB: seen.newSpaceMiB };
}

function assertLean(program: string): void {
  const status = loadedBy(['status'], program);
  assert.ok(status.packages.has('zod'), `the watch sees the packages status loads: ${[...status.packages].join(', ')}`);
  for (const heavy of ['undici', 'quickjs-wasi', '@peculiar/x509', 'asn1js', 'tldts']) {
    assert.ok(!status.packages.has(heavy), `status loaded ${heavy}: ${[...status.packages].join(', ')}`);
  }
  const help = loadedBy(['help'], program);
  assert.deepEqual([...help.packages], [], 'help loads no package');
}

test('status loads no HTTP stack, PAC engine, X.509 builder or Public Suffix List; help not even zod (source checkout)', () => {
  assertLean(AGENT_BIN);
});

test('the same for the headless program (the esbuild chunks)', (t) => {
  if (!fs.existsSync(HEADLESS) || !fs.existsSync(META)) return t.skip('dist/headless is not built (npm run build:headless)');
  assertLean(HEADLESS);
});

test("the CLI keeps V8's young generation at its first size (the daemon's memory)", () => {
  // V8's default doubles it up to 2 × 16 MiB as a command allocates; status allocates enough to grow it.
  const { newSpaceMiB } = loadedBy(['status']);
  assert.ok(newSpaceMiB <= 2, `young generation ${newSpaceMiB} MiB`);
});

test('the headless program finds the Public Suffix List it loads on first use (tldts beside the bundle)', async (t) => {
  if (!fs.existsSync(HEADLESS)) return t.skip('dist/headless is not built (npm run build:headless)');
  // A copy outside the checkout, as installed: there no node_modules above it holds tldts.
  const installed = path.join(tempDir('lean-installed'), 'device-trust-agent');
  fs.cpSync(path.dirname(HEADLESS), installed, { recursive: true, filter: (f) => !/[\\/]node(\.exe)?$/.test(f) });
  const lib = path.join(installed, 'lib');
  const chunk = fs.readdirSync(lib).find((f) => fs.readFileSync(path.join(lib, f), 'utf8').includes('function registrableDomain('));
  assert.ok(chunk, 'a chunk holds base/public-suffix.ts');
  const mod = (await import(pathToFileURL(path.join(lib, chunk)).href)) as Record<string, unknown>;
  const fn = Object.values(mod).find((v): v is (h: string) => string | null => typeof v === 'function' && v.name === 'registrableDomain');
  assert.ok(fn, 'the chunk exports registrableDomain');
  assert.equal(fn('acme.okta.com'), 'okta.com');
  assert.equal(fn('github.io'), null, 'a public suffix (private section) has no registrable domain');
});
