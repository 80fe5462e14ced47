import { useCallback, useEffect, useRef, useState } from 'react';
import type { Activity, DiagnosticsReport, StatusView, UiEvent, View } from '../../src-main/ipc/contract.js';
import { api, ApiError, call } from './api.js';
import { EventLog } from './components/EventLog.js';
import { Findings } from './components/Findings.js';
import { Posture } from './components/Posture.js';
import { ForceRenewalDialog } from './components/ForceRenewalDialog.js';
import { Settings } from './components/Settings.js';
import { Reachability } from './components/Reachability.js';
import { StatusHeader } from './components/StatusHeader.js';

const ACTIVITY_LABEL: Record<Activity, string> = {
  renew: 'Renewing the certificate',
  forceRenewal: 'Force renewal: enrolling a new certificate',
  diagnostics: 'Running diagnostics',
  scheduled: 'Scheduled run',
};

/** What is running now, by activity (a renewal and diagnostics may run side by side). */
type Progress = Partial<Record<Activity, { step?: string | undefined }>>;
const RUNS: Activity[] = ['forceRenewal', 'renew', 'scheduled'];

interface Notice {
  kind: 'ok' | 'error';
  text: string;
  remedy?: string | undefined;
}

const TABS: { view: View; label: string }[] = [
  { view: 'overview', label: 'Overview' },
  { view: 'events', label: 'Event log' },
  { view: 'settings', label: 'Settings' },
];

