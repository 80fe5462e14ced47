import fs from 'node:fs';
import path from 'node:path';

/** The agent's state.json in a profile's state directory, parsed (what the tests assert on). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function readState(p: { stateDir: string }): any {
  return JSON.parse(fs.readFileSync(path.join(p.stateDir, 'state.json'), 'utf8'));
}

/** Every event of a profile's event log (events.jsonl), parsed, oldest first. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function readEvents(p: { stateDir: string }): any[] {
  const file = path.join(p.stateDir, 'events.jsonl');
  if (!fs.existsSync(file)) return [];
  return fs.readFileSync(file, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
}
