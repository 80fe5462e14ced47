import type { Command } from '../command.js';

/**
 * One sub-command as `help` lists it, and how to load its implementation. Each command's module (and what it
 * imports: HTTP, X.509, schemas, PAC) is loaded only when that command runs, so `help` and `--version` start
 * as fast as Node itself. The summary here is the one `help` prints; test/unit/cli-registry.test.ts checks it
 * matches the command's own.
 */
export interface CommandEntry {
  name: string;
  summary: string;
  load(): Promise<Command>;
}

/** Every sub-command, in the order `help` lists them. Add a command: one file in this folder, one entry here. */
export const COMMANDS: CommandEntry[] = [
  { name: 'run', summary: 'one pass: enroll, renew, or nothing (the default command)', load: async () => (await import('./run.js')).runCommand },
  { name: 'status', summary: 'whether this device is trusted, as named tests (PASS/FAIL/SKIPPED); --check also asks the network', load: async () => (await import('./status.js')).statusCommand },
  { name: 'posture', summary: 'device posture: disk encryption, firewall, screen lock, updates, Secure Boot, endpoint protection', load: async () => (await import('./posture.js')).postureCommand },
  { name: 'diagnose', summary: 'probe everything device trust depends on and say what is broken and what to do', load: async () => (await import('./diagnose.js')).diagnoseCommand },
  { name: 'events', summary: "show the agent's event log, filtered by time, ID, level or text", load: async () => (await import('./events.js')).eventsCommand },
  { name: 'proxy-check', summary: "for each server the agent uses: which proxy rule chose which route, whether it works, each step's time", load: async () => (await import('./proxy-check.js')).proxyCheckCommand },
  { name: 'browser-setup', summary: 'write, remove (uninstall) or print the browser policy that makes browsers present the certificate', load: async () => (await import('./browser-setup.js')).browserSetupCommand },
  { name: 'remove-certificate', summary: "remove this user's device-trust certificate and key (uninstall, on request)", load: async () => (await import('./remove-certificate.js')).removeCertificateCommand },
  { name: 'support-bundle', summary: 'write a zip for the help desk: configuration, state, diagnostics, events, certificate metadata (secrets redacted)', load: async () => (await import('./support-bundle.js')).supportBundleCommand },
  { name: 'admin-token', summary: 'store, check or remove the org admin API token (OS keyring) used to read AD/IWA agent status', load: async () => (await import('./admin-token.js')).adminTokenCommand },
  { name: 'metrics', summary: 'print the Prometheus metrics the agent writes for node_exporter\'s textfile collector', load: async () => (await import('./metrics.js')).metricsCommand },
  { name: 'schedule', summary: "the agent's named state and its next passes, and why (--json for tools)", load: async () => (await import('./schedule.js')).scheduleCommand },
  { name: 'daemon', summary: 'the long-running agent: passes at logon, daily, at the renewal moment, on retry and on network change', load: async () => (await import('./daemon.js')).daemonCommand },
  { name: 'install', summary: 'register the agent with the OS (logon, hourly, network change) and run the install-time pass', load: async () => (await import('./install.js')).installCommand },
  { name: 'uninstall', summary: 'unregister the agent from the OS and stop its daemon; --purge also removes its certificate and state', load: async () => (await import('./uninstall.js')).uninstallCommand },
];
