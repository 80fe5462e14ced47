import { useVirtualizer } from '@tanstack/react-virtual';
import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import type { EventPage, EventQuery, Level } from '../../../src-main/ipc/contract.js';
import { api, ApiError, call } from '../api.js';
import { formatEventTime } from '../format.js';

const LEVELS: Level[] = ['info', 'warning', 'error'];
const RANGES = [
  { value: 'all', label: 'All time', ms: 0 },
  { value: '1h', label: 'Last hour', ms: 3_600_000 },
  { value: '24h', label: 'Last 24 hours', ms: 86_400_000 },
  { value: '7d', label: 'Last 7 days', ms: 7 * 86_400_000 },
  { value: 'custom', label: 'Custom range', ms: 0 },
] as const;
type Range = (typeof RANGES)[number]['value'];

const ROW_HEIGHT = 34;
/** The sticky header row's height, inside the same scrolling grid. */
const HEADER_HEIGHT = 34;

/** datetime-local value (local time, no zone) → ISO, or undefined. */
function localToIso(v: string): string | undefined {
  if (!v) return undefined;
  const t = new Date(v);
  return Number.isNaN(t.getTime()) ? undefined : t.toISOString();
}

interface Props {
  /** Bumped when the log may have grown (a run finished), to re-query. */
  refreshKey: number;
  onNotice: (text: string) => void;
}

