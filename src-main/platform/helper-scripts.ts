import fs from 'node:fs';
import { fileURLToPath } from 'node:url';

/**
 * Programs in other languages that the platform code hands to an interpreter (`python3 -c`, `osascript -e`). Their
 * source lives in src-main/platform/helpers/ as files of their own (readable, checkable by their own tools) and
 * ships beside the program that runs them:
 * - the tsc build (tests, the tray app): read from src-main/platform/helpers/, which electron-builder.yml packs
 *   into app.asar beside dist/;
 * - the headless bundle (dist/headless/, also inside the DEB/RPM and the installers): build/headless.mjs copies
 *   them to dist/headless/helpers/, beside the entry module and one level above its chunks (lib/).
 */
export type HelperScript = 'tpm-attest.py' | 'tpm2-ptool-stdin.py' | 'darwin-keys.jxa';

const cache = new Map<HelperScript, string>();

/** Where `name` may be, nearest first. */
export function helperScriptCandidates(name: HelperScript): string[] {
  return [`./helpers/${name}`, `../helpers/${name}`, `../../../src-main/platform/helpers/${name}`].map((rel) => fileURLToPath(new URL(rel, import.meta.url)));
}

/** The text of a helper program; throws, naming where it looked, when the installation lacks it. */
export function helperScript(name: HelperScript): string {
  const known = cache.get(name);
  if (known !== undefined) return known;
  const places = helperScriptCandidates(name);
  for (const file of places) {
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    cache.set(name, text);
    return text;
  }
  throw new Error(`the agent's helper program ${name} is missing from this installation (looked in ${places.join(', ')}); reinstall the agent`);
}
