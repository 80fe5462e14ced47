import fs from 'node:fs';
import { AgentError } from './errors.js';

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