export function EventLog({ refreshKey, onNotice }: Props) {
  const [levels, setLevels] = useState<Level[]>([...LEVELS]);
  const [eventId, setEventId] = useState<string>('');
  const [range, setRange] = useState<Range>('all');
  const [from, setFrom] = useState('');
  const [to, setTo] = useState('');
  const [search, setSearch] = useState('');
  const [text, setText] = useState('');
  const [page, setPage] = useState<EventPage | undefined>();
  const [error, setError] = useState<string | undefined>();
  const [active, setActive] = useState(0);
  const scrollRef = useRef<HTMLDivElement>(null);

  // Search as you type, without a query per keystroke.
  useEffect(() => {
    const t = setTimeout(() => setText(search.trim()), 200);
    return () => clearTimeout(t);
  }, [search]);

  const query = useMemo<EventQuery>(() => {
    const q: EventQuery = {};
    if (levels.length < LEVELS.length) q.levels = levels;
    if (eventId) q.ids = [Number(eventId)];
    const r = RANGES.find((x) => x.value === range);
    if (r && r.ms) q.since = new Date(Date.now() - r.ms).toISOString();
    if (range === 'custom') {
      const since = localToIso(from);
      const until = localToIso(to);
      if (since) q.since = since;
      if (until) q.until = until;
    }
    if (text) q.text = text;
    return q;
  }, [levels, eventId, range, from, to, text]);

  useEffect(() => {
    let stale = false;
    call(api().queryEvents(query)).then(
      (p) => {
        if (stale) return;
        setPage(p);
        setError(undefined);
        setActive(0);
      },
      (e: Error) => !stale && setError(e.message),
    );
    return () => {
      stale = true;
    };
  }, [query, refreshKey]);

  const rows = page?.events ?? [];
  // The header row sits above the rows inside the scrolling grid: offset the rows by it and keep it clear when scrolling to one.
  const virtualizer = useVirtualizer({ count: rows.length, getScrollElement: () => scrollRef.current, estimateSize: () => ROW_HEIGHT, overscan: 12, scrollMargin: HEADER_HEIGHT, scrollPaddingStart: HEADER_HEIGHT });

  const toggleLevel = (l: Level) => setLevels((cur) => (cur.includes(l) ? cur.filter((x) => x !== l) : LEVELS.filter((x) => x === l || cur.includes(x))));

  const onKeyDown = useCallback(
    (e: React.KeyboardEvent) => {
      if (!rows.length) return;
      const move = { ArrowDown: 1, ArrowUp: -1, PageDown: 10, PageUp: -10 }[e.key];
      let next: number | undefined;
      if (move) next = Math.min(rows.length - 1, Math.max(0, active + move));
      else if (e.key === 'Home') next = 0;
      else if (e.key === 'End') next = rows.length - 1;
      if (next === undefined) return;
      e.preventDefault();
      setActive(next);
      virtualizer.scrollToIndex(next, { align: 'auto' });
    },
    [rows.length, active, virtualizer],
  );

  const doExport = async (format: 'jsonl' | 'csv') => {
    try {
      const r = await call(api().exportEvents({ query, format }));
      onNotice(r.savedTo ? `Exported ${r.count} event${r.count === 1 ? '' : 's'} to ${r.savedTo}` : 'Export cancelled.');
    } catch (e) {
      onNotice(`Export failed: ${(e as Error).message}${e instanceof ApiError && e.remedy ? ` ${e.remedy}` : ''}`);
    }
  };

  const selected = rows[active];
  const catalogue = page?.catalogue ?? [];

  return (
    <section className="panel events" aria-labelledby="events-title">
      <div className="panel-head">
        <h1 id="events-title" className="view-title">Event log</h1>
        <span className="muted" role="status" aria-live="polite" data-testid="event-count">
          {!page
            ? 'Loading…'
            : page.events.length === page.matched
              ? `Showing ${page.matched} of ${page.total} events`
              : `Showing the newest ${page.events.length} of ${page.matched} matching events (${page.total} in the log)`}
        </span>
      </div>
      <div className="filters" role="group" aria-label="Filters">
        <fieldset className="levels">
          <legend>Level</legend>
          <div className="level-row">
          {LEVELS.map((l) => (
            <label key={l} className={`level-toggle lvl-${l}`}>
              <input type="checkbox" checked={levels.includes(l)} onChange={() => toggleLevel(l)} />
              {l[0]!.toUpperCase() + l.slice(1)}
            </label>
          ))}
          </div>
        </fieldset>
        <div className="field">
          <label htmlFor="filter-id">Event ID</label>
          <select id="filter-id" value={eventId} onChange={(e) => setEventId(e.target.value)}>
            <option value="">All events</option>
            {catalogue.map((c) => (
              <option key={c.id} value={String(c.id)}>
                {c.id} — {c.title}
              </option>
            ))}
          </select>
        </div>
        <div className="field">
          <label htmlFor="filter-time">Time</label>
          <select id="filter-time" value={range} onChange={(e) => setRange(e.target.value as Range)}>
            {RANGES.map((r) => (
              <option key={r.value} value={r.value}>
                {r.label}
              </option>
            ))}
          </select>
        </div>
        {range === 'custom' && (
          <>
            <div className="field">
              <label htmlFor="filter-from">From</label>
              <input id="filter-from" type="datetime-local" value={from} onChange={(e) => setFrom(e.target.value)} />
            </div>
            <div className="field">
              <label htmlFor="filter-to">To</label>
              <input id="filter-to" type="datetime-local" value={to} onChange={(e) => setTo(e.target.value)} />
            </div>
          </>
        )}
        <div className="field search">
          <label htmlFor="filter-text">Search</label>
          <input id="filter-text" type="search" value={search} placeholder="Text, serial, ID…" onChange={(e) => setSearch(e.target.value)} />
        </div>
        <div className="export">
          <button type="button" onClick={() => void doExport('csv')} disabled={!page?.matched}>
            Export CSV
          </button>
          <button type="button" onClick={() => void doExport('jsonl')} disabled={!page?.matched}>
            Export JSON lines
          </button>
        </div>
      </div>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      {rows.length === 0 && page && <p className="empty">No events match these filters.</p>}
      {/* A grid (not a table): it owns the focus and names the active row with aria-activedescendant, so
          screen readers announce the row the arrow keys move to; it is also the scroll container, so the
          virtualised rows keep their place in one element that is reachable by keyboard. */}
      <div
        className="table"
        role="grid"
        ref={scrollRef}
        tabIndex={0}
        aria-label="Events (use the arrow keys, Page Up/Down, Home and End to move)"
        aria-rowcount={rows.length + 1}
        aria-colcount={4}
        aria-readonly="true"
        aria-activedescendant={rows.length ? `event-row-${active}` : undefined}
        onKeyDown={onKeyDown}
      >
        <div className="thead" role="rowgroup">
          <div className="row head" role="row" aria-rowindex={1}>
            <span role="columnheader" aria-colindex={1}>Time</span>
            <span role="columnheader" aria-colindex={2}>Level</span>
            <span role="columnheader" aria-colindex={3}>ID</span>
            <span role="columnheader" aria-colindex={4}>Event</span>
          </div>
        </div>
        <div className="tbody" role="rowgroup" style={{ height: virtualizer.getTotalSize() }}>
          {virtualizer.getVirtualItems().map((v) => {
            const e = rows[v.index]!;
            return (
              <div
                key={v.key}
                id={`event-row-${v.index}`}
                role="row"
                aria-rowindex={v.index + 2}
                aria-selected={v.index === active}
                className={`row lvl-${e.level}${v.index === active ? ' active' : ''}`}
                style={{ position: 'absolute', top: 0, left: 0, right: 0, height: ROW_HEIGHT, transform: `translateY(${v.start - HEADER_HEIGHT}px)` }}
                onClick={() => setActive(v.index)}
              >
                <span role="gridcell" aria-colindex={1} className="mono">{formatEventTime(e.time)}</span>
                <span role="gridcell" aria-colindex={2}>
                  <span className={`badge lvl-${e.level}`}>{e.level}</span>
                </span>
                <span role="gridcell" aria-colindex={3} className="mono">{e.id}</span>
                <span role="gridcell" aria-colindex={4} className="ellipsis" title={e.message}>
                  <strong>{e.title}</strong> — {e.message}
                </span>
              </div>
            );
          })}
        </div>
      </div>
      {selected && (
        <div className="event-detail" aria-live="polite">
          <h2 className="detail-title">
            {selected.id} · {selected.title}
          </h2>
          <p className="small muted">
            {formatEventTime(selected.time)} · {selected.level}
            {selected.task ? ` · ${selected.task} task` : ''}
          </p>
          <p>{selected.message}</p>
        </div>
      )}
    </section>
  );
}
