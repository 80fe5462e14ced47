import fs from 'node:fs';
import path from 'node:path';
import { readJsonObjectFile } from '../base/json-file.js';
export { readJsonObjectFile } from '../base/json-file.js';
import type { ManagedConfigReader, ManagedSource } from './managed-config.js';

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
