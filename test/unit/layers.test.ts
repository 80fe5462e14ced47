// The dependency direction of docs/ARCHITECTURE.md, checked on the sources: composition roots (cli/, electron/)
// → ipc/ → core/ → platform/ interfaces; base/ is below everything; the renderer sees only the IPC contract.
// Every form of import counts: static (type-only too), re-exports, side-effect, dynamic import() and require().
// A violation names the file and the import. The checker is itself tested on synthetic sources below.
import assert from 'node:assert/strict';
import { builtinModules } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';

const ROOT = path.resolve('.');
const SRC = path.join(ROOT, 'src-main');
const RENDERER = path.join(ROOT, 'src-renderer', 'src');

/** Which layers each layer may import from (itself always allowed). */
const ALLOWED: Record<string, string[]> = {
  base: [],
  platform: ['base'],
  core: ['base', 'platform'],
  ipc: ['base', 'platform', 'core'],
  cli: ['base', 'platform', 'core', 'ipc'],
  // The packaged app answers sub-commands through the CLI (cli-mode.ts).
  electron: ['base', 'platform', 'core', 'ipc', 'cli'],
};

/**
 * The platform files the core may see: interfaces (and the constants and error class of their contract) only.
 * Implementations reach the core through `Platform` (types.ts), built by the composition roots.
 */
export const PLATFORM_INTERFACES = ['platform/types.ts', 'platform/keystore.ts', 'platform/posture/contract.ts', 'platform/device-channel.ts'];
/**
 * The composition roots: each builds its process's AgentContext (core/context.ts), and they alone import
 * platform/index.ts, the one place that picks implementations. Everything below is handed the context.
 */
export const COMPOSITION_ROOTS = ['cli/main.ts', 'electron/main.ts'];
/** The one file of src-main the renderer may import. */
const RENDERER_MAY_IMPORT = ['src-main/ipc/contract.ts'];

/** Every module specifier a source names, in any form. */
export function specifiers(source: string): string[] {
  const out: string[] = [];
  const patterns = [
    /\b(?:import|export)\s+(?:type\s+)?[\w*{}\s,$]*?\bfrom\s*['"]([^'"]+)['"]/g, // import x from, import type {…} from, export * from
    /\bimport\s*['"]([^'"]+)['"]/g, // side-effect import
    /\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g, // dynamic import()
    /\brequire\s*\(\s*['"]([^'"]+)['"]\s*\)/g, // require(), import x = require()
  ];
  // Comments are not imports (a comment may quote one).
  const code = source.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`\\])\/\/.*$/gm, '$1');
  for (const re of patterns) for (const m of code.matchAll(re)) out.push(m[1]!);
  return out;
}

const toPosix = (p: string) => p.split(path.sep).join('/');

/** Resolves `spec` as imported from `file` (both repository-relative, posix) to a repository-relative .ts/.tsx path. */
function resolve(file: string, spec: string): string {
  const target = path.posix.normalize(path.posix.join(path.posix.dirname(file), spec));
  return target.replace(/\.js$/, '.ts');
}

/** The violations of the layering in `files` (repository-relative posix path → source text). */
export function layerViolations(files: Map<string, string>): string[] {
  const violations: string[] = [];
  for (const [file, source] of files) {
    const renderer = file.startsWith('src-renderer/');
    if (!renderer && !file.startsWith('src-main/')) continue;
    const inMain = file.slice('src-main/'.length);
    const from = renderer ? 'renderer' : inMain.split('/')[0]!;
    const allowed = ALLOWED[from];
    if (!renderer && !allowed) {
      violations.push(`src-main/${from} is not a known layer; add it to this test and to docs/ARCHITECTURE.md`);
      continue;
    }
    for (const spec of specifiers(source)) {
      if (!spec.startsWith('.')) {
        if (renderer && (spec.startsWith('node:') || builtinModules.includes(spec))) violations.push(`${file} imports ${spec} (the renderer is a sandboxed page: no Node)`);
        continue;
      }
      const target = resolve(file, spec);
      if (renderer) {
        if (target.startsWith('src-renderer/')) continue;
        const t = target.replace(/\.tsx$/, '.ts');
        if (!RENDERER_MAY_IMPORT.includes(t)) violations.push(`${file} imports ${spec} (the renderer may import only ${RENDERER_MAY_IMPORT.join(', ')})`);
        continue;
      }
      // The version comes from package.json (base/version.ts).
      if (target === 'package.json' && file === 'src-main/base/version.ts') continue;
      if (!target.startsWith('src-main/')) {
        violations.push(`${file} imports ${spec} (outside src-main: lab/ and test/ are never imported by the agent)`);
        continue;
      }
      const tIn = target.slice('src-main/'.length);
      const to = tIn.split('/')[0]!;
      if (to !== from && !allowed!.includes(to)) {
        violations.push(`${file} (${from}) imports ${spec} (${to})`);
        continue;
      }
      // The core, and the platform's interface files, see only interface files of the platform.
      const fromInterface = PLATFORM_INTERFACES.includes(inMain);
      if ((from === 'core' || fromInterface) && to === 'platform' && !PLATFORM_INTERFACES.includes(tIn)) {
        violations.push(`${file} imports ${spec}: ${fromInterface ? 'an interface file' : 'the core'} may import only the platform's interfaces (${PLATFORM_INTERFACES.join(', ')}); put what it needs behind Platform`);
        continue;
      }
      if (tIn === 'platform/index.ts' && !COMPOSITION_ROOTS.includes(inMain)) {
        violations.push(`${file} imports ${spec}: only the composition roots (${COMPOSITION_ROOTS.join(', ')}) pick the platform; take it from the AgentContext you are handed`);
      }
    }
  }
  return violations;
}

