/**
 * Reachability and findings for the dashboard, computed with what the core has today: org discovery, the
 * IWA web apps' test page, the CRL, the mTLS endpoint with the device certificate (the same calls as
 * `status --check`), the org's agent pools, and the proxy setting. The shapes are the contract's
 * (DiagnosticsReport); the diagnostics engine (issue 5: stage-by-stage probes through the proxy resolver,
 * the health model with hysteresis, DNS SRV discovery of the KDC) replaces the probes without changing them.
 */
import dns from 'node:dns/promises';
import net from 'node:net';
import { z } from 'zod';
import type { Config } from '../core/config.js';
import { CredentialFiles } from '../core/credentials.js';
import { AgentError, isAgentError } from '../core/errors.js';
import type { HttpClient } from '../core/http.js';
import { discoverOrg } from '../core/discovery.js';
import { checkMtls } from '../core/mtls.js';
import type { FailoverMode, OrgConfig } from '../core/protocol.js';
import { checkRevocation } from '../core/revocation.js';
import type { StatusReport } from '../core/status.js';
import type { Finding, Health, Stage, TargetReport } from './contract.js';
import type { SystemProxySource } from './host.js';

/** An answer slower than this marks a target DEGRADED (the health policy's timeout is 3 s). */
const SLOW_MS = 1500;

export interface ProbeInput {
  config: Config;
  http: HttpClient;
  status: StatusReport;
  /** The device certificate and key, for the mTLS check (never leaves the main process). */
  credential?: { certPem: string; keyPem: string } | undefined;
  /** The last org discovery that worked, so IWA cards stay meaningful while the org is down. */
  lastOrg?: OrgConfig | undefined;
  systemProxy?: SystemProxySource | undefined;
}

/** A probe's result before history is attached. */
export type ProbeResult = Omit<TargetReport, 'history'> & { errorCode?: string };

export interface ProbeRun {
  org?: OrgConfig;
  targets: ProbeResult[];
}

async function timed<T>(fn: () => Promise<T>): Promise<{ value?: T; error?: unknown; ms: number }> {
  const t0 = performance.now();
  try {
    const value = await fn();
    return { value, ms: performance.now() - t0 };
  } catch (error) {
    return { error, ms: performance.now() - t0 };
  }
}

const message = (e: unknown) => (isAgentError(e) ? e.message : (e as Error)?.message ?? String(e));
const codeOf = (e: unknown) => (isAgentError(e) ? e.code : undefined);

/** DNS, then the HTTPS exchange; the two stages every HTTP target shows. */
async function httpStages<T>(url: string, exchange: () => Promise<T>): Promise<{ stages: Stage[]; value?: T; error?: unknown; ms: number }> {
  const host = new URL(url).hostname.replace(/^\[|\]$/g, '');
  const lookup = await timed(() => dns.lookup(host));
  const stages: Stage[] = [{ name: 'DNS', ok: !lookup.error, ms: lookup.ms, detail: lookup.error ? `${host} does not resolve: ${message(lookup.error)}` : `${host} → ${lookup.value!.address}` }];
  if (lookup.error) {
    stages.push({ name: 'Connect, TLS and HTTP', ok: null, detail: 'not tried' });
    return { stages, error: new AgentError('retry-later', 'DNS_FAILED', `${host} does not resolve.`), ms: lookup.ms };
  }
  const r = await timed(exchange);
  const tls = codeOf(r.error) === 'TLS_UNTRUSTED';
  stages.push({ name: 'Connect, TLS and HTTP', ok: !r.error, ms: r.ms, detail: r.error ? `${tls ? 'TLS: ' : ''}${message(r.error)}` : 'answered' });
  return { stages, ...(r.error ? { error: r.error } : { value: r.value as T }), ms: lookup.ms + r.ms };
}

function healthOf(ok: boolean, ms: number): Health {
  if (!ok) return 'OFFLINE';
  return ms > SLOW_MS ? 'DEGRADED' : 'ONLINE';
}

