import { useEffect, useRef, useState } from 'react';
import type { DiagnosticsReport, TargetReport } from '../../../src-main/ipc/contract.js';
import { formatDateTime, formatMs, relative } from '../format.js';
import { Sparkline } from './Sparkline.js';
import { HealthBadge } from './StateIcon.js';

interface Props {
  report: DiagnosticsReport | null;
  running: boolean;
  onRun: () => void;
}

export function Reachability({ report, running, onRun }: Props) {
  const [selected, setSelected] = useState<string | null>(null);
  const target = report?.targets.find((t) => t.id === selected);
  return (
    <section className="panel" aria-labelledby="reach-title">
      <div className="panel-head">
        <h2 id="reach-title">Reachability</h2>
        <span className="muted">{report ? `Checked ${relative(report.at)} · took ${formatMs(report.durationMs)}` : 'Not checked yet'}</span>
        <button type="button" onClick={onRun} disabled={running}>
          {running ? 'Running diagnostics…' : 'Run diagnostics'}
        </button>
      </div>
      {report ? (
        <ul className="cards" aria-label="Targets">
          {report.targets.map((t) => (
            <li key={t.id}>
              <TargetCard target={t} onOpen={() => setSelected(t.id)} />
            </li>
          ))}
        </ul>
      ) : (
        <p className="muted">Diagnostics check the org, the IWA web apps, the AD agents, the domain controllers, the proxy path and the mTLS endpoint.</p>
      )}
      <TargetDetail target={target} onClose={() => setSelected(null)} />
    </section>
  );
}

function TargetCard({ target: t, onOpen }: { target: TargetReport; onOpen: () => void }) {
  return (
    <button type="button" className={`card health-${t.health.toLowerCase()}`} onClick={onOpen} data-target={t.id} aria-haspopup="dialog">
      <span className="card-head">
        <span className="card-name">{t.name}</span>
        <HealthBadge health={t.health} />
      </span>
      <span className="card-summary">{t.summary}</span>
      <span className="card-foot">
        <span>
          {t.lastCheck ? `Last check ${formatDateTime(t.lastCheck)}` : 'Not checked'}
          {t.latencyMs !== undefined ? ` · ${formatMs(t.latencyMs)}` : ''}
        </span>
        {t.history.length > 0 && <Sparkline history={t.history} />}
      </span>
      <span className="visually-hidden">Show stage-by-stage detail</span>
    </button>
  );
}

function TargetDetail({ target, onClose }: { target: TargetReport | undefined; onClose: () => void }) {
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const d = ref.current;
    if (!d) return;
    if (target && !d.open) d.showModal();
    if (!target && d.open) d.close();
  }, [target]);
  return (
    <dialog ref={ref} className="detail" aria-labelledby="detail-title" onCancel={(e) => { e.preventDefault(); onClose(); }}>
      {target && (
        <>
          <div className="detail-head">
            <h2 id="detail-title">{target.name}</h2>
            <HealthBadge health={target.health} />
          </div>
          {target.url && <p className="mono small">{target.url}</p>}
          {target.healthReason && target.healthSince && (
            <p className="small muted">
              {target.health} since {formatDateTime(target.healthSince)}: {target.healthReason.replace(/\.+$/, '')}. A target goes OFFLINE after repeated failed checks and ONLINE
              again only after repeated good ones and a cool-down.
            </p>
          )}
          <p>{target.summary}</p>
          {target.explanation && <p className="explanation">{target.explanation}</p>}
          <h3>Stages</h3>
          {target.stages.length ? (
            <table className="stages">
              <thead>
                <tr>
                  <th scope="col">Stage</th>
                  <th scope="col">Result</th>
                  <th scope="col">Time</th>
                  <th scope="col">Detail</th>
                </tr>
              </thead>
              <tbody>
                {target.stages.map((s, i) => (
                  <tr key={`${s.name}-${i}`}>
                    <th scope="row">{s.name}</th>
                    <td className={s.ok === null ? 'muted' : s.ok ? 'ok' : 'fail'}>{s.ok === null ? 'not run' : s.ok ? 'ok' : 'failed'}</td>
                    <td>{formatMs(s.ms)}</td>
                    <td>{s.detail}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          ) : (
            <p className="muted">No stages: this target was not checked.</p>
          )}
          {target.history.length > 0 && (
            <>
              <h3>History</h3>
              <Sparkline history={target.history} width={360} height={48} />
            </>
          )}
          <div className="dialog-actions">
            <button type="button" onClick={onClose} autoFocus>
              Close
            </button>
          </div>
        </>
      )}
    </dialog>
  );
}
