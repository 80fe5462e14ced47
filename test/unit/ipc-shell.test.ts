/**
 * The Electron shell's decisions, tested under plain Node (its Electron-free modules): what a launch's
 * command line may ask, what the tray shows, which secret backends are refused, what the custom protocol
 * serves, the CSP of the built page, the scheduler stand-in, the login item — and the rule that only
 * src-main/electron imports Electron.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { APP_ORIGIN, CSP, CSP_DIRECTIVES, CSP_META, resolveAsset } from '../../src-main/electron/app-protocol.js';
import { linuxAutostartEntry, linuxAutostartFile } from '../../src-main/electron/autostart.js';
import { cliArgs } from '../../src-main/electron/cli-mode.js';
import { AgentSchedulerPort } from '../../src-main/electron/agent-scheduler.js';
import { loadConfig as loadAgentConfig } from '../../src-main/core/config.js';
import { launchActions, parseLaunchArgs } from '../../src-main/electron/launch-args.js';
import { safeStorageProblem } from '../../src-main/electron/secret-policy.js';
import { TRAY_ICONS, trayMenu, trayTooltip } from '../../src-main/electron/tray-model.js';
import { REPO, tempDir } from '../support/agent.js';
import { testContext } from '../support/context.js';

const ELECTRON = ['electr', 'on'].join('');
/** Module specifiers that load Electron: 'electron' and its subpaths, by import, dynamic import or require. */
const LOADS_ELECTRON = new RegExp(`(?:\\bfrom\\s*|\\bimport\\s*\\(\\s*|\\brequire\\s*\\(\\s*|\\bimport\\s+)(['"\`])${ELECTRON}(?:/[^'"\`]*)?\\1`);

function sourceFiles(dir: string, out: string[] = []): string[] {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    if (e.name === 'node_modules' || e.name === 'dist' || e.name.startsWith('.')) continue;
    const p = path.join(dir, e.name);
    if (e.isDirectory()) sourceFiles(p, out);
    else if (/\.(c|m)?(t|j)sx?$/.test(e.name)) out.push(p);
  }
  return out;
}

describe('layering: only the Electron shell loads Electron', () => {
  test('the check recognises every way of loading it', () => {
    for (const s of [`import { app } from '${ELECTRON}';`, `import type { WebContents } from "${ELECTRON}"`, `const e = require('${ELECTRON}')`, `await import('${ELECTRON}/main')`, `import '${ELECTRON}';`]) {
      assert.match(s, LOADS_ELECTRON, s);
    }
    for (const s of [`import x from '${ELECTRON}-builder'`, `// the ${ELECTRON} shell`, `import { _${ELECTRON} } from 'playwright-core'`]) {
      assert.doesNotMatch(s, LOADS_ELECTRON, s);
    }
  });

  test(`no file outside src-main/${ELECTRON}/ imports it (loading it under plain Node downloads a binary)`, () => {
    const shell = path.join(REPO, 'src-main', ELECTRON) + path.sep;
    const offenders = sourceFiles(REPO).filter((f) => !f.startsWith(shell) && LOADS_ELECTRON.test(fs.readFileSync(f, 'utf8')));
    assert.deepEqual(offenders.map((f) => path.relative(REPO, f)), []);
    assert.ok(sourceFiles(path.join(REPO, 'src-main', ELECTRON)).some((f) => LOADS_ELECTRON.test(fs.readFileSync(f, 'utf8'))), 'the shell itself is scanned too');
  });

  test('the bundled preload loads nothing but Electron', () => {
    const preload = path.join(REPO, 'dist', 'src-main', ELECTRON, 'preload.cjs');
    const requires = new Set([...fs.readFileSync(preload, 'utf8').matchAll(/require\(\s*["']([^"']+)["']\s*\)/g)].map((m) => m[1]));
    assert.deepEqual([...requires], [ELECTRON]);
  });
});

