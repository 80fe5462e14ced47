/**
 * Finding and starting the tray app's Electron binary from plain Node, without loading the electron
 * package (its index.js downloads the binary on first use). Used by `npm run demo` and the Electron test.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const PKG = path.join(REPO, 'node_modules', 'electron');

/** The binary's path, or why there is none. */
export function electronBinary(): { path: string } | { reason: string } {
  if (!fs.existsSync(path.join(PKG, 'package.json'))) return { reason: 'the electron package is not installed (npm install)' };
  const pathTxt = path.join(PKG, 'path.txt');
  if (!fs.existsSync(pathTxt)) {
    return { reason: 'node_modules/electron has no downloaded binary (Electron fetches it from GitHub on first use; only the npm registry is reachable on our build machines). Where it can be downloaded: npx install-electron' };
  }
  const bin = path.join(process.env.ELECTRON_OVERRIDE_DIST_PATH || path.join(PKG, 'dist'), fs.readFileSync(pathTxt, 'utf8').trim());
  return fs.existsSync(bin) ? { path: bin } : { reason: `${bin} is missing (npx install-electron)` };
}

/** Runs Electron's own installer (downloads the binary); true when a binary is there afterwards. */
export function installElectronBinary(): boolean {
  const r = spawnSync(process.execPath, [path.join(PKG, 'install.js')], { stdio: 'inherit', timeout: 10 * 60_000 });
  return r.status === 0 && 'path' in electronBinary();
}

/** Starts the tray app (this repository's built main process) and resolves when it quits. */
export function runTrayApp(bin: string, args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const sandbox = process.getuid?.() === 0 ? ['--no-sandbox'] : []; // Chromium refuses its sandbox as root
  return new Promise((resolve, reject) => {
    const child = spawn(bin, [...sandbox, REPO, ...args], { env, stdio: 'inherit' });
    child.on('error', reject);
    child.on('close', (code) => resolve(code ?? 0));
  });
}