export const FAILOVER_EXPLAINED: Record<FailoverMode, string> = {
  REDIRECT_TO_BACKUP:
    'Failover mode: redirect to a backup if the primary goes offline. The AD agent health-checks every IWA web app; when the primary stops answering, enrollment uses a backup, so an offline primary slows nothing down as long as one backup answers.',
  PRIMARY_ONLY:
    'Failover mode: primary only. Backups are never used and nobody health-checks the primary, so the org can still show a dead IWA web app as active; enrollment and sign-in wait until the primary answers again.',
  FIXED_URL:
    'Failover mode: only this URL. The org always sends devices to one IWA web app and does not health-check it, so the org can still show it as active while it is down; nothing fails over.',
};

async function probeIwa(http: HttpClient, org: OrgConfig): Promise<ProbeResult[]> {
  const mode = org.iwa.failoverMode;
  const list = [{ id: 'iwa-primary', name: 'IWA web app (primary)', url: org.iwa.primary }, ...org.iwa.backups.map((url, i) => ({ id: `iwa-backup-${i + 1}`, name: `IWA web app (backup ${i + 1})`, url }))];
  return Promise.all(
    list.map(async (t): Promise<ProbeResult> => {
      const testPage = `${t.url.replace(/\/+$/, '')}/authenticated.aspx`;
      const r = await httpStages(testPage, () => http.send({ url: testPage, what: 'the IWA web app' }));
      const at = new Date().toISOString();
      const unused = t.id !== 'iwa-primary' && mode !== 'REDIRECT_TO_BACKUP' ? ' Not used in this failover mode.' : '';
      if (r.error) {
        return { id: t.id, kind: 'iwa', name: t.name, url: t.url, health: 'OFFLINE', summary: `Does not answer: ${message(r.error)}${unused}`, explanation: FAILOVER_EXPLAINED[mode], lastCheck: at, stages: r.stages, ...(codeOf(r.error) ? { errorCode: codeOf(r.error)! } : {}) };
      }
      const res = r.value!;
      const negotiate = /negotiate/i.test(String(res.headers['www-authenticate'] ?? ''));
      const ok = res.status === 401 ? negotiate : res.status < 400;
      const detail = res.status === 401 ? (negotiate ? 'asks for Windows integrated authentication (Negotiate), as it should' : 'answers 401 without offering Negotiate') : `HTTP ${res.status}`;
      r.stages.push({ name: 'IWA test page', ok, detail });
      const health: Health = ok ? healthOf(true, r.ms) : 'DEGRADED';
      return { id: t.id, kind: 'iwa', name: t.name, url: t.url, health, summary: `${ok ? 'Answers' : 'Answers, but not as an IWA web app should'}: ${detail}.${unused}`, explanation: FAILOVER_EXPLAINED[mode], lastCheck: at, latencyMs: r.ms, stages: r.stages };
    }),
  );
}

const AgentPoolsSchema = z
  .array(
    z.object({
      name: z.string().max(300),
      type: z.string().max(50),
      operationalStatus: z.string().max(50),
      agents: z.array(z.object({ name: z.string().max(300), operationalStatus: z.string().max(50), lastConnection: z.number().optional(), version: z.string().max(50).optional() })).max(500).optional(),
    }),
  )
  .max(100);

