/**
 * The dashboard's view of a diagnostics run: the engine's probes (src-main/core/diagnostics) become cards
 * with the health model's state (hysteresis: DEGRADED first, OFFLINE after the failure threshold) and
 * history, plus the proxy path the resolver chose for the org; the engine's findings become the contract's.
 */
import type { TargetHealth } from '../core/diagnostics/health.js';
import type { DiagnoseReport, Finding as EngineFinding, ProbeResult } from '../core/diagnostics/types.js';
import type { RouteDecision } from '../core/proxy/types.js';
import { describeRoute } from '../core/proxy/types.js';
import type { Finding, Health, Stage, TargetKind, TargetReport } from './contract.js';

const HISTORY_POINTS = 30;

export const FAILOVER_EXPLAINED: Record<string, string> = {
  REDIRECT_TO_BACKUP:
    'Failover mode: redirect to a backup if the primary goes offline. The AD agent health-checks every IWA web app; when the primary stops answering, enrollment uses a backup, so an offline primary slows nothing down as long as one backup answers.',
  PRIMARY_ONLY:
    'Failover mode: primary only. Backups are never used and nobody health-checks the primary, so the org can still show a dead IWA web app as active; enrollment and sign-in wait until the primary answers again.',
  FIXED_URL:
    'Failover mode: only this URL. The org always sends devices to one IWA web app and does not health-check it, so the org can still show it as active while it is down; nothing fails over.',
};

const EXPLAINED: Partial<Record<TargetKind, string>> = {
  org: 'The identity provider: tells the agent where its IWA web apps, CA and mTLS endpoint are, and issues the certificate.',
  mtls: 'Where the identity provider asks browsers for the device certificate. The check presents this device\'s certificate, as a browser would.',
  crl: 'Says whether an administrator revoked this device\'s certificate.',
  'agent-pools': 'The org\'s AD agents connect it to the directory. While every agent is disconnected, users with delegated authentication can still sign in for up to 5 days after their last successful password sign-in (unless the password changed or the user was suspended or deactivated).',
  kdc: 'Kerberos tickets for the device and the user come from the domain controllers (port 88); without them the IWA web app cannot authenticate this device.',
  dc: 'The domain controllers, found through DNS SRV records; Kerberos and the directory depend on them.',
  kerberos: 'Whether a Kerberos ticket can be had for the IWA web app right now.',
  clock: 'Kerberos and SAML fail when this device\'s clock is more than 5 minutes off.',
  gateway: 'An access gateway in offline mode reports its authentication service\'s health ({"status":"HEALTHY"}).',
  proxy: 'How requests leave this device: an explicit proxy (HttpProxy=), a PAC file (HttpProxyPacLocation=), the environment or the system settings. A proxy that inspects TLS breaks the mutual-TLS handshake.',
};

/** Card titles in plain words. */
export function targetName(p: Pick<ProbeResult, 'id' | 'kind' | 'target'>): string {
  const backup = /^iwa:backup:(\d+)$/.exec(p.id);
  if (p.id === 'iwa:primary') return 'IWA web app (primary)';
  if (backup) return `IWA web app (backup ${backup[1]})`;
  switch (p.kind) {
    case 'org':
      return 'Org';
    case 'mtls':
      return 'mTLS endpoint';
    case 'crl':
      return 'Revocation list (CRL)';
    case 'agent-pools':
      return 'AD agents';
    case 'gateway':
      return 'Access gateway';
    case 'kerberos':
      return p.id === 'kerberos:device' ? 'Kerberos ticket (device)' : 'Kerberos ticket (user)';
    case 'kdc':
      return `KDC ${p.target}`;
    case 'dc':
      return p.id === 'dc:srv' ? 'Domain controllers (DNS SRV)' : `Domain controller ${p.target}`;
    case 'clock':
      return p.id === 'clock:org' ? 'Clock vs the org' : `Clock vs ${p.target.replace(/:123$/, '')}`;
    default:
      return p.target;
  }
}

function stagesOf(p: ProbeResult): Stage[] {
  return p.stages.map((s) => ({
    // "TCP 127.0.0.1:88" says its stage already; "GET /x" becomes "HTTP: GET /x".
    name: (s.label.toUpperCase().startsWith(s.name.toUpperCase()) ? s.label : `${s.name.toUpperCase()}: ${s.label}`).slice(0, 100),
    ok: s.status === 'ok' ? true : s.status === 'skipped' ? null : false,
    ms: Math.max(0, s.ms),
    detail: s.detail.slice(0, 2000),
  }));
}

