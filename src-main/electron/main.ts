/**
 * The tray app's main process: one instance per user, a tray icon that follows the agent's state, the
 * dashboard window on demand, the scheduler, and the IPC handlers behind the guard. The agent's work is the
 * core's (src-main/core); this file only wires it to Electron.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { app, clipboard, dialog, Notification, powerMonitor, protocol, session, shell, type WebContents } from 'electron';
import { loadConfig as loadConfigWith } from '../core/config.js';
import { EventSinks, type AgentContext } from '../core/context.js';
import { configureEventForwarding } from '../core/fleet/forwarding.js';
import { writeFileAtomic } from '../base/fsutil.js';
import { KeyringSecretStore } from '../core/secrets/keyring.js';
import type { UiEvent } from '../ipc/contract.js';
import { createHandlers } from '../ipc/handlers.js';
import type { ServiceHost } from '../ipc/host.js';
import { DashboardService } from '../ipc/service.js';
import { APP_ORIGIN, APP_SCHEME, resolveAsset } from './app-protocol.js';
import { linuxAutostartEntry, linuxAutostartFile } from './autostart.js';
import { cliArgs, headlessProgram } from './cli-mode.js';
import { AgentSchedulerPort } from './agent-scheduler.js';
import { registerIpc } from './ipc.js';
import { launchActions, parseLaunchArgs, type LaunchRequest } from './launch-args.js';
import { SafeStorageSecretStore } from './secret-store.js';
import { TrayController } from './tray.js';
import type { TrayCommand } from './tray-model.js';
import { createManagedConfigReader, loadPlatform, platformSink } from '../platform/index.js';

import { DashboardWindow } from './window.js';
import { safeText } from '../base/safe-text.js';

// This OS's managed configuration: the app's settings come through it (and it goes into the context below).
const managed = createManagedConfigReader(process.platform, process.env);
const loadConfig = () => loadConfigWith({ managed });

const here = path.dirname(fileURLToPath(import.meta.url));
const RENDERER_DIR = path.resolve(here, '..', '..', 'src-renderer');
const PRELOAD = path.join(here, 'preload.cjs');
const TRAY_ICON_DIR = path.join(here, 'tray');
const STATUS_REFRESH_MS = 5 * 60 * 1000;

// Before ready: app:// is a standard, secure origin, so the page gets a real origin and its CSP applies.
protocol.registerSchemesAsPrivileged([{ scheme: APP_SCHEME, privileges: { standard: true, secure: true } }]);

const cli = cliArgs(process.argv, app.isPackaged);
if (cli) {
  void runCli(cli);
} else if (!app.requestSingleInstanceLock()) {
  // Another instance runs: Electron hands it our command line ('second-instance') and we leave.
  app.quit();
} else {
  void main();
}

/** A sub-command (the installers' `install`, `run --device`…): the agent's CLI, headless, then exit. */
async function runCli(argv: string[]): Promise<void> {
  if (process.platform === 'darwin') app.dock?.hide();
  // The headless program shipped beside the app runs it: never Electron (as root, without a display).
  const headless = headlessProgram({ packaged: app.isPackaged, resourcesPath: process.resourcesPath, appPath: app.getAppPath(), platform: process.platform, exists: fs.existsSync });
  if (headless) {
    const child = spawn(headless[0]!, [...headless.slice(1), ...argv], { stdio: 'inherit', env: process.env, windowsHide: true });
    child.on('error', (e) => {
      process.stderr.write(`device-trust-agent: could not start the headless program ${headless[0]}: ${e.message}\n`);
      app.exit(70);
    });
    child.on('exit', (code, signal) => app.exit(code ?? (signal ? 70 : 0)));
    return;
  }
  if (app.isPackaged) process.stderr.write('device-trust-agent: the headless program is missing from this installation (resources/headless); running the command in the tray app.\n');
  const { main: cliMain } = await import('../cli/main.js');
  let code: number;
  try {
    code = await cliMain(argv, { out: (s) => process.stdout.write(s + '\n'), err: (s) => process.stderr.write(s + '\n'), env: process.env });
  } catch (e) {
    process.stderr.write(`${(e as Error).stack ?? String(e)}\n`);
    code = 70;
  }
  app.exit(code);
}