describe('the built dashboard page', () => {
  const html = () => fs.readFileSync(path.join(REPO, 'dist', 'src-renderer', 'index.html'), 'utf8');

  test('carries the strict CSP, with no remote source, inline code or eval', () => {
    const meta = /<meta http-equiv="Content-Security-Policy" content="([^"]+)">/.exec(html())?.[1];
    assert.equal(meta, CSP_META);
    const directives = Object.fromEntries(meta!.split(';').map((d) => d.trim().split(/\s+/)).map(([k, ...v]) => [k, v]));
    assert.deepEqual(directives['default-src'], ["'none'"]);
    assert.deepEqual(directives['script-src'], ["'self'"]);
    assert.deepEqual(directives['connect-src'], ["'none'"]);
    assert.deepEqual(directives['object-src'], ["'none'"]);
    assert.doesNotMatch(meta!, /unsafe-|https?:|\*|wss?:/);
    assert.match(CSP, /frame-ancestors 'none'/, 'the header form also forbids framing');
    assert.equal(CSP_DIRECTIVES['base-uri'], "'none'");
  });

  test('has no inline script, inline style or event-handler attribute', () => {
    const page = html();
    assert.doesNotMatch(page, /<script(?![^>]*\bsrc=)[^>]*>/);
    assert.doesNotMatch(page, /<style|\sstyle=|\son[a-z]+=/i);
  });
});

describe('the app:// protocol serves only the renderer directory', () => {
  const root = tempDir('renderer');
  fs.writeFileSync(path.join(root, 'index.html'), '<!doctype html>');
  fs.writeFileSync(path.join(root, 'app.js'), '');
  fs.writeFileSync(path.join(root, 'notes.txt'), 'x');
  fs.writeFileSync(path.join(path.dirname(root), 'secret.js'), 'x');

  test('serves its files with the CSP and nosniff headers', () => {
    const a = resolveAsset(root, `${APP_ORIGIN}/index.html`);
    assert.equal(a?.file, path.join(root, 'index.html'));
    assert.equal(a?.headers['content-security-policy'], CSP);
    assert.equal(a?.headers['x-content-type-options'], 'nosniff');
    assert.equal(resolveAsset(root, `${APP_ORIGIN}/`)?.file, path.join(root, 'index.html'));
    assert.equal(resolveAsset(root, `${APP_ORIGIN}/app.js?v=1`)?.headers['content-type'], 'text/javascript; charset=utf-8');
  });

  for (const url of [`${APP_ORIGIN}/../secret.js`, `${APP_ORIGIN}/%2e%2e/secret.js`, `${APP_ORIGIN}/..%2fsecret.js`, `${APP_ORIGIN}/%2e%2e%2fsecret.js`, `${APP_ORIGIN}/a%00.js`, `${APP_ORIGIN}/notes.txt`, `${APP_ORIGIN}/missing.js`, 'app://other/index.html', `${APP_ORIGIN}/%E0%A4%A`]) {
    test(`refuses ${url}`, () => assert.equal(resolveAsset(root, url), undefined));
  }
});

describe('launch arguments are untrusted input', () => {
  test('only the known flags count; anything else is ignored', () => {
    assert.deepEqual(parseLaunchArgs(['--forceRenewal', '--show-tokens', '--inspect=9229', '--debug']), { show: false, forceRenewal: true, debug: true, hidden: false });
    assert.deepEqual(parseLaunchArgs(['--force-renewal=1', 'run', '--SHOW']), { show: true, forceRenewal: false, debug: false, hidden: false });
    assert.deepEqual(parseLaunchArgs('--show'), { show: false, forceRenewal: false, debug: false, hidden: false }, 'not an array: nothing');
    assert.deepEqual(parseLaunchArgs(Array(1000).fill('--show')), { show: false, forceRenewal: false, debug: false, hidden: false }, 'oversized: nothing');
  });

  test('--forceRenewal only asks the user; --debug opens the event log; --hidden stays in the tray', () => {
    assert.deepEqual(launchActions(parseLaunchArgs(['--forceRenewal'])), [{ kind: 'open-dashboard', view: 'overview' }, { kind: 'confirm-force-renewal' }]);
    assert.deepEqual(launchActions(parseLaunchArgs(['--debug'])), [{ kind: 'debug-on' }, { kind: 'open-dashboard', view: 'events' }]);
    assert.deepEqual(launchActions(parseLaunchArgs(['--hidden'])), []);
    assert.deepEqual(launchActions(parseLaunchArgs([])), [{ kind: 'open-dashboard', view: 'overview' }]);
  });
});

