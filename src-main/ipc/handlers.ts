/**
 * The IPC handlers: one per channel of the contract, over the dashboard service. The Electron shell
 * registers them behind the guard (ipcMain.handle → dispatch); the Chromium tests call the very same
 * functions through the same guard.
 */
import type { Handlers } from './guard.js';
import type { DashboardService } from './service.js';

export function createHandlers(service: DashboardService): Handlers {
  return {
    'status:get': () => service.status(),
    'task:renew': () => service.run('renew'),
    // The schema already demanded { confirmed: true }: the dashboard asked the user first.
    'task:force-renewal': () => service.run('forceRenewal'),
    'diagnostics:last': async () => service.lastDiagnostics(),
    'diagnostics:run': () => service.runDiagnostics(),
    'events:query': async (q) => service.queryEvents(q),
    'events:export': (r) => service.exportEvents(r.query, r.format),
    'posture:get': async () => service.posture(),
    'posture:run': () => service.runPosture(),
    'ui:ready': async () => service.rendererReady(),
    'admin-token:status': () => service.adminToken(),
    'admin-token:set': (r) => service.setAdminToken(r.token),
    'admin-token:test': () => service.testAdminToken(),
    'admin-token:remove': () => service.removeAdminToken(),
  };
}
