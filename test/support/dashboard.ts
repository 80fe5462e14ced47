/**
 * Runs the dashboard in Debian's Chromium the way the Electron shell runs it: the built renderer served
 * with the shell's own asset resolver and headers (CSP included), and `window.deviceTrust` generated from
 * the contract, each call carried by a Playwright binding to the REAL IPC handlers in this process, through
 * the same guard Electron uses (sender origin + main frame, schema validation).
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { chromium } from 'playwright-core';
import { assetHeaders, resolveAsset } from '../../src-main/electron/app-protocol.js';
import { loadConfig } from '../../src-main/core/config.js';
import { API_METHODS, type UiEvent } from '../../src-main/ipc/contract.js';
import { dispatch, type GuardOptions } from '../../src-main/ipc/guard.js';
import { createHandlers } from '../../src-main/ipc/handlers.js';
import type { ServiceHost } from '../../src-main/ipc/host.js';
import { DashboardService } from '../../src-main/ipc/service.js';
import { REPO, tempDir } from './agent.js';
import { CHROMIUM } from './chromium.js';
import type { SecretStore } from '../../src-main/core/secrets/index.js';
import { axeViolations, describeViolations } from './axe.js';
import { testContext } from './context.js';

// Page-side code (page.evaluate) runs in the browser; the project's Node build has no DOM types.
declare const document: any;
declare const window: any;


/** The test page's origin: https, so the page is a secure context as app://dashboard is in the app. */
export const TEST_ORIGIN = 'https://dashboard.test';
export const RENDERER_DIST = path.join(REPO, 'dist', 'src-renderer');

export function dashboardUnavailable(): string | undefined {
  if (!CHROMIUM) return 'skipped: Chromium is not installed (apt install chromium)';
  if (!fs.existsSync(path.join(RENDERER_DIST, 'index.html'))) return 'skipped: the renderer is not built (npm run build)';
  return undefined;
}

export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM!,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run', '--disable-dev-shm-usage'],
  });
}

export interface DashboardHarness {
  page: Page;
  service: DashboardService;
  /** Every event the main side pushed to the page, in order. */
  emitted: UiEvent[];
  /** Every call the guard refused, with the reason. */
  refused: { reason: string; channel: string }[];
  /** CSP violations the page reported. */
  cspViolations: string[];
  exportDir: string;
  emit(event: UiEvent): Promise<void>;
}

/** Opens the dashboard in a new page of `browser`, bridged to the real handlers for the agent in `env`. */
export async function openDashboard(browser: Browser, env: Record<string, string>, opts: { colorScheme?: 'light' | 'dark'; pending?: UiEvent[]; secrets?: SecretStore } = {}): Promise<DashboardHarness> {
  const page = await browser.newPage({ viewport: { width: 1200, height: 860 }, colorScheme: opts.colorScheme ?? 'light', locale: 'en-GB', timezoneId: 'UTC' });
  const exportDir = tempDir('export');
  const emitted: UiEvent[] = [];
  const refused: { reason: string; channel: string }[] = [];
  const cspViolations: string[] = [];
  const emit = async (event: UiEvent) => {
    emitted.push(event);
    await page.evaluate((e) => (window as unknown as { __deviceTrustEmit?: (e: unknown) => void }).__deviceTrustEmit?.(e), event).catch(() => undefined);
  };
  const host: ServiceHost = {
    loadConfig: () => loadConfig({ env }),
    context: testContext(opts.secrets ? { secrets: opts.secrets } : {}),
    // The test device signs in with the lab-only sign-in and has no Kerberos realm of its own.
    env: { ...process.env, KRB5_CONFIG: '/dev/null', ...env },
    emit: (event) => void emit(event),
    // What the shell queued for a page that was still loading (e.g. the tray's "Open event log").
    rendererReady: () => (opts.pending ?? []).splice(0),
    saveExport: async (name, content) => {
      const file = path.join(exportDir, name);
      fs.writeFileSync(file, content, { mode: 0o600 });
      return file;
    },
  };
  const service = new DashboardService(host);
  const handlers = createHandlers(service);
  const guard: GuardOptions = { allowedOrigins: [TEST_ORIGIN], onRefused: (reason, channel) => refused.push({ reason, channel }) };

  // What the app's protocol handler does for app://dashboard, here for the test origin.
  await page.route(`${TEST_ORIGIN}/**`, async (route) => {
    const asset = resolveAsset(RENDERER_DIST, route.request().url(), TEST_ORIGIN);
    if (!asset) return route.fulfill({ status: 404, body: 'Not found', headers: assetHeaders('text/plain') });
    return route.fulfill({ status: 200, body: fs.readFileSync(asset.file), headers: asset.headers });
  });
  // What ipcMain.handle + the guard do in the app.
  await page.exposeBinding('__deviceTrustInvoke', async (source, channel: unknown, request: unknown) =>
    dispatch(channel, request, { frameUrl: source.frame.url(), isMainFrame: source.frame === source.page.mainFrame() }, handlers, guard));
  await page.exposeBinding('__cspViolation', (_source, what: string) => {
    cspViolations.push(what);
  });
  // What the preload does (contract.ts buildApi): one generated function per channel, plus onEvent.
  await page.addInitScript((methods: { method: string; channel: string }[]) => {
    const w = window as unknown as Record<string, unknown>;
    const invoke = w.__deviceTrustInvoke as (c: string, r: unknown) => Promise<unknown>;
    const listeners = new Set<(e: unknown) => void>();
    const api: Record<string, unknown> = {};
    for (const { method, channel } of methods) api[method] = (request: unknown) => invoke(channel, request ?? {});
    api.onEvent = (listener: (e: unknown) => void) => {
      listeners.add(listener);
      return () => listeners.delete(listener);
    };
    w.deviceTrust = Object.freeze(api);
    w.__deviceTrustEmit = (e: unknown) => listeners.forEach((l) => l(e));
    document.addEventListener('securitypolicyviolation', (e: { violatedDirective: string; blockedURI: string }) => {
      void (w.__cspViolation as (s: string) => Promise<void>)(`${e.violatedDirective} ${e.blockedURI}`);
    });
  }, API_METHODS);
  await page.goto(`${TEST_ORIGIN}/index.html`);
  return { page, service, emitted, refused, cspViolations, exportDir, emit };
}

export const SCREENSHOTS = path.join(REPO, 'test-results', 'dashboard');

/** A view's screenshot: the whole page, or only the viewport (a modal dialog's backdrop covers just that). */
export async function screenshot(page: Page, name: string, opts: { fullPage?: boolean } = {}): Promise<string> {
  fs.mkdirSync(SCREENSHOTS, { recursive: true });
  const file = path.join(SCREENSHOTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage: opts.fullPage ?? true, animations: 'disabled' });
  return file;
}

/**
 * A view as a user of either theme sees it: axe-core finds no WCAG 2.0/2.1 A/AA or best-practice violation in
 * light or dark, and each theme's screenshot is saved (`<name>-light.png`, `<name>-dark.png`).
 */
export async function checkView(page: Page, name: string, opts: { fullPage?: boolean } = {}): Promise<void> {
  const failures: string[] = [];
  for (const scheme of ['light', 'dark'] as const) {
    await page.emulateMedia({ colorScheme: scheme });
    const v = await axeViolations(page);
    if (v.length) failures.push(describeViolations(`${name} (${scheme} theme)`, v));
    await screenshot(page, `${name}-${scheme}`, opts);
  }
  await page.emulateMedia({ colorScheme: 'light' });
  if (failures.length) throw new Error(failures.join('\n'));
}
