import type { ParseArgsConfig } from 'node:util';
import type { LoadedConfig } from '../core/config.js';
import type { AgentContext } from '../core/context.js';
import type { Platform } from '../platform/types.js';

export interface Io {
  out: (s: string) => void;
  err: (s: string) => void;
  env: NodeJS.ProcessEnv;
}

export type OptionSpec = NonNullable<ParseArgsConfig['options']>;
export type OptionValues = Record<string, string | boolean | string[] | boolean[] | undefined>;

export interface CommandContext {
  /** Configuration merged from every source (loaded lazily: `help` must work without a valid config). */
  config(): LoadedConfig;
  /** The configuration read again from every source (a long-running daemon picks up changes). */
  freshConfig(): LoadedConfig;
  /** This machine's platform for the loaded configuration (the context's factory, applied). */
  platform(): Platform;
  /** What this process is wired with (the CLI is a composition root): handed down to the core. */
  context: AgentContext;
  values: OptionValues;
  /** Settings given on this command line (Name=Value and the setting options), as loadConfig takes them. */
  settings: Record<string, unknown>;
  /** Positional arguments after the command name, minus Name=Value settings. */
  args: string[];
  io: Io;
  /** This process's command line after the program (the daemon starts its pass children with it). */
  argv: readonly string[];
  debug: boolean;
  json: boolean;
}

/** One sub-command of `device-trust-agent`: registered in commands/index.ts. */
export interface Command {
  name: string;
  /** One line for the command list in `help`. */
  summary: string;
  /** Usage lines and option help shown by `help <command>`. */
  usage: string;
  options?: OptionSpec;
  /** Whether the command takes positional arguments (e.g. a file name); others refuse them. */
  takesArgs?: boolean;
  run(ctx: CommandContext): Promise<number>;
}
