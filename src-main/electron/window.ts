/**
 * The dashboard window: created when someone opens it and destroyed when they close it, so nothing renders
 * while nobody looks. Hardened: isolated, sandboxed, no Node, served from app://dashboard. Events for it
 * wait until its page says it listens (the ui:ready call), so "open the event log" is not lost to a page
 * that is still loading.
 */
import { BrowserWindow, Menu, type WebPreferences } from 'electron';
import { UI_EVENT_CHANNEL, type UiEvent } from '../ipc/contract.js';
import { DASHBOARD_URL } from './app-protocol.js';

const MAX_PENDING = 20;

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
  private ready = false;
  private pending: UiEvent[] = [];

  /** `onOpenChange` hears when the window comes and goes (the shell checks targets only while it is open). */
  constructor(private readonly opts: { preload: string; icon?: string; onOpenChange?: (open: boolean) => void }) {}

  get current(): BrowserWindow | undefined {
    return this.win && !this.win.isDestroyed() ? this.win : undefined;
  }

  /** Shows the window, creating it if needed. */
  open(): BrowserWindow {
    const existing = this.current;
    if (existing) {
      if (existing.isMinimized()) existing.restore();
      existing.show();
      existing.focus();
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
    this.ready = false;
    win.once('ready-to-show', () => win.show());
    // A reload starts a new page that must say again that it listens.
    win.webContents.on('did-start-navigation', (details) => {
      if (details.isMainFrame && !details.isSameDocument) this.ready = false;
    });
    // Destroyed, not hidden: the renderer process goes away with it.
    win.on('closed', () => {
      this.win = undefined;
      this.ready = false;
      this.pending = [];
      this.opts.onOpenChange?.(false);
    });
    void win.loadURL(DASHBOARD_URL);
    this.opts.onOpenChange?.(true);
    return win;
  }

  /** Sends now if the page listens; otherwise keeps what a person asked for (not progress) for ui:ready. */
  send(event: UiEvent): void {
    const win = this.current;
    if (!win) return;
    if (this.ready) win.webContents.send(UI_EVENT_CHANNEL, event);
    else if (event.type === 'navigate' || event.type === 'confirm-force-renewal') this.pending = [...this.pending, event].slice(-MAX_PENDING);
  }

  /** The page subscribed: hand over what waited for it. */
  markReady(): UiEvent[] {
    this.ready = true;
    const p = this.pending;
    this.pending = [];
    return p;
  }
}
