import type { StatusView } from '../../../src-main/ipc/contract.js';
import { formatDate, formatDateTime, relative } from '../format.js';
import { TrustIcon } from './StateIcon.js';

interface Props {
  status: StatusView | undefined;
  busy: boolean;
  onRenew: () => void;
  onForceRenewal: () => void;
}

/** The line under the headline, in plain words; the agent's own summary where it says more. */
function summaryOf(status: StatusView, busy: boolean): string {
  if (status.trust === 'renewing' || (busy && status.busy !== 'diagnostics' && status.busy !== null)) {
    return status.certificate ? 'The current certificate stays in use until the new one is installed.' : 'Enrolling needs the corporate network or VPN.';
  }
  if (status.state === 'ENROLLED') return 'Apps that require a trusted device will accept it. The certificate renews on its own before it expires.';
  return status.summary;
}

/** Answers "is this device trusted?" at a glance, with the facts behind the answer and the two actions. */
export function StatusHeader({ status, busy, onRenew, onForceRenewal }: Props) {
  if (!status) {
    return (
      <section className="status-header loading" aria-labelledby="status-headline" aria-busy="true">
        <h1 id="status-headline">Checking this device…</h1>
      </section>
    );
  }
  const c = status.certificate;
  const expiry = c ? (c.daysToExpiry < 0 ? `expired ${relative(c.notAfter)}` : `in ${c.daysToExpiry} day${c.daysToExpiry === 1 ? '' : 's'}`) : undefined;
  const renewal = status.plannedRenewal
    ? Date.parse(status.plannedRenewal) <= Date.now()
      ? 'due now'
      : `from ${formatDate(status.plannedRenewal)} (${relative(status.plannedRenewal)})`
    : undefined;
  return (
    <section className={`status-header trust-${status.trust}`} aria-labelledby="status-headline">
      <div className="status-main">
        <TrustIcon trust={status.trust} />
        <div>
          <h1 id="status-headline">{status.headline}</h1>
          <p className="summary">{summaryOf(status, busy)}</p>
        </div>
      </div>
      <dl className="facts">
        <div>
          <dt>Device</dt>
          <dd>
            {status.deviceName} <span className="muted mono">{status.deviceId}</span>
          </dd>
        </div>
        <div>
          <dt>Certificate subject</dt>
          <dd>{c ? c.subject : 'No certificate'}</dd>
        </div>
        <div>
          <dt>Issuer</dt>
          <dd>{c ? c.issuerCN || c.issuer : '–'}</dd>
        </div>
        <div>
          <dt>Serial number</dt>
          <dd className="mono" data-testid="serial">{c ? c.serialNumber : '–'}</dd>
        </div>
        <div>
          <dt>Expires</dt>
          <dd>{c ? `${formatDate(c.notAfter)} (${expiry})` : '–'}</dd>
        </div>
        {status.keyProtection && (
          <div>
            <dt>Key protection</dt>
            <dd data-testid="key-protection" title={status.keyProtection.attestation ? `${status.keyProtection.reason}; ${status.keyProtection.attestation}` : status.keyProtection.reason}>
              {status.keyProtection.protection === 'tpm' ? (status.keyProtection.attested ? 'TPM (attested)' : 'TPM') : status.keyProtection.protection === 'software' ? 'Software token' : 'Key file'}{' '}
              <span className="muted">({status.keyProtection.reason}{status.keyProtection.protection === 'tpm' && status.keyProtection.attestation ? `; ${status.keyProtection.attested ? 'attested' : 'not attested'}: ${status.keyProtection.attestation}` : ''})</span>
            </dd>
          </div>
        )}
        <div>
          <dt>Renewal planned</dt>
          <dd>{renewal ?? '–'}</dd>
        </div>
        {status.lastRun && (
          <div>
            <dt>Last run</dt>
            <dd>
              {formatDateTime(status.lastRun.at)}: {status.lastRun.outcome === 'failed' ? `failed (${status.lastRun.code ?? 'error'})` : status.lastRun.outcome.replace(/-/g, ' ')}
            </dd>
          </div>
        )}
      </dl>
      {status.tests && <DoctorTests status={status} />}
      <div className="actions">
        <button type="button" className="primary" onClick={onRenew} disabled={busy || status.state === 'NOT_CONFIGURED'}>
          Renew now
        </button>
        <button type="button" onClick={onForceRenewal} disabled={busy || status.state === 'NOT_CONFIGURED'}>
          Force renewal…
        </button>
      </div>
    </section>
  );
}

/** The same named tests as `device-trust-agent status`: one chip each, the evidence on hover and for screen readers. */
function DoctorTests({ status }: { status: StatusView }) {
  const tests = status.tests ?? [];
  const failed = tests.filter((t) => t.result === 'FAIL').length;
  const f = status.lastFailure;
  return (
    <div className="doctor" aria-label="Status tests">
      <p className="doctor-summary">
        Tests: {tests.filter((t) => t.result === 'PASS').length} passed, {failed} failed, {tests.filter((t) => t.result === 'SKIPPED').length} skipped
      </p>
      <ul className="doctor-tests">
        {tests.map((t) => (
          <li key={t.name} className={`test-${t.result.toLowerCase()}`} title={t.evidence} data-testid={`test-${t.name}`}>
            <span className="test-result">{t.result}</span> {t.title}
            <span className="visually-hidden">: {t.evidence}</span>
          </li>
        ))}
      </ul>
      {f && (
        <p className="doctor-failure" data-testid="last-failure">
          Last failure {formatDateTime(f.at)} ({f.task} task): phase {f.phase ?? 'unknown'}, code {f.clientCode ?? '–'}
          {f.serverCode ? `, server ${f.serverCode}` : ''}{f.httpStatus !== undefined ? ` (HTTP ${f.httpStatus})` : ''}; correlation ID{' '}
          <span className="mono">{f.correlationId ?? '–'}</span>
        </p>
      )}
    </div>
  );
}