async function probeAgents(http: HttpClient, orgUrl: string): Promise<ProbeResult> {
  const url = `${orgUrl}/api/v1/agentPools`;
  const base = { id: 'ad-agents', kind: 'ad-agents' as const, name: 'AD agents', url, explanation: 'The org\'s AD agents connect it to the directory. While every agent is disconnected, users with delegated authentication can still sign in for up to 5 days after their last successful password sign-in (unless the password changed or the user was suspended or deactivated).' };
  const r = await httpStages(url, () => http.json(AgentPoolsSchema, { url, what: 'the org' }));
  const at = new Date().toISOString();
  if (r.error) {
    const needsToken = /HTTP 40[13]|E0000_/.test(message(r.error)) && codeOf(r.error) !== 'UNREACHABLE';
    return { ...base, health: needsToken ? 'UNKNOWN' : 'OFFLINE', summary: needsToken ? 'The org did not show its agent pools: reading them needs an admin API token.' : `Agent status could not be read: ${message(r.error)}`, lastCheck: at, stages: r.stages };
  }
  const pools = r.value!.data.filter((p) => p.type === 'AD');
  if (pools.length === 0) return { ...base, health: 'UNKNOWN', summary: 'The org has no AD agent pool.', lastCheck: at, latencyMs: r.ms, stages: r.stages };
  for (const p of pools) {
    for (const a of p.agents ?? []) {
      r.stages.push({ name: `${p.name} / ${a.name}`, ok: a.operationalStatus === 'OPERATIONAL', detail: `${a.operationalStatus}${a.lastConnection ? `, last connected ${new Date(a.lastConnection).toISOString()}` : ''}${a.version ? `, version ${a.version}` : ''}` });
    }
  }
  const worst = pools.some((p) => p.operationalStatus === 'DISRUPTED' || p.operationalStatus === 'INACTIVE') ? 'OFFLINE' : pools.some((p) => p.operationalStatus === 'DEGRADED') ? 'DEGRADED' : 'ONLINE';
  return { ...base, health: worst, summary: pools.map((p) => `${p.name}: ${p.operationalStatus}`).join('; '), lastCheck: at, latencyMs: r.ms, stages: r.stages };
}

function probeTcp(host: string, port: number, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host, port, timeout: timeoutMs }, () => {
      s.destroy();
      resolve();
    });
    s.on('timeout', () => {
      s.destroy();
      reject(new Error(`no answer within ${timeoutMs} ms`));
    });
    s.on('error', reject);
  });
}

async function probeProxy(input: ProbeInput, orgOk: boolean): Promise<ProbeResult> {
  const { config } = input;
  const at = new Date().toISOString();
  const base = { id: 'proxy', kind: 'proxy' as const, name: 'Proxy path', explanation: 'How requests leave this device: an explicit proxy (HttpProxy=), a PAC file (HttpProxyPacLocation=), or the system settings. A proxy that inspects TLS breaks the mutual-TLS handshake.' };
  const stages: Stage[] = [];
  if (input.systemProxy && config.orgUrl) {
    const r = await timed(() => input.systemProxy!.resolve(config.orgUrl!));
    stages.push({ name: `System settings (${input.systemProxy.description})`, ok: !r.error, ms: r.ms, detail: r.error ? message(r.error) : `the org goes ${r.value}` });
  }
  if (config.httpProxy) {
    const u = new URL(config.httpProxy);
    const r = await timed(() => probeTcp(u.hostname, Number(u.port || 80), 3000));
    stages.push({ name: 'Explicit proxy', ok: !r.error, ms: r.ms, detail: r.error ? `${u.host}: ${message(r.error)}` : `${u.host} accepts connections` });
    return { ...base, url: `${u.protocol}//${u.host}`, health: r.error ? 'OFFLINE' : healthOf(true, r.ms), summary: r.error ? `The proxy ${u.host} does not accept connections.` : `Explicit proxy ${u.host} (HttpProxy=).`, lastCheck: at, latencyMs: r.ms, stages };
  }
  if (config.httpProxyPacLocation) {
    const pac = config.httpProxyPacLocation;
    if (pac.startsWith('file:')) {
      stages.push({ name: 'PAC file', ok: null, detail: `${pac} (a local file)` });
      return { ...base, url: pac, health: 'UNKNOWN', summary: `PAC file ${pac}.`, lastCheck: at, stages };
    }
    const r = await httpStages(pac, () => input.http.send({ url: pac, what: 'the PAC file server' }));
    const ok = !r.error && r.value!.status < 400;
    return { ...base, url: pac, health: ok ? healthOf(true, r.ms) : 'OFFLINE', summary: ok ? `PAC file ${pac} is reachable.` : `The PAC file ${pac} cannot be fetched.`, lastCheck: at, latencyMs: r.ms, stages: [...stages, ...r.stages] };
  }
  stages.push({ name: 'Configuration', ok: true, detail: 'no HttpProxy= or HttpProxyPacLocation= configured' });
  return { ...base, health: orgOk ? 'ONLINE' : 'UNKNOWN', summary: 'Direct connection (no proxy configured).', lastCheck: at, stages };
}

