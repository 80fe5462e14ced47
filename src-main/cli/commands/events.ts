import { AgentError, ExitCode } from '../../base/errors.js';
import { EventLog, LEVELS, parseIds, parseSince, type EventLevel, type EventQuery } from '../../core/events.js';
import type { Command } from '../command.js';

export const eventsCommand: Command = {
  name: 'events',
  summary: 'show the agent\'s event log, filtered by time, ID, level or text',
  usage: `device-trust-agent events [--since T] [--id IDS] [--level L] [--grep TEXT] [--limit N] [--json]
  --since T      only events since T: an ISO date/time, or 30m, 12h, 7d ago
  --id IDS       only these event IDs: 1000 · 1000,2001 · 2000-2099 (catalogue: docs/OPERATORS.md)
  --level L      this level and worse: info, warning, error
  --grep TEXT    only events whose title, message or data contain TEXT (any case)
  --limit N      the newest N matches (default 200; 0 for all)`,
  options: {
    since: { type: 'string' },
    id: { type: 'string' },
    level: { type: 'string' },
    grep: { type: 'string' },
    limit: { type: 'string' },
  },
  async run(ctx) {
    const v = ctx.values;
    const q: EventQuery = {};
    if (typeof v.since === 'string') {
      const since = parseSince(v.since);
      if (!since) throw new AgentError('config', 'USAGE', `--since must be a date/time or an age like 30m, 12h, 7d; not "${v.since}".`);
      q.since = since;
    }
    if (typeof v.id === 'string') {
      const ids = parseIds(v.id);
      if (!ids) throw new AgentError('config', 'USAGE', `--id must be IDs or ranges like 1000,2000-2099; not "${v.id}".`);
      q.ids = ids;
    }
    if (typeof v.level === 'string') {
      if (!(LEVELS as readonly string[]).includes(v.level)) throw new AgentError('config', 'USAGE', `--level must be one of ${LEVELS.join(', ')}; not "${v.level}".`);
      q.minLevel = v.level as EventLevel;
    }
    if (typeof v.grep === 'string') q.text = v.grep;
    const limit = typeof v.limit === 'string' ? Number(v.limit) : 200;
    if (!Number.isInteger(limit) || limit < 0) throw new AgentError('config', 'USAGE', `--limit must be a whole number, not "${String(v.limit)}".`);
    if (limit > 0) q.limit = limit;
    const log = new EventLog(ctx.config().config.stateDir, undefined, { sinks: [] });
    const events = log.query(q);
    if (ctx.json) ctx.io.out(JSON.stringify(events, null, 2));
    else if (events.length === 0) ctx.io.out('No matching events.');
    else {
      for (const e of events) {
        ctx.io.out(`${e.time}  ${e.id}  ${e.level.padEnd(7)} ${e.task ? `[${e.task}] ` : ''}${e.title}: ${e.message}`);
      }
    }
    return ExitCode.OK;
  },
};