function log(line: string): void {
  process.stderr.write(`[device-trust-agent] ${safeText(line)}\n`);
}

/** Every web contents: no navigation away, no new windows, no webviews. */
function harden(contents: WebContents): void {
  contents.on('will-navigate', (e, url) => {
    if (!url.startsWith(`${APP_ORIGIN}/`)) {
      e.preventDefault();
      log(`blocked navigation to ${url.slice(0, 200)}`);
    }
  });
  contents.on('will-redirect', (e, url) => {
    if (!url.startsWith(`${APP_ORIGIN}/`)) e.preventDefault();
  });
  contents.setWindowOpenHandler(({ url }) => {
    log(`blocked a new window for ${url.slice(0, 200)}`);
    return { action: 'deny' };
  });
  contents.on('will-attach-webview', (e) => e.preventDefault());
}

async function main(): Promise<void> {
  const first = parseLaunchArgs(process.argv.slice(1));
  app.on('web-contents-created', (_e, contents) => harden(contents));
  // A tray app stays when its window closes; it leaves through the tray's Quit.
  app.on('window-all-closed', () => undefined);
  await app.whenReady();

  const ses = session.defaultSession;
  ses.setPermissionRequestHandler((_wc, permission, callback) => {
    log(`denied permission "${permission}"`);
    callback(false);
  });
  ses.setPermissionCheckHandler(() => false);
  // The page has no business on the network: everything comes through the preload API.
  ses.webRequest.onBeforeRequest({ urls: ['http://*/*', 'https://*/*', 'ws://*/*', 'wss://*/*', 'file:///*'] }, (details, callback) => {
    callback({ cancel: details.webContentsId !== undefined });
  });
  protocol.handle(APP_SCHEME, async (request) => {
    const asset = resolveAsset(RENDERER_DIR, request.url);
    if (!asset) return new Response('Not found', { status: 404, headers: { 'content-type': 'text/plain' } });
    return new Response(await fs.promises.readFile(asset.file), { headers: asset.headers });
  });

  let debug = first.debug;
  let monitored: DashboardService | undefined;
  // Targets are checked on the health policy's interval only while someone looks at the dashboard.
  const dashboard = new DashboardWindow({ preload: PRELOAD, icon: path.join(TRAY_ICON_DIR, 'app.png'), onOpenChange: (open) => monitored?.monitorWhileOpen(open) });
  /** Shows the dashboard and gives it something to do once it listens. */
  const openWith = (event?: UiEvent) => {
    dashboard.open();
    if (event) dashboard.send(event);
  };
  // The app's one wiring point (core/context.ts): everything the core does here uses this context — the
  // platform, this OS's log, secrets through safeStorage, the system's proxy answer per URL.
  const context: AgentContext = {
    platform: await loadPlatform(),
    managed,
    secrets: (() => {
      try {
        return new SafeStorageSecretStore(loadConfig().config.stateDir);
      } catch {
        return new KeyringSecretStore(); // no valid configuration yet: the OS keyring, as the CLI uses
      }
    })(),
    systemProxy: { description: 'system proxy settings (Electron session.resolveProxy)', resolve: (url: string) => ses.resolveProxy(url) },
    events: new EventSinks(platformSink(), process.env),
  };
  const host: ServiceHost = {
    loadConfig: () => {
      const loaded = loadConfig();
      configureEventForwarding(context.events, loaded.config);
      return loaded;
    },
    context,
    emit: (event: UiEvent) => {
      dashboard.send(event);
      if (event.type === 'status-changed') void refreshTray();
    },
    rendererReady: () => dashboard.markReady(),
    saveExport: async (name, content) => {
      const parent = dashboard.current;
      const options = { defaultPath: path.join(app.getPath('documents'), name), filters: [{ name: 'Event log', extensions: [path.extname(name).slice(1)] }] };
      const r = parent ? await dialog.showSaveDialog(parent, options) : await dialog.showSaveDialog(options);
      if (r.canceled || !r.filePath) return null;
      writeFileAtomic(r.filePath, content, 0o600);
      return r.filePath;
    },
    get debugSink() {
      return debug ? log : undefined;
    },
  };
  const service = new DashboardService(host);
  monitored = service;
  const scheduler = new AgentSchedulerPort({ loadConfig: () => host.loadConfig(), context, log, onPass: () => host.emit({ type: 'status-changed' }) });
  host.scheduler = scheduler;
  registerIpc(createHandlers(service), { allowedOrigins: [APP_ORIGIN], onRefused: (why, channel) => log(`refused IPC call on ${channel}: ${why}`) });

  const notify = (title: string, body: string) => {
    if (Notification.isSupported()) new Notification({ title, body }).show();
  };
  const onCommand = (command: TrayCommand) => {
    switch (command) {
      case 'open-dashboard':
        openWith();
        break;
      case 'renew-now':
        service.run('renew').then((r) => notify('Device Trust Agent', r.message), (e: Error) => notify('Renewal did not succeed', e.message));
        break;
      case 'run-diagnostics':
        openWith({ type: 'navigate', view: 'overview' });
        service.runDiagnostics().catch((e: Error) => log(`diagnostics: ${e.message}`));
        break;
      case 'open-event-log':
        openWith({ type: 'navigate', view: 'events' });
        break;
      case 'copy-support-bundle': {
        // A zip cannot go on the clipboard everywhere: it is saved, shown in its folder, and its path copied.
        const file = path.join(app.getPath('downloads'), `device-trust-support-${new Date().toISOString().replace(/[:.]/g, '-')}.zip`);
        service.supportBundle(file, app.getVersion()).then((written) => {
          clipboard.writeText(written);
          shell.showItemInFolder(written);
          notify('Support bundle saved', `${written} (path copied). Tokens and keys are not included.`);
        }, (e: Error) => notify('Support bundle failed', e.message));
        break;
      }
      case 'quit':
        scheduler.stop();
        app.quit();
        break;
    }
  };
  const tray = new TrayController(TRAY_ICON_DIR, onCommand);
  async function refreshTray(): Promise<void> {
    try {
      tray.update(await service.status(), service.activity !== null);
    } catch (e) {
      tray.update(undefined, service.activity !== null, (e as Error).message);
    }
  }

  const handleLaunch = (req: LaunchRequest) => {
    for (const action of launchActions(req)) {
      if (action.kind === 'debug-on') debug = true;
      else if (action.kind === 'open-dashboard') openWith({ type: 'navigate', view: action.view });
      else openWith({ type: 'confirm-force-renewal' });
    }
  };
  // The second launch's argv comes from another process: parsed as untrusted input (launch-args.ts).
  app.on('second-instance', (_e, argv) => handleLaunch(parseLaunchArgs(argv.slice(1))));
  app.on('activate', () => openWith());
  powerMonitor.on('resume', () => scheduler.wake());

  registerLoginItem();
  scheduler.start();
  await refreshTray();
  setInterval(() => void refreshTray(), STATUS_REFRESH_MS).unref();
  handleLaunch(first);

  if (process.env.DTA_TEST_HOOKS === '1') {
    // For the Playwright _electron test: the main process is trusted, and nothing here reaches the page.
    (globalThis as Record<string, unknown>).__deviceTrustShell = {
      tray: () => tray.snapshot,
      refreshTray,
      trayCommand: onCommand,
      launch: (argv: string[]) => handleLaunch(parseLaunchArgs(argv)),
      secretStore: () => context.secrets.description,
    };
  }
}

function registerLoginItem(): void {
  if (!app.isPackaged) return;
  if (process.platform === 'win32' || process.platform === 'darwin') {
    app.setLoginItemSettings({ openAtLogin: true, args: ['--hidden'] });
  } else if (process.platform === 'linux') {
    try {
      writeFileAtomic(linuxAutostartFile(), linuxAutostartEntry(process.env.APPIMAGE || process.execPath), 0o644);
    } catch (e) {
      log(`could not register the login item: ${(e as Error).message}`);
    }
  }
}
