import type { HistoryPoint } from '../../../src-main/ipc/contract.js';

/**
 * The last checks of one target as bars: height is latency (relative to the slowest), a failed check is a
 * full-height bar in the failure colour. Described in words for screen readers.
 */
export function Sparkline({ history, width = 120, height = 28 }: { history: HistoryPoint[]; width?: number; height?: number }) {
  const n = 20;
  const points = history.slice(-n);
  const max = Math.max(1, ...points.map((p) => p.ms ?? 0));
  const bar = width / n;
  const fails = points.filter((p) => !p.ok).length;
  const label = points.length ? `Last ${points.length} check${points.length === 1 ? '' : 's'}: ${points.length - fails} answered, ${fails} failed` : 'No checks yet';
  return (
    <svg className="sparkline" width={width} height={height} viewBox={`0 0 ${width} ${height}`} role="img" aria-label={label}>
      <line x1="0" y1={height - 0.5} x2={width} y2={height - 0.5} className="axis" />
      {points.map((p, i) => {
        const h = !p.ok ? height - 2 : p.ms === undefined ? (height - 2) * 0.4 : Math.max(3, (p.ms / max) * (height - 2));
        return <rect key={`${p.at}-${i}`} x={(n - points.length + i) * bar + 1} y={height - 1 - h} width={Math.max(1, bar - 2)} height={h} className={p.ok ? 'ok' : 'fail'} />;
      })}
    </svg>
  );
}
