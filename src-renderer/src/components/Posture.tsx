import { useCallback, useEffect, useState } from 'react';
import type { PostureCheckView, PostureView } from '../../../src-main/ipc/contract.js';
import { api, call } from '../api.js';

const LABEL = { PASS: 'Pass', FAIL: 'Fail', UNKNOWN: 'Unknown' } as const;
const ORDER = { FAIL: 0, UNKNOWN: 1, PASS: 2 } as const;

function when(iso: string): string {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
}

/** What the org's device-assurance policy says, and what it means for access, in words. */
function OrgVerdict({ c }: { c: NonNullable<PostureView['compliance']> }) {
  if (c.status === 'not-evaluated') return null;
  if (c.status === 'compliant') return <p className="posture-org ok" data-compliance="compliant">Your organization&apos;s device-assurance policy is satisfied.</p>;
  const headline = c.mode === 'enforce' ? 'Access is blocked until this device meets your organization\'s policy.' : c.mode === 'grace' ? `Fix this${c.deadline ? ` by ${when(c.deadline)}` : ''} to keep access.` : 'Your organization sees that this device does not meet its policy (access is not affected yet).';
  return (
    <div className={`posture-org ${c.mode === 'report-only' ? 'warn' : 'bad'}`} data-compliance="non-compliant">
      <strong>{headline}</strong>
      <ul>
        {c.failing.map((f) => (
          <li key={f.check}>
            <code>{f.check}</code>: {f.reason}
          </li>
        ))}
      </ul>
    </div>
  );
}

function Check({ r }: { r: PostureCheckView }) {
  return (
    <li className={`posture-check st-${r.status.toLowerCase()}`} data-check={r.check}>
      <span className={`badge st-${r.status.toLowerCase()}`}>{LABEL[r.status]}</span>
      <div>
        <h3>
          {r.title}
          {r.source === 'device' && <span className="muted small"> · checked by the device task</span>}
        </h3>
        <p>{r.summary}</p>
        {r.why && (
          <p>
            <strong>Why unknown: </strong>
            {r.why}
          </p>
        )}
        {r.remedy && r.status !== 'PASS' && (
          <p className="posture-fix">
            <strong>How to fix: </strong>
            {r.remedy}
          </p>
        )}
        {r.evidence.length > 0 && (
          <details>
            <summary>Evidence</summary>
            <ul className="small">
              {r.evidence.map((e, i) => (
                <li key={i}>{e}</li>
              ))}
            </ul>
          </details>
        )}
      </div>
    </li>
  );
}

/** The Posture card: every check with what was found and how to fix it, and the org's verdict. */
export function Posture() {
  const [view, setView] = useState<PostureView | null | undefined>(undefined);
  const [running, setRunning] = useState(false);
  const [error, setError] = useState<string | undefined>();

  const run = useCallback(async () => {
    setRunning(true);
    setError(undefined);
    try {
      setView(await call(api().runPosture({})));
    } catch (e) {
      setError((e as Error).message);
    } finally {
      setRunning(false);
    }
  }, []);

  useEffect(() => {
    // Opening the dashboard only reads: a pass (with its events and report) runs on the button or in the daemon.
    call(api().getPosture({})).then(setView, (e: Error) => setError(e.message));
  }, []);

  const results = [...(view?.results ?? [])].sort((a, b) => ORDER[a.status] - ORDER[b.status]);
  const failing = results.filter((r) => r.status === 'FAIL').length;
  return (
    <section className="panel" aria-labelledby="posture-title" data-panel="posture">
      <div className="panel-head">
        <h2 id="posture-title">Device posture</h2>
        {view && (
          <span className="muted small">
            {failing ? `${failing} to fix` : 'nothing to fix'} · checked {when(view.at)}
          </span>
        )}
        <button type="button" onClick={() => void run()} disabled={running}>
          {running ? 'Checking…' : 'Check again'}
        </button>
      </div>
      {error && <p className="posture-error">{error}</p>}
      {view?.compliance && <OrgVerdict c={view.compliance} />}
      {view?.report && !view.report.ok && <p className="muted small">The last report to your organization was not delivered ({view.report.error}); it is sent again on the next check.</p>}
      {view === undefined && !error ? (
        <p className="muted">Reading the last check…</p>
      ) : view === null ? (
        <p className="muted">This device has not been checked yet. The agent checks it every 15 minutes; "Check again" checks it now.</p>
      ) : (
        <ul className="posture-checks">
          {results.map((r) => (
            <Check key={r.check} r={r} />
          ))}
        </ul>
      )}
    </section>
  );
}
