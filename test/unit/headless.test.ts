/**
 * The headless program and the command registry: what `help` lists is what runs, the tray app finds the headless
 * program in every layout, every installer (Windows, macOS, Linux) calls the headless program and never the
 * Electron executable, and `install` registers the program that is running.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { declareAgentCommand } from '../../src-main/base/self.js';
import { COMMANDS } from '../../src-main/cli/commands/index.js';
import { headlessProgram } from '../../src-main/electron/cli-mode.js';
import { defaultAgentCommand } from '../../src-main/platform/tasks/index.js';
import { AGENT_BIN, REPO } from '../support/agent.js';

test('the lazy registry: each entry loads the command of that name, with the summary help prints', async () => {
  for (const entry of COMMANDS) {
    const c = await entry.load();
    assert.equal(c.name, entry.name);
    assert.equal(c.summary, entry.summary, `${entry.name}: the registry's summary is the command's own`);
  }
  const help = spawnSync(process.execPath, [AGENT_BIN, 'help'], { encoding: 'utf8' });
  assert.equal(help.status, 0, help.stderr);
  for (const entry of COMMANDS) assert.match(help.stdout, new RegExp(`^  ${entry.name} +${entry.summary.slice(0, 20).replace(/[()?.*+]/g, '\\$&')}`, 'm'));
  const one = spawnSync(process.execPath, [AGENT_BIN, 'help', 'install'], { encoding: 'utf8' });
  assert.match(one.stdout, /^Usage: device-trust-agent install /m, '`help <command>` loads that command for its usage');
  const unknown = spawnSync(process.execPath, [AGENT_BIN, 'frobnicate'], { encoding: 'utf8' });
  assert.equal(unknown.status, 64);
  assert.match(unknown.stderr, /Unknown command "frobnicate"/);
});

test('the tray app finds the headless program: packaged on each OS, in a checkout, or not at all', () => {
  const files = new Set(['/opt/Device Trust Agent/resources/headless/node', '/opt/Device Trust Agent/resources/headless/device-trust-agent.mjs',
    'C:\\Program Files\\Device Trust Agent\\resources\\headless\\node.exe', 'C:\\Program Files\\Device Trust Agent\\resources\\headless\\device-trust-agent.mjs',
    '/repo/dist/headless/node', '/repo/dist/headless/device-trust-agent.mjs']);
  const exists = (f: string) => files.has(f);
  assert.deepEqual(headlessProgram({ packaged: true, resourcesPath: '/opt/Device Trust Agent/resources', appPath: '/x', platform: 'linux', exists }),
    ['/opt/Device Trust Agent/resources/headless/node', '/opt/Device Trust Agent/resources/headless/device-trust-agent.mjs']);
  assert.deepEqual(headlessProgram({ packaged: true, resourcesPath: 'C:\\Program Files\\Device Trust Agent\\resources', appPath: 'x', platform: 'win32', exists }),
    ['C:\\Program Files\\Device Trust Agent\\resources\\headless\\node.exe', 'C:\\Program Files\\Device Trust Agent\\resources\\headless\\device-trust-agent.mjs']);
  assert.deepEqual(headlessProgram({ packaged: false, resourcesPath: '/x', appPath: '/repo', platform: 'linux', exists }), ['/repo/dist/headless/node', '/repo/dist/headless/device-trust-agent.mjs']);
  assert.equal(headlessProgram({ packaged: true, resourcesPath: '/elsewhere', appPath: '/repo', platform: 'darwin', exists }), undefined);
});

test('every installer calls the headless program, never the Electron executable', () => {
  const nsh = fs.readFileSync(path.join(REPO, 'build', 'installer.nsh'), 'utf8');
  assert.match(nsh, /!define DTA_AGENT '"\$INSTDIR\\resources\\headless\\node\.exe" "\$INSTDIR\\resources\\headless\\device-trust-agent\.mjs"'/);
  const calls = [...nsh.matchAll(/nsExec::ExecToLog '([^']*)'/g)].map((m) => m[1]);
  assert.deepEqual(calls, ['${DTA_AGENT} install --device --no-run', '${DTA_AGENT} install --user --no-run', '${DTA_AGENT} run --device',
    '${DTA_AGENT} uninstall --user', '${DTA_AGENT} uninstall --device', '${DTA_AGENT} browser-setup --remove', '${DTA_AGENT} remove-certificate']);
  assert.doesNotMatch(nsh, /APP_EXECUTABLE_FILENAME\}" (install|run|uninstall)/);
  for (const [param, value] of [['OktaURL', 'OktaOrgUrl'], ['HttpProxy', 'HttpProxy'], ['HttpProxyPacLocation', 'HttpProxyPacLocation'], ['SkipBrowserSetup', 'SkipBrowserSetup'], ['SkipTPM', 'SkipTPM']]) {
    assert.ok(nsh.includes(`!insertmacro DTA_WriteParam "${param}" "${value}"`), `${param}= is still an install parameter`);
  }
  for (const f of ['build/pkg-scripts/postinstall', 'build/macos/uninstall.sh']) {
    const sh = fs.readFileSync(path.join(REPO, f), 'utf8');
    assert.match(sh, /NODE="\$APP\/Contents\/Resources\/headless\/node"/, f);
    assert.match(sh, /SCRIPT="\$APP\/Contents\/Resources\/headless\/device-trust-agent\.mjs"/, f);
    assert.doesNotMatch(sh, /Contents\/MacOS/, `${f} never runs the Electron executable`);
    const expected = f.endsWith('postinstall') ? ['install --device --no-run', 'install --user --no-run', 'run --device', 'run --user'] : ['uninstall --device', 'uninstall --user', 'browser-setup --remove', 'remove-certificate'];
    for (const sub of expected) assert.ok(sh.includes(`"$NODE" "$SCRIPT" ${sub}`), `${f} runs the headless program's ${sub}`);
  }
  const postinst = fs.readFileSync(path.join(REPO, 'build', 'linux', 'after-install.sh'), 'utf8');
  assert.match(postinst, /agent\(\) \{ "\$HEADLESS\/node" "\$HEADLESS\/device-trust-agent\.mjs" "\$@"; \}/);
  assert.doesNotMatch(postinst, /"\$\{?AGENT\}?" (install|run)/);
  const yml = fs.readFileSync(path.join(REPO, 'electron-builder.yml'), 'utf8');
  assert.match(yml, /extraResources:\n  - from: dist\/headless\n    to: headless/, 'the tray app\'s packages include the headless program');
});

test('install registers the program that is running: its declared command, else this checkout under this Node', () => {
  assert.deepEqual(defaultAgentCommand(), [process.execPath, AGENT_BIN]);
  declareAgentCommand(['/usr/lib/device-trust-agent/node', '/usr/lib/device-trust-agent/device-trust-agent.mjs']);
  assert.deepEqual(defaultAgentCommand(), ['/usr/lib/device-trust-agent/node', '/usr/lib/device-trust-agent/device-trust-agent.mjs']);
});
