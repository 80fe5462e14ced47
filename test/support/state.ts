import fs from 'node:fs';
import path from 'node:path';

/** Where a profile's state lives: its state directory. */
type HasState = { stateDir: string };

/** The agent's state.json in a profile's state directory, as text (for checks that no secret is in it). */
export function stateText(p: HasState): string {
  return fs.readFileSync(path.join(p.stateDir, 'state.json'), 'utf8');
}

/** The agent's state.json in a profile's state directory, parsed (what the tests assert on). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function readState(p: HasState): any {
  return JSON.parse(stateText(p));
}

/** A profile's event log (events.jsonl) as text, one JSON event a line. A log that is not there fails the test. */
export function eventsText(p: HasState): string {
  return fs.readFileSync(path.join(p.stateDir, 'events.jsonl'), 'utf8');
}

/** Every event of a profile's event log (events.jsonl), parsed, oldest first. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function readEvents(p: HasState): any[] {
  return eventsText(p).split('\n').filter(Boolean).map((l) => JSON.parse(l));
}