function sources(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? sources(p) : /\.tsx?$/.test(e.name) ? [p] : [];
  });
}

test('every import in src-main points down the layers, the core sees only platform interfaces, the renderer only the IPC contract', () => {
  const files = new Map([...sources(SRC), ...sources(RENDERER)].map((f) => [toPosix(path.relative(ROOT, f)), fs.readFileSync(f, 'utf8')]));
  assert.ok([...files.keys()].some((f) => f.startsWith('src-renderer/')), 'the renderer sources were found');
  for (const i of PLATFORM_INTERFACES) assert.ok(files.has(`src-main/${i}`), `${i} exists`);
  assert.deepEqual(layerViolations(files), []);
});

test('the checker catches every form of import, and each platform implementation the core once imported', () => {
  const check = (file: string, source: string) => layerViolations(new Map([[file, source]]));
  // The imports that once took the core past the platform's interfaces: each one put back fails.
  const once: [string, string][] = [
    ['src-main/core/config.ts', "import { createManagedConfigReader, type ManagedConfigReader } from '../platform/managed-config.js';"],
    ['src-main/core/config.ts', "import { readJsonObjectFile } from '../platform/managed-config-linux.js';"],
    ['src-main/core/events.ts', "import { platformSink, type EventSink } from '../platform/event-sinks.js';"],
    ['src-main/core/posture/settings.ts', "import { DEFAULT_POSTURE_OPTIONS, type PostureOptions } from '../../platform/posture/index.js';"],
    ['src-main/core/posture/settings.ts', "import { tasksFor } from '../../platform/tasks/index.js';"],
    ['src-main/core/posture/pass.ts', "import type { PostureContext } from '../../platform/posture/index.js';"],
    ['src-main/core/posture/evaluate.ts', "import { machineContext, runPostureChecks, type PostureContext } from '../../platform/posture/index.js';"],
    ['src-main/core/keys/attestation.ts', "import { AttestationUnavailable, type KeyAttestationEvidence } from '../../platform/tpm-attest.js';"],
    ['src-main/core/certificates/removal.ts', "import type { PolicyResult } from '../../platform/browser-policy.js';"],
    ['src-main/core/enrollment/pass.ts', "import type { PolicyResult } from '../../platform/browser-policy.js';"],
    ['src-main/core/fleet/doctor.ts', "import { POLICY_FILE } from '../../platform/browser-policy.js';"],
    ['src-main/core/diagnostics/tpm.ts', "import { TPM2_PKCS11_LIBRARIES, tpmStoreDir } from '../../platform/linux-keys.js';"],
    ['src-main/core/diagnostics/probes.ts', "import type { Platform } from '../../platform/index.js';"],
    // …and the interface files that imported implementations.
    ['src-main/platform/types.ts', "import type { PolicyResult } from './browser-policy.js';"],
    ['src-main/platform/keystore.ts', "export type { AskChallenge, AttestationChallenge, KeyAttestationEvidence } from './tpm-attest.js';"],
  ];
  for (const [file, line] of once) assert.equal(check(file, line).length, 1, `not caught: ${file}: ${line}`);
  // Every form, multi-line included.
  const forms = [
    "import '../platform/nss.js';",
    "const m = await import('../platform/nss.js');",
    "const m = await import(\n  '../platform/nss.js'\n);",
    "const m = require('../platform/nss.js');",
    "import nss = require('../platform/nss.js');",
    "export * from '../platform/nss.js';",
    "export { NssStore } from '../platform/nss.js';",
    "import type {\n  NssStore,\n} from '../platform/nss.js';",
    "import * as nss from '../platform/nss.js';",
  ];
  for (const src of forms) assert.equal(check('src-main/core/x.ts', src).length, 1, `not caught: ${src}`);
  // What is allowed stays allowed; comments are not imports.
  assert.deepEqual(check('src-main/core/x.ts', "import type { Platform } from '../platform/types.js';\nimport { AttestationUnavailable } from '../platform/keystore.js';"), []);
  assert.deepEqual(check('src-main/core/x.ts', "// import { x } from '../platform/nss.js';\n/* require('../platform/nss.js') */"), []);
  // platform/index.ts (the implementations' picker) is the composition roots' alone, in every layer and form.
  for (const root of COMPOSITION_ROOTS) assert.deepEqual(check(`src-main/${root}`, "import { createPlatform } from '../platform/index.js';"), [], root);
  for (const [file, line] of [
    ['src-main/electron/agent-scheduler.ts', "import { createPlatform } from '../platform/index.js';"],
    ['src-main/ipc/service.ts', "import { createPlatform } from '../platform/index.js';"],
    ['src-main/cli/commands/status.ts', "const { createPlatform } = await import('../../platform/index.js');"],
    ['src-main/core/events.ts', "import { platformSink } from '../platform/index.js';"],
    ['src-main/platform/posture/index.ts', "import type { Platform } from '../index.js';"],
  ] as const) assert.equal(check(file, line).length, 1, `not caught: ${file}: ${line}`);
  // Upward imports and lab/ are refused.
  assert.equal(check('src-main/core/x.ts', "import { DashboardService } from '../ipc/service.js';").length, 1);
  assert.equal(check('src-main/platform/x.ts', "import { loadConfig } from '../core/config.js';").length, 1);
  assert.equal(check('src-main/core/x.ts', "import { startLabOrg } from '../../lab/org.js';").length, 1);
  // The renderer: the IPC contract and its own files only; no Node.
  assert.deepEqual(check('src-renderer/src/App.tsx', "import type { StatusView } from '../../src-main/ipc/contract.js';\nimport { api } from './api.js';\nimport { useState } from 'react';"), []);
  assert.equal(check('src-renderer/src/App.tsx', "import { DashboardService } from '../../src-main/ipc/service.js';").length, 1);
  assert.equal(check('src-renderer/src/components/X.tsx', "import { redact } from '../../../src-main/base/safe-text.js';").length, 1);
  assert.equal(check('src-renderer/src/App.tsx', "import fs from 'node:fs';").length, 1);
});

test('only the composition roots build the platform', () => {
  const builders = sources(SRC).filter((f) => /\bloadPlatform\(|\bcreate(Linux|Win32|Darwin)Platform\(/.test(fs.readFileSync(f, 'utf8')) && !/[\\/]platform[\\/][^\\/]+\.ts$/.test(f));
  assert.ok(builders.length >= 2, `the roots load it: ${builders.join(', ')}`);
  const layerOf = (file: string) => path.relative(SRC, file).split(path.sep)[0]!;
  assert.deepEqual(builders.map(layerOf).filter((l) => l !== 'cli' && l !== 'electron'), [], `the platform is built in: ${builders.join(', ')}`);
});