describe('the tray', () => {
  test('each state has its icon, and the files exist', () => {
    assert.equal(new Set(Object.values(TRAY_ICONS)).size, 4);
    for (const f of Object.values(TRAY_ICONS)) {
      assert.ok(fs.existsSync(path.join(REPO, 'build', 'tray', f)), f);
      assert.ok(fs.existsSync(path.join(REPO, 'build', 'tray', f.replace('.png', '@2x.png'))), f);
    }
  });

  test('the tooltip answers "is this device trusted?" within Windows\' 127 characters', () => {
    const cert = { daysToExpiry: 200 } as never;
    assert.equal(trayTooltip({ trust: 'trusted', headline: 'This device is trusted', certificate: cert }), 'Device Trust Agent — This device is trusted (certificate valid for 200 more days)');
    assert.equal(trayTooltip({ trust: 'attention', headline: 'This device needs attention' }), 'Device Trust Agent — This device needs attention');
    assert.equal(trayTooltip(undefined, 'x'.repeat(300)).length, 127);
  });

  test('the menu has the six commands; renewing and diagnostics are disabled while work runs', () => {
    assert.deepEqual(trayMenu(false).map((i) => i.label), ['Open dashboard', 'Renew now', 'Run diagnostics', 'Open event log', 'Copy support bundle', 'Quit']);
    assert.deepEqual(trayMenu(true).filter((i) => !i.enabled).map((i) => i.command), ['renew-now', 'run-diagnostics']);
  });
});

describe('secrets', () => {
  test('safeStorage is refused on Linux without a keyring, and when unavailable', () => {
    assert.match(safeStorageProblem('linux', true, 'basic_text') ?? '', /No keyring is running/);
    assert.match(safeStorageProblem('linux', true, 'unknown') ?? '', /No keyring/);
    assert.match(safeStorageProblem('win32', false, undefined) ?? '', /unavailable/);
    assert.equal(safeStorageProblem('linux', true, 'gnome_libsecret'), undefined);
    assert.equal(safeStorageProblem('linux', true, 'kwallet6'), undefined);
    assert.equal(safeStorageProblem('darwin', true, undefined), undefined);
  });
});

describe('start at login (Linux)', () => {
  test('an XDG autostart entry that starts hidden, with the path quoted', () => {
    assert.equal(linuxAutostartFile({ HOME: '/home/a' }), '/home/a/.config/autostart/device-trust-agent-tray.desktop');
    assert.equal(linuxAutostartFile({ HOME: '/home/a', XDG_CONFIG_HOME: '/cfg' }), '/cfg/autostart/device-trust-agent-tray.desktop');
    const entry = linuxAutostartEntry('/opt/Device Trust Agent/device-trust-agent');
    assert.match(entry, /^\[Desktop Entry\]\n/);
    assert.match(entry, /\nExec="\/opt\/Device Trust Agent\/device-trust-agent" --hidden\n/);
  });
});