export function App() {
  const [view, setView] = useState<View>('overview');
  const [status, setStatus] = useState<StatusView | undefined>();
  const [report, setReport] = useState<DiagnosticsReport | null>(null);
  const [progress, setProgress] = useState<Progress>({});
  const [notice, setNotice] = useState<Notice | null>(null);
  const [confirming, setConfirming] = useState(false);
  const [eventsKey, setEventsKey] = useState(0);
  // One persistent live region: screen readers announce what finished (runs, diagnostics, settings), which
  // they would miss in a region that appears together with its text.
  const [announcement, setAnnouncement] = useState('');
  const tabRefs = useRef<(HTMLButtonElement | null)[]>([]);

  const showError = (e: unknown) => {
    setNotice({ kind: 'error', text: (e as Error).message, remedy: e instanceof ApiError ? e.remedy : undefined });
    setAnnouncement(`Error: ${(e as Error).message}`);
  };

  const refresh = useCallback(async () => {
    try {
      setStatus(await call(api().getStatus({})));
    } catch (e) {
      showError(e);
    }
  }, []);

  const runDiagnostics = useCallback(async () => {
    try {
      const r = await call(api().runDiagnostics({}));
      setReport(r);
      const problems = r.findings.filter((f) => f.severity !== 'info').length;
      setAnnouncement(`Diagnostics finished: ${r.targets.length} targets checked, ${problems ? `${problems} problem${problems === 1 ? '' : 's'} found` : 'no problems found'}.`);
    } catch (e) {
      showError(e);
    }
  }, []);

  useEffect(() => {
    void refresh();
    call(api().getDiagnostics({})).then((last) => (last ? setReport(last) : runDiagnostics()), showError);
    const handle = (e: UiEvent) => {
      switch (e.type) {
        case 'progress':
          if (e.phase === 'start' || e.phase === 'step') setProgress((p) => ({ ...p, [e.activity]: { step: e.step } }));
          else {
            setProgress(({ [e.activity]: _done, ...rest }) => rest);
            setEventsKey((k) => k + 1);
          }
          break;
        case 'diagnostics-updated':
          call(api().getDiagnostics({})).then((last) => last && setReport(last), showError);
          break;
        case 'status-changed':
          void refresh();
          break;
        case 'navigate':
          setView(e.view);
          break;
        case 'confirm-force-renewal':
          setView('overview');
          setConfirming(true);
          break;
      }
    };
    const off = api().onEvent(handle);
    // Listening now: main hands over what was asked for while the page loaded (e.g. a --forceRenewal launch).
    call(api().ready({})).then(({ pending }) => pending.forEach(handle), showError);
    return off;
  }, [refresh, runDiagnostics]);

  const running = RUNS.find((a) => progress[a]) ?? (status?.busy && status.busy !== 'diagnostics' ? status.busy : undefined);
  const busy = running !== undefined;
  const shown: Activity | undefined = running ?? (progress.diagnostics ? 'diagnostics' : undefined);

  const renew = async (force: boolean) => {
    setConfirming(false);
    setNotice(null);
    try {
      const r = force ? await call(api().forceRenewal({ confirmed: true })) : await call(api().renewNow({}));
      setNotice({ kind: 'ok', text: r.message });
      setAnnouncement(r.message);
      await refresh();
      void runDiagnostics();
    } catch (e) {
      showError(e);
      await refresh();
    }
  };

  const onTabKey = (e: React.KeyboardEvent, i: number) => {
    const next = e.key === 'ArrowRight' ? (i + 1) % TABS.length : e.key === 'ArrowLeft' ? (i + TABS.length - 1) % TABS.length : e.key === 'Home' ? 0 : e.key === 'End' ? TABS.length - 1 : -1;
    if (next < 0) return;
    e.preventDefault();
    setView(TABS[next]!.view);
    tabRefs.current[next]?.focus();
  };

  return (
    <div className="app">
      <header className="app-bar">
        <span className="brand">Device Trust Agent</span>
        <div role="tablist" aria-label="Views">
          {TABS.map((t, i) => (
            <button
              key={t.view}
              ref={(el) => {
                tabRefs.current[i] = el;
              }}
              role="tab"
              id={`tab-${t.view}`}
              aria-selected={view === t.view}
              aria-controls={`panel-${t.view}`}
              tabIndex={view === t.view ? 0 : -1}
              onClick={() => setView(t.view)}
              onKeyDown={(e) => onTabKey(e, i)}
            >
              {t.label}
            </button>
          ))}
        </div>
        {status?.orgUrl && <span className="org muted small">{status.orgUrl}</span>}
      </header>

      <div className="visually-hidden" aria-live="polite" aria-atomic="true" data-testid="announcer">
        {announcement}
      </div>
      <div className="progress-slot" aria-live="polite">
        {shown && (
          <div className="progress">
            <div className="bar" role="progressbar" aria-label={ACTIVITY_LABEL[shown]} aria-valuetext={progress[shown]?.step ?? 'working'} />
            <span>
              {ACTIVITY_LABEL[shown]}
              {progress[shown]?.step ? `: ${progress[shown]!.step}` : '…'}
            </span>
          </div>
        )}
      </div>

      {notice && (
        <div className={`notice ${notice.kind}`} role={notice.kind === 'error' ? 'alert' : 'status'}>
          <div>
            <p>{notice.text}</p>
            {notice.remedy && (
              <p>
                <strong>What to do: </strong>
                {notice.remedy}
              </p>
            )}
          </div>
          <button type="button" className="plain" aria-label="Dismiss message" onClick={() => setNotice(null)}>
            ✕
          </button>
        </div>
      )}

      <main>
        <div role="tabpanel" id="panel-overview" aria-labelledby="tab-overview" hidden={view !== 'overview'}>
          <StatusHeader status={status} busy={busy} onRenew={() => void renew(false)} onForceRenewal={() => setConfirming(true)} />
          <Reachability report={report} running={Boolean(progress.diagnostics)} onRun={() => void runDiagnostics()} />
          <Findings findings={report?.findings} onOpenSettings={() => setView('settings')} />
          <Posture />
        </div>
        <div role="tabpanel" id="panel-events" aria-labelledby="tab-events" hidden={view !== 'events'}>
          {view === 'events' && <EventLog refreshKey={eventsKey} onNotice={(text) => { setNotice({ kind: 'ok', text }); setAnnouncement(text); }} />}
        </div>
        <div role="tabpanel" id="panel-settings" aria-labelledby="tab-settings" hidden={view !== 'settings'}>
          {view === 'settings' && <Settings onAnnounce={setAnnouncement} />}
        </div>
      </main>
      <ForceRenewalDialog open={confirming} onCancel={() => setConfirming(false)} onConfirm={() => void renew(true)} />
    </div>
  );
}
