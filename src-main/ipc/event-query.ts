/**
 * The dashboard's event-log queries over the agent's own log (EventLog.read). When the event log gains its
 * own queries (issue 5), `queryEvents` delegates to them; the contract's shapes stay.
 */
import { EVENTS, type AgentEvent } from '../core/events.js';
import type { EventPage, EventQuery, EventView } from './contract.js';

const DEFAULT_LIMIT = 5000;

export const EVENT_CATALOGUE = Object.values(EVENTS).map((e) => ({ id: e.id, level: e.level, title: e.title })).sort((a, b) => a.id - b.id);

export function matches(e: AgentEvent, q: EventQuery): boolean {
  if (q.levels?.length && !q.levels.includes(e.level)) return false;
  if (q.ids?.length && !q.ids.includes(e.id)) return false;
  const t = Date.parse(e.time);
  if (q.since && !(t >= Date.parse(q.since))) return false;
  if (q.until && !(t <= Date.parse(q.until))) return false;
  if (q.text) {
    const needle = q.text.toLowerCase();
    const hay = `${e.id} ${e.title} ${e.message} ${e.task ?? ''}`.toLowerCase();
    if (!hay.includes(needle)) return false;
  }
  return true;
}

function view(e: AgentEvent): EventView {
  return { time: e.time, id: e.id, level: e.level, title: e.title, message: e.message, ...(e.task ? { task: e.task } : {}) };
}

/** Newest first, at most `limit`; `matched` counts every match, `total` every event in the log. */
export function queryEvents(all: AgentEvent[], q: EventQuery): EventPage {
  const hits = all.filter((e) => matches(e, q)).reverse();
  return { events: hits.slice(0, q.limit ?? DEFAULT_LIMIT).map(view), matched: hits.length, total: all.length, catalogue: EVENT_CATALOGUE };
}

function csvCell(v: string | number | undefined): string {
  const s = String(v ?? '');
  // A leading =,+,-,@ would be a formula in a spreadsheet: quote it as text.
  const safe = /^[=+\-@\t\r]/.test(s) ? `'${s}` : s;
  return /[",\n\r]/.test(safe) || safe !== s ? `"${safe.replace(/"/g, '""')}"` : safe;
}

/** Oldest first, as the log itself is kept. */
export function exportEvents(all: AgentEvent[], q: EventQuery, format: 'jsonl' | 'csv'): { content: string; count: number } {
  const hits = all.filter((e) => matches(e, q)).map(view);
  if (format === 'jsonl') return { content: hits.map((e) => JSON.stringify(e)).join('\n') + (hits.length ? '\n' : ''), count: hits.length };
  const rows = [['time', 'id', 'level', 'title', 'message', 'task'].join(',')];
  for (const e of hits) rows.push([e.time, e.id, e.level, e.title, e.message, e.task].map(csvCell).join(','));
  return { content: rows.join('\r\n') + '\r\n', count: hits.length };
}