describe('the tray app hosts the agent\'s scheduler', () => {
  test('it takes the per-user daemon lock: a second host (or a running daemon) leaves the schedule to the first', async () => {
    const home = tempDir('sched-host');
    const env = { HOME: home, DTA_MANAGED_CONFIG_DIR: path.join(home, 'managed') };
    const loadConfig = () => loadAgentConfig({ env, cli: { orgUrl: 'https://org.example.invalid', stateDir: path.join(home, 'state') } });
    const lines: string[] = [];
    const first = new AgentSchedulerPort({ loadConfig, context: testContext(), log: (l) => lines.push(l) });
    const second = new AgentSchedulerPort({ loadConfig, context: testContext(), log: (l) => lines.push(l) });
    first.start();
    try {
      assert.equal(first.busyWith, undefined);
      second.start();
      assert.match(second.busyWith ?? '', /pid \d+/);
      assert.ok(lines.some((l) => /Another scheduler runs for this user/.test(l)));
      assert.equal(second.next(), undefined, 'the second host plans nothing');
    } finally {
      await first.stopped();
    }
    const third = new AgentSchedulerPort({ loadConfig, context: testContext(), log: (l) => lines.push(l) });
    third.start();
    assert.equal(third.busyWith, undefined, 'the lock was released on stop');
    await third.stopped();
  });
});

describe('Electron fuses', () => {
  /** The electronFuses block of an electron-builder YAML file, as key → boolean. */
  function fuses(file: string): Record<string, boolean> {
    const text = fs.readFileSync(path.join(REPO, file), 'utf8');
    const block = /^electronFuses:\n((?:[ \t]+\S.*\n?)+)/m.exec(text)?.[1] ?? '';
    return Object.fromEntries([...block.matchAll(/^\s+(\w+):\s*(true|false)\s*$/gm)].map((m) => [m[1]!, m[2] === 'true']));
  }

  test('what ships: no run-as-node, no NODE_OPTIONS, no --inspect, asar integrity, app only from asar', () => {
    assert.deepEqual(fuses('electron-builder.yml'), {
      runAsNode: false,
      enableNodeOptionsEnvironmentVariable: false,
      enableNodeCliInspectArguments: false,
      enableEmbeddedAsarIntegrityValidation: true,
      onlyLoadAppFromAsar: true,
      enableCookieEncryption: true,
    });
  });

  test('the test build differs only in the inspect fuse Playwright needs, and builds elsewhere', () => {
    const ship = fuses('electron-builder.yml');
    const testBuild = fuses('electron-builder.test.yml');
    assert.deepEqual(testBuild, { ...ship, enableNodeCliInspectArguments: true });
    const text = fs.readFileSync(path.join(REPO, 'electron-builder.test.yml'), 'utf8');
    assert.match(text, /^extends: \.\/electron-builder\.yml$/m);
    assert.match(text, /output: release-test/);
  });
});

describe('the packaged executable is also the command line', () => {
  test('a sub-command runs the CLI; flags alone start the tray app', () => {
    assert.deepEqual(cliArgs(['/opt/DTA/device-trust-agent', 'run', '--device'], true), ['run', '--device']);
    assert.deepEqual(cliArgs(['C:\\DTA\\Device Trust Agent.exe', 'install'], true), ['install']);
    assert.deepEqual(cliArgs(['/opt/DTA/device-trust-agent', '--no-sandbox', 'status', '--json'], true), ['status', '--json']);
    assert.deepEqual(cliArgs(['/opt/DTA/device-trust-agent', 'OktaURL=https://x.okta.com'], true), ['OktaURL=https://x.okta.com']);
    assert.equal(cliArgs(['/opt/DTA/device-trust-agent', '--hidden'], true), undefined);
    assert.equal(cliArgs(['/Applications/DTA.app/Contents/MacOS/DTA', '-psn_0_12345'], true), undefined);
  });

  test('in development the app directory is not a sub-command, and test-driver switches are ignored', () => {
    assert.equal(cliArgs(['/x/electron', '--inspect=0', '--remote-debugging-port=0', '--no-sandbox', '/repo', '--hidden'], false), undefined);
    assert.equal(cliArgs(['/x/electron', '.'], false), undefined);
    assert.deepEqual(cliArgs(['/x/electron', '.', 'run', '--forceRenewal'], false), ['run', '--forceRenewal']);
  });
});
