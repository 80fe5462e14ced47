import fs from 'node:fs';
import path from 'node:path';
import { AgentError } from '../base/errors.js';
import type { ManagedConfigReader, ManagedSource } from './managed-config.js';

/** Reads a file that must hold one JSON object, with errors that name the file. */
export function readJsonObjectFile(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new AgentError('config', 'CONFIG_UNREADABLE', `Cannot read the configuration file ${file}: ${(e as Error).message}.`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new AgentError('config', 'CONFIG_INVALID', `The configuration file ${file} is not valid JSON: ${(e as Error).message}.`,
      'Fix the file (it must be one JSON object) or remove it.');
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new AgentError('config', 'CONFIG_INVALID', `The configuration file ${file} must hold one JSON object.`);
  }
  return parsed as Record<string, unknown>;
}

/** Linux: every `*.json` in the managed directory (default /etc/device-trust-agent), in name order; later files win. */
export class LinuxManagedConfig implements ManagedConfigReader {
  readonly description: string;

  constructor(private readonly dir: string) {
    this.description = `${dir}/*.json`;
  }

  read(): ManagedSource[] {
    let names: string[];
    try {
      names = fs.readdirSync(this.dir).filter((n) => n.endsWith('.json')).sort();
    } catch {
      return [];
    }
    return names.map((n) => {
      const file = path.join(this.dir, n);
      return { origin: file, values: readJsonObjectFile(file) };
    });
  }
}
