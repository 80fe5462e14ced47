import type { Command } from '../command.js';
import { adminTokenCommand } from './admin-token.js';
import { daemonCommand } from './daemon.js';
import { diagnoseCommand } from './diagnose.js';
import { eventsCommand } from './events.js';
import { installCommand } from './install.js';
import { postureCommand } from './posture.js';
import { proxyCheckCommand } from './proxy-check.js';
import { browserSetupCommand } from './browser-setup.js';
import { removeCertificateCommand } from './remove-certificate.js';
import { runCommand } from './run.js';
import { scheduleCommand } from './schedule.js';
import { statusCommand } from './status.js';
import { supportBundleCommand } from './support-bundle.js';
import { uninstallCommand } from './uninstall.js';

/** Every sub-command, in the order `help` lists them. Add a command: one file in this folder, one line here. */
export const COMMANDS: Command[] = [
  runCommand, statusCommand, postureCommand, diagnoseCommand, eventsCommand, proxyCheckCommand, browserSetupCommand, removeCertificateCommand,
  supportBundleCommand, adminTokenCommand,
  scheduleCommand, daemonCommand, installCommand, uninstallCommand,
];
