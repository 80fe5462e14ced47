import type { Command } from '../command.js';
import { browserSetupCommand } from './browser-setup.js';
import { removeCertificateCommand } from './remove-certificate.js';
import { runCommand } from './run.js';
import { statusCommand } from './status.js';

/** Every sub-command, in the order `help` lists them. Add a command: one file in this folder, one line here. */
export const COMMANDS: Command[] = [runCommand, statusCommand, browserSetupCommand, removeCertificateCommand];
