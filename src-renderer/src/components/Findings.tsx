import type { Finding } from '../../../src-main/ipc/contract.js';

const LABEL = { critical: 'Critical', warning: 'Warning', info: 'Info' } as const;

/** Findings a person can fix from the dashboard itself: the admin API token lives in Settings. */
const FIXED_IN_SETTINGS = new Set(['NO_ADMIN_TOKEN', 'ADMIN_TOKEN_REJECTED', 'ADMIN_TOKEN_FORBIDDEN']);

export function Findings({ findings, onOpenSettings }: { findings: Finding[] | undefined; onOpenSettings: () => void }) {
  return (
    <section className="panel" aria-labelledby="findings-title">
      <div className="panel-head">
        <h2 id="findings-title">Findings</h2>
      </div>
      {!findings ? (
        <p className="muted">Run diagnostics to see what, if anything, stands between this device and trust.</p>
      ) : findings.length === 0 ? (
        <p className="all-good">Nothing found: every check that ran is fine.</p>
      ) : (
        <ul className="findings">
          {findings.map((f) => (
            <li key={f.id} className={`finding sev-${f.severity}`} data-finding={f.id}>
              <span className={`badge sev-${f.severity}`}>{LABEL[f.severity]}</span>
              <div>
                <h3>{f.title}</h3>
                <p>
                  <strong>Why: </strong>
                  {f.cause}
                </p>
                <p>
                  <strong>What to do: </strong>
                  {f.remedy}
                </p>
                {FIXED_IN_SETTINGS.has(f.id) && (
                  <p>
                    <button type="button" onClick={onOpenSettings}>
                      Enter the admin token…
                    </button>
                  </p>
                )}
                {f.evidence && (
                  <details>
                    <summary>Evidence</summary>
                    <p className="small">{f.evidence}</p>
                  </details>
                )}
              </div>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