/** Runs every probe it can; the org first (it says where everything else is), then the rest in parallel. */
export async function runProbes(input: ProbeInput): Promise<ProbeRun> {
  const { config, http, status } = input;
  const targets: ProbeResult[] = [];
  const orgUrl = config.orgUrl?.replace(/\/+$/, '');
  let org: OrgConfig | undefined;
  if (orgUrl) {
    const r = await httpStages(`${orgUrl}/`, () => discoverOrg(http, orgUrl));
    org = r.value;
    r.stages.push({ name: 'Discovery answer', ok: r.value ? true : null, detail: r.value ? `${r.value.orgName}: ${1 + r.value.iwa.backups.length} IWA web app(s), failover ${r.value.iwa.failoverMode}${r.value.readOnly ? ', READ-ONLY' : ''}` : 'not received' });
    targets.push({
      id: 'org', kind: 'org', name: 'Org', url: orgUrl,
      health: r.error ? 'OFFLINE' : healthOf(true, r.ms),
      summary: r.error ? `Not reachable: ${message(r.error)}` : `${org!.orgName} answers${org!.readOnly ? ' (read-only mode)' : ''}.`,
      explanation: 'The identity provider: tells the agent where its IWA web apps, CA and mTLS endpoint are, and issues the certificate.',
      lastCheck: new Date().toISOString(), ...(r.error ? {} : { latencyMs: r.ms }), stages: r.stages,
      ...(codeOf(r.error) ? { errorCode: codeOf(r.error)! } : {}),
    });
  } else {
    targets.push({ id: 'org', kind: 'org', name: 'Org', health: 'UNKNOWN', summary: 'No org URL is configured.', stages: [] });
  }
  const known = org ?? input.lastOrg;
  const jobs: Promise<ProbeResult | ProbeResult[]>[] = [];
  if (known) {
    jobs.push(org ? probeIwa(http, known) : Promise.resolve([{ id: 'iwa-primary', kind: 'iwa', name: 'IWA web app (primary)', url: known.iwa.primary, health: 'UNKNOWN', summary: 'Not checked: the org did not answer.', explanation: FAILOVER_EXPLAINED[known.iwa.failoverMode], stages: [] }]));
  } else {
    jobs.push(Promise.resolve({ id: 'iwa-primary', kind: 'iwa', name: 'IWA web app', health: 'UNKNOWN', summary: 'Unknown until the org has been reached once (it says where its IWA web apps are).', stages: [] }));
  }
  if (orgUrl) jobs.push(probeAgents(http, orgUrl));
  jobs.push(Promise.resolve({
    id: 'kdc', kind: 'kdc', name: 'Domain controllers / KDC', health: 'UNKNOWN',
    summary: 'Not checked in this build: finding the domain controllers (DNS SRV) and testing for a Kerberos ticket come with the diagnostics engine.',
    explanation: 'Kerberos tickets for the device and the user come from the domain controllers (port 88); without them the IWA web app cannot authenticate this device.', stages: [],
  }));
  jobs.push(probeProxy(input, Boolean(org)));
  if (org && input.credential) {
    const cred = input.credential;
    jobs.push((async () => {
      const r = await httpStages(org!.mtls.url, () => checkMtls(http, org!.mtls.url, cred.certPem, cred.keyPem));
      const at = new Date().toISOString();
      const base = { id: 'mtls', kind: 'mtls' as const, name: 'mTLS endpoint', url: org!.mtls.url, explanation: 'Where the identity provider asks browsers for the device certificate. The check presents this device\'s certificate, as a browser would.', lastCheck: at };
      if (r.error) return { ...base, health: 'OFFLINE' as const, summary: `The certificate could not be presented: ${message(r.error)}`, stages: r.stages, ...(codeOf(r.error) ? { errorCode: codeOf(r.error)! } : {}) };
      const a = r.value!;
      r.stages.push({ name: 'Verdict', ok: a.trusted, detail: a.trusted ? `trusted as device ${a.deviceId ?? '?'}` : `not trusted (${a.reason ?? 'no reason given'})` });
      return { ...base, health: a.trusted ? healthOf(true, r.ms) : 'DEGRADED' as const, summary: a.trusted ? `Trusts this device's certificate (device ${a.deviceId ?? '?'}).` : `Answers, but does NOT trust this device's certificate (${a.reason ?? 'no reason given'}).`, latencyMs: r.ms, stages: r.stages, ...(a.trusted ? {} : { errorCode: `MTLS_${(a.reason ?? 'untrusted').toUpperCase()}` }) };
    })());
  } else {
    jobs.push(Promise.resolve({ id: 'mtls', kind: 'mtls', name: 'mTLS endpoint', ...(known ? { url: known.mtls.url } : {}), health: 'UNKNOWN', summary: input.credential ? 'Not checked: the org did not answer.' : 'Not checked: there is no device certificate with its key to present.', stages: [] }));
  }
  if (org?.crlUrl && status.certificate) {
    const serial = status.certificate.serialNumber;
    const crlUrl = org.crlUrl;
    jobs.push((async () => {
      const r = await httpStages(crlUrl, () => checkRevocation(http, crlUrl, org!.ca.chainPem, serial));
      const at = new Date().toISOString();
      const base = { id: 'crl', kind: 'crl' as const, name: 'Revocation list (CRL)', url: crlUrl, explanation: 'Says whether an administrator revoked this device\'s certificate.', lastCheck: at };
      if (r.error) return { ...base, health: 'OFFLINE' as const, summary: `Not reachable: ${message(r.error)}`, stages: r.stages };
      const v = r.value!;
      r.stages.push({ name: 'Certificate status', ok: !v.revoked, detail: v.revoked ? `certificate ${serial} revoked at ${v.revokedAt}` : `certificate ${serial} not revoked` });
      return { ...base, health: healthOf(true, r.ms), summary: v.revoked ? `Lists this device's certificate as REVOKED (at ${v.revokedAt}).` : 'Reachable; this device\'s certificate is not revoked.', latencyMs: r.ms, stages: r.stages, ...(v.revoked ? { errorCode: 'CERT_REVOKED' } : {}) };
    })());
  }
  jobs.push(Promise.resolve({ id: 'gateway', kind: 'gateway', name: 'Access gateway', health: 'UNKNOWN', summary: 'No access gateway is configured for monitoring.', explanation: 'An access gateway in offline mode reports its authentication service\'s health ({"status":"HEALTHY"}).', stages: [] }));
  for (const r of await Promise.all(jobs)) targets.push(...(Array.isArray(r) ? r : [r]));
  return { ...(org ? { org } : {}), targets };
}

