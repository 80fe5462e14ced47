import type { Health, TrustState } from '../../../src-main/ipc/contract.js';

/** Shapes as well as colours, so the state reads without colour vision. */
export function TrustIcon({ trust, size = 48 }: { trust: TrustState; size?: number }) {
  return (
    <svg className={`trust-icon trust-${trust}`} width={size} height={size} viewBox="0 0 48 48" aria-hidden="true" focusable="false">
      {trust === 'attention' ? <path d="M24 4 L45 42 H3 Z" className="shape" /> : <circle cx="24" cy="24" r="21" className="shape" />}
      {trust === 'trusted' && <path d="M14 25 l7 7 l14 -15" className="mark" />}
      {trust === 'renewing' && <path d="M33 17 a11 11 0 1 0 2 11 M33 10 v8 h-8" className="mark" />}
      {trust === 'attention' && <path d="M24 17 v12 M24 34 v2" className="mark" />}
      {trust === 'not-trusted' && <path d="M16 16 l16 16 M32 16 l-16 16" className="mark" />}
    </svg>
  );
}

export function HealthBadge({ health }: { health: Health }) {
  const symbol = { ONLINE: '●', DEGRADED: '▲', OFFLINE: '✕', UNKNOWN: '?' }[health];
  return (
    <span className={`badge health-${health.toLowerCase()}`}>
      <span aria-hidden="true">{symbol} </span>
      {health}
    </span>
  );
}
