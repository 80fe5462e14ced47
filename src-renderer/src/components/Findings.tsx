import type { Finding } from '../../../src-main/ipc/contract.js';

const LABEL = { critical: 'Critical', warning: 'Warning', info: 'Info' } as const;

export function Findings({ findings }: { findings: Finding[] | undefined }) {
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
