/** The tray icon: its image and tooltip follow the agent's state; its menu is tray-model.ts's. */
import path from 'node:path';
import { Menu, nativeImage, Tray, type MenuItemConstructorOptions } from 'electron';
import type { StatusView, TrustState } from '../ipc/contract.js';
import { TRAY_ICONS, trayMenu, trayTooltip, type TrayCommand } from './tray-model.js';

export interface TraySnapshot {
  state: TrustState | undefined;
  icon: string;
  tooltip: string;
  menu: { label: string; enabled: boolean }[];
}

export class TrayController {
  private readonly tray: Tray;
  private snap: TraySnapshot;

  constructor(private readonly iconDir: string, private readonly onCommand: (c: TrayCommand) => void) {
    const icon = TRAY_ICONS['not-trusted'];
    this.tray = new Tray(nativeImage.createFromPath(path.join(iconDir, icon)));
    this.tray.on('click', () => onCommand('open-dashboard'));
    this.snap = { state: undefined, icon, tooltip: trayTooltip(undefined), menu: [] };
    this.update(undefined, false);
  }

  get snapshot(): TraySnapshot {
    return this.snap;
  }

  update(view: StatusView | undefined, busy: boolean, problem?: string): void {
    const state = view?.trust;
    const icon = TRAY_ICONS[state ?? 'not-trusted'];
    if (icon !== this.snap.icon) this.tray.setImage(nativeImage.createFromPath(path.join(this.iconDir, icon)));
    const tooltip = trayTooltip(view, problem);
    this.tray.setToolTip(tooltip);
    const items = trayMenu(busy);
    const template: MenuItemConstructorOptions[] = [];
    for (const item of items) {
      if (item.command === 'quit') template.push({ type: 'separator' });
      template.push({ label: item.label, enabled: item.enabled, click: () => this.onCommand(item.command) });
    }
    this.tray.setContextMenu(Menu.buildFromTemplate(template));
    this.snap = { state, icon, tooltip, menu: items.map(({ label, enabled }) => ({ label, enabled })) };
  }

  destroy(): void {
    this.tray.destroy();
  }
}
