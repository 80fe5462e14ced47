#!/usr/bin/env node
// Builds what runs in the renderer process: the dashboard (React, bundled to one script and one stylesheet)
// and the preload (bundled to CommonJS, because a sandboxed preload cannot load modules). esbuild, because
// it does both in well under a second. Runs after tsc (it reads the CSP from the compiled shell).
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import * as esbuild from 'esbuild';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const out = path.join(repo, 'dist', 'src-renderer');
const shellOut = path.join(repo, 'dist', 'src-main', 'electron');
const { CSP_META } = await import(pathToFileURL(path.join(shellOut, 'app-protocol.js')).href);

const t0 = performance.now();
fs.rmSync(out, { recursive: true, force: true });
fs.mkdirSync(out, { recursive: true });

await Promise.all([
  esbuild.build({
    entryPoints: [path.join(repo, 'src-renderer', 'src', 'main.tsx')],
    outfile: path.join(out, 'app.js'),
    bundle: true,
    format: 'iife',
    platform: 'browser',
    target: ['chrome120'],
    jsx: 'automatic',
    minify: true,
    legalComments: 'none',
    define: { 'process.env.NODE_ENV': '"production"' },
    tsconfig: path.join(repo, 'src-renderer', 'tsconfig.json'),
    logLevel: 'warning',
  }),
  esbuild.build({
    entryPoints: [path.join(repo, 'src-main', 'electron', 'preload.ts')],
    outfile: path.join(shellOut, 'preload.cjs'),
    bundle: true,
    format: 'cjs',
    platform: 'node',
    target: ['node22'],
    external: ['electron'],
    minify: true,
    legalComments: 'none',
    logLevel: 'warning',
  }),
]);

const html = fs.readFileSync(path.join(repo, 'src-renderer', 'index.html'), 'utf8');
if (!html.includes('%CSP%')) throw new Error('src-renderer/index.html lost its %CSP% placeholder');
fs.writeFileSync(path.join(out, 'index.html'), html.replace('%CSP%', CSP_META));

const trayOut = path.join(shellOut, 'tray');
fs.mkdirSync(trayOut, { recursive: true });
for (const f of fs.readdirSync(path.join(repo, 'build', 'tray'))) {
  if (f.endsWith('.png')) fs.copyFileSync(path.join(repo, 'build', 'tray', f), path.join(trayOut, f));
}
const size = (f) => `${(fs.statSync(path.join(out, f)).size / 1024).toFixed(0)} KiB`;
console.log(`renderer: app.js ${size('app.js')}, app.css ${size('app.css')}; preload.cjs; in ${Math.round(performance.now() - t0)} ms`);