/** One line for the card: the verdict a person cares about, from the probe's facts where there is one. */
function summaryOf(p: ProbeResult): string {
  if (p.status === 'skipped') {
    const why = typeof p.facts.skipped === 'string' ? p.facts.skipped : p.stages.find((s) => s.status !== 'ok')?.detail;
    return why ? `Not checked: ${why}.` : p.target === '(not configured)' ? 'Not configured.' : 'Not checked this time.';
  }
  if (p.status !== 'ok') return p.error?.message ?? `The check ${p.status === 'timeout' ? 'timed out' : 'failed'}.`;
  const f = p.facts;
  switch (p.kind) {
    case 'org': {
      const seen = f.interception as { issuer?: string; published?: boolean } | undefined;
      return `${String(f.orgName ?? 'The org')} answers${f.readOnly ? ' (read-only mode)' : ''}${seen?.issuer && seen.published === false ? `, but through TLS interception: its certificate is issued by "${seen.issuer}", not by a CA the org publishes` : ''}.`;
    }
    case 'mtls': {
      const seen = f.interception as { issuer?: string } | undefined;
      if (!f.trusted && f.reason === 'no-certificate' && seen?.issuer) {
        return `Answers, but saw no client certificate although one was presented: a TLS-intercepting proxy or security product (certificate issued by "${seen.issuer}") strips it.`;
      }
      return f.trusted ? `Trusts this device's certificate${f.deviceId ? ` (device ${String(f.deviceId)})` : ''}.` : `Answers, but does NOT trust this device's certificate (${String(f.reason ?? 'no reason given')}).`;
    }
    case 'crl':
      return f.revoked ? `Lists this device's certificate as REVOKED${f.revokedAt ? ` (at ${String(f.revokedAt)})` : ''}.` : 'Reachable; this device\'s certificate is not revoked.';
    case 'iwa': {
      const auth = f.auth as { ok?: boolean; principal?: string; message?: string } | undefined;
      const asks = f.negotiateOffered ? 'asks for Windows integrated authentication (Negotiate)' : `HTTP ${String(f.httpStatus ?? '?')}`;
      return auth?.ok ? `Answers and ${asks}; signed in${auth.principal ? ` as ${auth.principal}` : ''}.` : `Answers and ${asks}.`;
    }
    case 'clock': {
      if (typeof f.skewMs !== 'number') break;
      const sec = Math.round(Math.abs(f.skewMs) / 1000);
      // skewMs is the other side minus this device.
      return sec === 0 ? 'This device\'s clock agrees (within a second).' : `This device's clock is ${sec} s ${f.skewMs > 0 ? 'behind' : 'ahead'}${sec >= 300 ? ': Kerberos and SAML fail past 5 minutes' : ''}.`;
    }
    default:
      break;
  }
  const last = p.stages.at(-1);
  return last ? `Answers: ${last.detail}` : 'Answers.';
}

function unusedBackup(p: ProbeResult, mode: string | undefined): boolean {
  return p.id.startsWith('iwa:backup') && mode !== undefined && mode !== 'REDIRECT_TO_BACKUP';
}

export interface ViewInput {
  report: DiagnoseReport;
  /** The health model's state per probe ID (observed by the caller). */
  health: (id: string) => TargetHealth | undefined;
  proxy?: { decision?: RouteDecision; error?: string; ms: number };
}

export function toTargets({ report, health, proxy }: ViewInput): TargetReport[] {
  const mode = report.org?.failoverMode;
  const targets: TargetReport[] = [];
  for (const p of report.probes) {
    if (p.kind === 'certificate' || p.kind === 'tpm') continue; // the header shows the certificate and how its key is kept; TPM problems are findings
    const h = health(p.id);
    const state: Health = p.status === 'skipped' || !h ? 'UNKNOWN' : h.state;
    const note = unusedBackup(p, mode) ? ' Not used in this failover mode.' : '';
    const last = state === 'UNKNOWN' ? undefined : h?.transitions.at(-1);
    targets.push({
      id: p.id,
      kind: p.kind,
      name: targetName(p),
      url: p.target,
      health: state,
      ...(last ? { healthReason: last.reason.slice(0, 2000), healthSince: last.at } : {}),
      summary: `${summaryOf(p)}${note}`.slice(0, 2000),
      ...(p.kind === 'iwa' && mode ? { explanation: FAILOVER_EXPLAINED[mode] ?? `Failover mode: ${mode}.` } : EXPLAINED[p.kind] ? { explanation: EXPLAINED[p.kind]! } : {}),
      lastCheck: report.generatedAt,
      ...(p.status === 'ok' ? { latencyMs: Math.round(p.ms) } : {}),
      stages: stagesOf(p),
      history: (h?.history ?? []).slice(-HISTORY_POINTS).map((x) => ({ at: x.at, ok: x.ok, ms: Math.max(0, Math.round(x.ms)) })),
    });
  }
  if (!report.probes.some((p) => p.kind === 'kdc' || p.kind === 'dc')) {
    targets.push({ id: 'kdc', kind: 'kdc', name: 'Domain controllers / KDC', health: 'UNKNOWN', summary: 'No Kerberos realm is configured on this device (krb5.conf), so there are no domain controllers to check.', explanation: EXPLAINED.kdc!, stages: [], history: [] });
  }
  if (proxy) {
    const d = proxy.decision;
    targets.push({
      id: 'proxy',
      kind: 'proxy',
      name: 'Proxy path',
      health: d ? (report.probes.find((p) => p.id === 'org')?.status === 'ok' ? 'ONLINE' : 'UNKNOWN') : 'OFFLINE',
      summary: d ? `${d.routes.map(describeRoute).join(', then ')} — ${d.rule}` : `The route to the org could not be decided: ${proxy.error ?? 'unknown error'}`,
      explanation: EXPLAINED.proxy!,
      lastCheck: report.generatedAt,
      stages: d ? [{ name: `Route for ${d.url}`.slice(0, 100), ok: true, ms: proxy.ms, detail: `${d.source}: ${d.rule}` }] : [{ name: 'Route for the org', ok: false, ms: proxy.ms, detail: proxy.error ?? '' }],
      history: [],
    });
  }
  return targets;
}

const SEVERITY = { error: 'critical', warning: 'warning', info: 'info' } as const;

export function toFindings(findings: EngineFinding[]): Finding[] {
  const order = { critical: 0, warning: 1, info: 2 } as const;
  return findings
    .map((f) => ({
      id: f.code,
      severity: SEVERITY[f.severity],
      title: f.title.slice(0, 300),
      cause: f.cause.slice(0, 2000),
      remedy: f.remedy.slice(0, 2000),
      ...(f.evidence.length ? { evidence: f.evidence.join(' · ').slice(0, 2000) } : {}),
      ...(f.probes[0] ? { targetId: f.probes[0] } : {}),
    }))
    .sort((a, b) => order[a.severity] - order[b.severity]);
}
