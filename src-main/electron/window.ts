/**
 * The dashboard window: created when someone opens it and destroyed when they close it, so nothing renders
 * while nobody looks. Hardened: isolated, sandboxed, no Node, served from app://dashboard.
 */
import { BrowserWindow, Menu, type WebPreferences } from 'electron';
import { DASHBOARD_URL } from './app-protocol.js';

/** The webPreferences every dashboard window gets (the Electron test reads the live ones back). */
export function dashboardWebPreferences(preload: string): WebPreferences {
  return {
    preload,
    contextIsolation: true,
    sandbox: true,
    nodeIntegration: false,
    nodeIntegrationInWorker: false,
    nodeIntegrationInSubFrames: false,
    webSecurity: true,
    allowRunningInsecureContent: false,
    webviewTag: false,
    navigateOnDragDrop: false,
    spellcheck: false,
    safeDialogs: true,
    enableWebSQL: false,
  };
}

export class DashboardWindow {
  private win: BrowserWindow | undefined;
  private readyCallbacks: (() => void)[] = [];
  private loaded = false;

  constructor(private readonly opts: { preload: string; icon?: string; onOpened?: () => void }) {}

  get current(): BrowserWindow | undefined {
    return this.win && !this.win.isDestroyed() ? this.win : undefined;
  }

  /** Shows the window (creating it if needed); `then` runs once its page has loaded. */
  open(then?: () => void): BrowserWindow {
    const existing = this.current;
    if (existing) {
      if (existing.isMinimized()) existing.restore();
      existing.show();
      existing.focus();
      if (then) (this.loaded ? then() : this.readyCallbacks.push(then));
      return existing;
    }
    const win = new BrowserWindow({
      width: 1100,
      height: 780,
      minWidth: 720,
      minHeight: 520,
      show: false,
      title: 'Device Trust Agent',
      ...(this.opts.icon ? { icon: this.opts.icon } : {}),
      autoHideMenuBar: true,
      webPreferences: dashboardWebPreferences(this.opts.preload),
    });
    Menu.setApplicationMenu(null);
    this.win = win;
    this.loaded = false;
    if (then) this.readyCallbacks.push(then);
    win.once('ready-to-show', () => win.show());
    win.webContents.on('did-finish-load', () => {
      this.loaded = true;
      const cbs = this.readyCallbacks.splice(0);
      for (const cb of cbs) cb();
    });
    // Destroyed, not hidden: the renderer process goes away with it.
    win.on('closed', () => {
      this.win = undefined;
      this.loaded = false;
      this.readyCallbacks = [];
    });
    void win.loadURL(DASHBOARD_URL);
    this.opts.onOpened?.();
    return win;
  }

  send(channel: string, payload: unknown): void {
    const win = this.current;
    if (win && this.loaded) win.webContents.send(channel, payload);
  }
}