/** Findings in plain words: what is wrong, why it is likely, what to do. */
export function findingsFor(status: StatusReport, run: ProbeRun, org: OrgConfig | undefined): Finding[] {
  const out: Finding[] = [];
  const t = (id: string) => run.targets.find((x) => x.id === id);
  const c = status.certificate;
  switch (status.state) {
    case 'NOT_CONFIGURED':
      out.push({ id: 'not-configured', severity: 'critical', title: 'The agent is not configured', cause: 'No org URL is set, so the agent does not know where to enroll.', remedy: 'Ask IT to deploy the org URL (OktaURL= at install time, or the managed configuration).' });
      break;
    case 'NOT_ENROLLED':
      out.push({ id: 'no-certificate', severity: 'warning', title: 'This device has no device certificate yet', cause: 'Enrollment has not succeeded yet, so apps that require a trusted device will refuse sign-in.', remedy: 'Connect to the corporate network or VPN and choose "Renew now"; the agent also tries on its own.', ...(status.lastRun ? { evidence: `Last run: ${status.lastRun.outcome}${status.lastRun.code ? ` (${status.lastRun.code})` : ''}: ${status.lastRun.message}` } : {}) });
      break;
    case 'EXPIRED':
      out.push({ id: 'expired', severity: 'critical', title: 'The device certificate has expired', cause: `It expired on ${c?.notAfter}; renewal did not happen in time (usually because the corporate network was out of reach).`, remedy: 'Connect to the corporate network or VPN and choose "Renew now": a new certificate is enrolled.' });
      break;
    case 'KEY_MISSING':
      out.push({ id: 'key-missing', severity: 'critical', title: 'The certificate\'s private key is missing', cause: 'The key file was deleted or the profile was restored from a backup without it, so the certificate can neither be used nor renewed.', remedy: 'Use "Force renewal": it removes the certificate and enrolls a new one.' });
      break;
    case 'REVOKED':
      out.push({ id: 'revoked', severity: 'critical', title: 'The device certificate has been revoked', cause: 'An administrator revoked it (or deactivated the user). A revoked certificate stays on the device and blocks a new enrollment.', remedy: 'If the device should be trusted again, ask IT, then use "Force renewal".' });
      break;
    case 'RENEWAL_DUE':
      out.push({ id: 'renewal-due', severity: 'info', title: 'The certificate is due for renewal', cause: `It is valid until ${c?.notAfter}; renewal needs the org to be reachable.`, remedy: 'Nothing to do: the agent renews on its own. "Renew now" does it at once.' });
      break;
    default:
      break;
  }
  if (status.certificatesInStore > 1) {
    out.push({ id: 'duplicates', severity: 'warning', title: 'More than one device-trust certificate is installed', cause: `${status.certificatesInStore} certificates from the device-trust CA are in ${status.store}; browsers may present the wrong one.`, remedy: 'Choose "Renew now": the agent keeps one and removes the others.' });
  }
  const orgT = t('org');
  if (orgT?.health === 'OFFLINE') {
    const intercepted = orgT.errorCode === 'TLS_UNTRUSTED';
    out.push(intercepted
      ? { id: 'tls-interception', severity: 'critical', title: 'The org\'s TLS certificate is not trusted', cause: 'A TLS-inspecting proxy or security product probably sits between this device and the org (or the clock is wrong). It also breaks the mutual-TLS handshake.', remedy: 'Ask IT to exempt the identity provider\'s domains (*.okta.com, *.okta-emea.com, *.okta-gov.com) from TLS inspection, and check the system clock.', evidence: orgT.summary, targetId: 'org' }
      : { id: 'org-unreachable', severity: c ? 'warning' : 'critical', title: 'The org cannot be reached', cause: 'This device is off the corporate network, or a firewall or allowlist blocks the identity provider\'s domains (*.okta.com, *.okta-emea.com, *.okta-gov.com).', remedy: 'Connect to the corporate network or VPN; if that does not help, ask IT to allow the identity provider\'s domains.', evidence: orgT.summary, targetId: 'org' });
  }
  if (org?.readOnly) {
    out.push({ id: 'org-read-only', severity: 'warning', title: 'The org is in read-only mode', cause: 'The identity provider is under maintenance: devices cannot enroll or renew until it ends.', remedy: 'Nothing to do on this device: the agent tries again later on its own.', targetId: 'org' });
  }
  const iwas = run.targets.filter((x) => x.kind === 'iwa' && x.health !== 'UNKNOWN');
  const primary = iwas.find((x) => x.id === 'iwa-primary');
  if (org && primary) {
    const mode = org.iwa.failoverMode;
    const backupsUp = iwas.filter((x) => x.id !== 'iwa-primary' && x.health !== 'OFFLINE');
    // IWA is needed to enroll (or force-renew); a valid certificate renews without it.
    const needsIwa = !c || ['EXPIRED', 'KEY_MISSING', 'REVOKED', 'NOT_ENROLLED'].includes(status.state);
    if (iwas.every((x) => x.health === 'OFFLINE')) {
      out.push({
        id: 'iwa-offline', severity: needsIwa ? 'critical' : 'warning', title: iwas.length > 1 ? 'No IWA web app answers' : 'The IWA web app does not answer',
        cause: `${iwas.map((x) => x.name).join(' and ')} ${iwas.length > 1 ? 'do' : 'does'} not answer, so this device cannot get the tokens it needs to enroll or re-enroll. Common causes: off the corporate network, a firewall, or an IIS/host problem on the IWA server.`,
        remedy: 'Connect to the corporate network or VPN. If the problem persists, ask IT to check the IWA server(s) and their firewall; renewal of a valid certificate does not need IWA.',
        evidence: iwas.map((x) => `${x.name}: ${x.summary}`).join(' · '), targetId: 'iwa-primary',
      });
    } else if (primary.health === 'OFFLINE') {
      out.push(mode === 'REDIRECT_TO_BACKUP' && backupsUp.length
        ? { id: 'iwa-primary-offline', severity: 'warning', title: 'The primary IWA web app is offline; a backup is used', cause: `The org's failover mode redirects to a backup, and ${backupsUp.map((x) => x.name).join(', ')} answers.`, remedy: 'Nothing to do on this device. IT should bring the primary IWA server back.', evidence: primary.summary, targetId: 'iwa-primary' }
        : { id: 'iwa-primary-offline', severity: needsIwa ? 'critical' : 'warning', title: 'The primary IWA web app is offline and nothing fails over', cause: `The org's failover mode is ${mode === 'PRIMARY_ONLY' ? '"primary only"' : '"only this URL"'}: backups are not used and nobody health-checks the primary, so the org may still show it as active.`, remedy: 'Ask IT to bring the primary IWA server back, or to switch the failover mode to "redirect to backup".', evidence: primary.summary, targetId: 'iwa-primary' });
    }
  }
  const mtls = t('mtls');
  if (mtls && mtls.errorCode?.startsWith('MTLS_')) {
    out.push({ id: 'mtls-untrusted', severity: 'critical', title: 'The identity provider does not trust this device\'s certificate', cause: `The mTLS endpoint answered: ${mtls.summary}`, remedy: mtls.errorCode === 'MTLS_REVOKED' ? 'If the device should be trusted again, ask IT, then use "Force renewal".' : 'Use "Force renewal" to enroll a fresh certificate.', targetId: 'mtls' });
  } else if (mtls?.errorCode === 'TLS_UNTRUSTED') {
    out.push({ id: 'mtls-interception', severity: 'critical', title: 'The mutual-TLS handshake is broken on the way', cause: 'A TLS-inspecting proxy or security product probably re-signs the connection to the mTLS endpoint, so the identity provider never sees the device certificate.', remedy: 'Ask IT to exempt the identity provider\'s domains from TLS inspection.', evidence: mtls.summary, targetId: 'mtls' });
  }
  const crl = t('crl');
  if (crl?.errorCode === 'CERT_REVOKED' && status.state !== 'REVOKED') {
    out.push({ id: 'revoked', severity: 'critical', title: 'The device certificate has been revoked', cause: crl.summary, remedy: 'If the device should be trusted again, ask IT, then use "Force renewal".', targetId: 'crl' });
  }
  const agents = t('ad-agents');
  if (agents?.health === 'OFFLINE' && agents.stages.some((s) => s.ok === false && s.name.includes('/'))) {
    out.push({ id: 'ad-agents-down', severity: 'warning', title: 'The org\'s AD agents are disconnected', cause: 'The identity provider cannot reach the directory. Users with delegated authentication can still sign in for up to 5 days after their last successful password sign-in, unless their password changed or they were suspended or deactivated.', remedy: 'IT should restart the AD agent service or check its host and network.', evidence: agents.summary, targetId: 'ad-agents' });
  }
  if (status.lastRun?.outcome === 'failed' && !out.some((f) => f.severity === 'critical')) {
    out.push({ id: 'last-run-failed', severity: 'warning', title: 'The last run did not succeed', cause: status.lastRun.message, remedy: 'See the event log for details; the agent tries again later on its own.', evidence: `${status.lastRun.at}${status.lastRun.code ? ` (${status.lastRun.code})` : ''}` });
  }
  const order = { critical: 0, warning: 1, info: 2 } as const;
  return out.sort((a, b) => order[a.severity] - order[b.severity]);
}

/** The device certificate and its key from the agent's own copy; undefined when either is missing. */
export function deviceCredential(stateDir: string, thumbprint: string | undefined): { certPem: string; keyPem: string } | undefined {
  if (!thumbprint) return undefined;
  const creds = new CredentialFiles(stateDir);
  const certPem = creds.readCertificate(thumbprint);
  const keyPem = creds.readKeyPem(thumbprint);
  return certPem && keyPem ? { certPem, keyPem } : undefined;
}
