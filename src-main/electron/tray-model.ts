/** What the tray shows for each state: icon, tooltip, menu. Electron-free, so it is unit-tested. */
import type { StatusView, TrustState } from '../ipc/contract.js';

export const TRAY_ICONS: Record<TrustState, string> = {
  trusted: 'tray-trusted.png',
  renewing: 'tray-renewing.png',
  attention: 'tray-attention.png',
  'not-trusted': 'tray-not-trusted.png',
};

/** Windows cuts tray tooltips at 127 characters. */
const MAX_TOOLTIP = 127;

export function trayTooltip(s: Pick<StatusView, 'trust' | 'headline' | 'certificate'> | undefined, problem?: string): string {
  let line: string;
  if (!s) line = problem ? `Status unavailable: ${problem}` : 'Checking…';
  else if (s.trust === 'trusted' && s.certificate) line = `${s.headline} (certificate valid for ${s.certificate.daysToExpiry} more days)`;
  else line = s.headline;
  const full = `Device Trust Agent — ${line}`;
  return full.length > MAX_TOOLTIP ? `${full.slice(0, MAX_TOOLTIP - 1)}…` : full;
}

export type TrayCommand = 'open-dashboard' | 'renew-now' | 'run-diagnostics' | 'open-event-log' | 'copy-support-bundle' | 'quit';

export interface TrayMenuItem {
  command: TrayCommand;
  label: string;
  enabled: boolean;
}

/** The menu, in order; a separator goes before "Quit". Renewing is disabled while work runs. */
export function trayMenu(busy: boolean): TrayMenuItem[] {
  return [
    { command: 'open-dashboard', label: 'Open dashboard', enabled: true },
    { command: 'renew-now', label: busy ? 'Renewing…' : 'Renew now', enabled: !busy },
    { command: 'run-diagnostics', label: 'Run diagnostics', enabled: !busy },
    { command: 'open-event-log', label: 'Open event log', enabled: true },
    { command: 'copy-support-bundle', label: 'Copy support bundle', enabled: true },
    { command: 'quit', label: 'Quit', enabled: true },
  ];
}
