import type { Command } from '../command.js';
import { daemonCommand } from './daemon.js';
import { installCommand } from './install.js';
import { runCommand } from './run.js';
import { scheduleCommand } from './schedule.js';
import { statusCommand } from './status.js';
import { uninstallCommand } from './uninstall.js';

/** Every sub-command, in the order `help` lists them. Add a command: one file in this folder, one line here. */
export const COMMANDS: Command[] = [runCommand, statusCommand, scheduleCommand, daemonCommand, installCommand, uninstallCommand];
