import { useCallback, useEffect, useState } from 'react';
import type { AdminTokenCheck, AdminTokenStatus } from '../../../src-main/ipc/contract.js';
import { api, ApiError, call } from '../api.js';

interface Props {
  /** Tells the app-wide live region what happened (screen readers announce it). */
  onAnnounce: (text: string) => void;
}

type Outcome = { kind: 'ok' | 'error'; text: string; remedy?: string | undefined };

/**
 * The org admin API token that lets diagnostics read the AD/IWA agents: entered, tested and removed here,
 * kept only in the app's secret store (the main process refuses a store that would be a plain file).
 */
export function Settings({ onAnnounce }: Props) {
  const [status, setStatus] = useState<AdminTokenStatus | undefined>();
  const [token, setToken] = useState('');
  const [busy, setBusy] = useState<'save' | 'test' | 'remove' | undefined>();
  const [outcome, setOutcome] = useState<Outcome | undefined>();

  const load = useCallback(async () => {
    try {
      setStatus(await call(api().getAdminToken({})));
    } catch (e) {
      setOutcome({ kind: 'error', text: (e as Error).message, remedy: e instanceof ApiError ? e.remedy : undefined });
    }
  }, []);
  useEffect(() => void load(), [load]);

  const act = async (what: 'save' | 'test' | 'remove') => {
    setBusy(what);
    setOutcome(undefined);
    try {
      let text: string;
      let kind: Outcome['kind'] = 'ok';
      if (what === 'save') {
        const s = await call(api().setAdminToken({ token }));
        setToken('');
        setStatus(s);
        text = `Token stored in the ${s.store} for ${s.org}. Diagnostics will now read the agents.`;
      } else if (what === 'test') {
        const r: AdminTokenCheck = await call(api().testAdminToken({}));
        kind = r.ok ? 'ok' : 'error';
        text = r.message;
      } else {
        const r = await call(api().removeAdminToken({}));
        text = r.removed ? 'Token removed.' : 'No token was stored.';
        await load();
      }
      setOutcome({ kind, text });
      onAnnounce(text);
    } catch (e) {
      const text = (e as Error).message;
      setOutcome({ kind: 'error', text, remedy: e instanceof ApiError ? e.remedy : undefined });
      onAnnounce(`Failed: ${text}`);
    } finally {
      setBusy(undefined);
    }
  };

  const unusable = Boolean(status?.problem) || status?.org === null;
  return (
    <section className="panel settings" aria-labelledby="settings-title">
      <div className="panel-head">
        <h1 id="settings-title" className="view-title">Settings</h1>
      </div>
      <h2 id="token-title">Admin API token</h2>
      <p className="muted" id="token-help">
        Diagnostics read the state of the org&apos;s AD and IWA agents with a read-only administrator&apos;s API token. It is kept in{' '}
        {status ? `the ${status.store}` : 'the operating system\u2019s secret store'}, never in a plain file, and is never shown again.
      </p>
      <p data-testid="token-state">
        {!status
          ? 'Checking…'
          : status.org === null
            ? 'No org is configured yet, so there is nothing to store a token for.'
            : status.stored
              ? `A token for ${status.org} is stored.`
              : `No token for ${status.org} is stored.`}
      </p>
      {status?.problem && (
        <p className="notice error inline" role="alert">
          {status.problem}
        </p>
      )}
      <form
        className="token-form"
        aria-labelledby="token-title"
        onSubmit={(e) => {
          e.preventDefault();
          void act('save');
        }}
      >
        <div className="field">
          <label htmlFor="admin-token">API token</label>
          <input
            id="admin-token"
            type="password"
            autoComplete="off"
            spellCheck={false}
            value={token}
            maxLength={4096}
            aria-describedby="token-help"
            disabled={unusable || busy !== undefined}
            onChange={(e) => setToken(e.target.value)}
          />
        </div>
        <div className="actions">
          <button type="submit" className="primary" disabled={unusable || !token.trim() || busy !== undefined}>
            {busy === 'save' ? 'Saving…' : status?.stored ? 'Replace token' : 'Save token'}
          </button>
          <button type="button" onClick={() => void act('test')} disabled={!status?.stored || busy !== undefined}>
            {busy === 'test' ? 'Testing…' : 'Test token'}
          </button>
          <button type="button" className="danger" onClick={() => void act('remove')} disabled={!status?.stored || busy !== undefined}>
            {busy === 'remove' ? 'Removing…' : 'Remove token'}
          </button>
        </div>
      </form>
      {outcome && (
        <div className={`notice ${outcome.kind} inline`} data-testid="token-outcome">
          <p>{outcome.text}</p>
          {outcome.remedy && (
            <p>
              <strong>What to do: </strong>
              {outcome.remedy}
            </p>
          )}
        </div>
      )}
    </section>
  );
}
