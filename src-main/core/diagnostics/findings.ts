import type { OrgConfig } from '../enrollment/protocol.js';
import { pinChangeFinding, publishedPins } from '../net/server-chain.js';
import type { RememberedPins } from '../state/state.js';
import { tpmFindings } from './tpm.js';
import { INTERCEPTOR_ISSUERS, type TlsFacts } from './stages.js';
import { SEVERITY_RANK, type AgentPool, type Finding, type ProbeResult, type Severity } from './types.js';

/** Kerberos (and with it IWA) fails when clocks differ by more than 5 minutes; SAML and TLS validity suffer earlier. */
export const CLOCK_SKEW_ERROR_MS = 5 * 60 * 1000;
export const CLOCK_SKEW_WARNING_MS = 60 * 1000;
/** Delegated authentication keeps working this long after the user's last password sign-in while all AD agents are down. */
export const DELEGATED_AUTH_WINDOW_MS = 5 * 24 * 3600 * 1000;
export const IDP_DOMAINS = ['*.okta.com', '*.okta-emea.com', '*.okta-gov.com'];
const EXPIRY_WARNING_MS = 30 * 24 * 3600 * 1000;
const GATEWAY_STALE_MS = 10 * 60 * 1000;

export interface SignInRecord {
  at: string;
  /** How the agent saw it: an IWA Negotiate round trip, or an enrollment (which needs the user's IWA sign-in). */
  how: string;
  principal?: string | undefined;
}

export interface FindingsInput {
  /** The configured enrollment backend: the SCEP backend needs no org URL. */
  backend?: string;
  orgUrl: string | undefined;
  org: OrgConfig | undefined;
  orgFromCache: boolean;
  probes: ProbeResult[];
  pools: AgentPool[] | undefined;
  now: Date;
  /** The agent's own record of the last successful sign-in it saw (event log). */
  lastSignIn: SignInRecord | undefined;
  /** The server TLS issuer pins remembered in state (core/net/server-chain.ts): a withdrawn or replaced set is a finding. */
  rememberedPins?: RememberedPins | undefined;
}

const FAILOVER_TEXT: Record<string, string> = {
  REDIRECT_TO_BACKUP: '"Redirect to backup IWA if primary goes offline"',
  PRIMARY_ONLY: '"Only redirect to primary IWA"',
  FIXED_URL: '"Only redirect to the following URL"',
};

/** Failures of the route (proxy, PAC) rather than of the server behind it. */
const ROUTE_CODES = /^(PROXY_|PAC_)/;
const down = (p: ProbeResult | undefined) => p !== undefined && (p.status === 'fail' || p.status === 'timeout');
const up = (p: ProbeResult | undefined) => p !== undefined && p.status === 'ok';
const host = (u: string) => {
  try {
    return new URL(u).host;
  } catch {
    return u;
  }
};

/** One line of evidence from a probe: its failing stage, or its outcome. */
export function evidenceOf(p: ProbeResult): string {
  const bad = p.stages.find((s) => s.status === 'fail' || s.status === 'timeout');
  if (bad) return `${p.id}: ${bad.label} → ${bad.status === 'timeout' ? 'TIMEOUT' : 'FAILED'} after ${bad.ms} ms (${bad.detail})`;
  if (p.error) return `${p.id}: ${p.status.toUpperCase()} (${p.error.message})`;
  return `${p.id}: ${p.status} in ${p.ms} ms`;
}

function fmtDuration(ms: number): string {
  const abs = Math.abs(ms);
  if (abs >= 86_400_000) return `${(abs / 86_400_000).toFixed(1)} days`;
  if (abs >= 3_600_000) return `${(abs / 3_600_000).toFixed(1)} h`;
  if (abs >= 60_000) return `${(abs / 60_000).toFixed(1)} min`;
  return `${(abs / 1000).toFixed(1)} s`;
}

/** What each group of rules reads — the input, its probes by ID and kind, what several groups share — and where findings go. */
interface RuleContext {
  input: FindingsInput;
  add: (f: Finding) => void;
  get: (id: string) => ProbeResult | undefined;
  ofKind: (kind: ProbeResult['kind']) => ProbeResult[];
  now: number;
  /** A device certificate is installed: what blocks only enrollment is then a warning, not an error. */
  enrolled: boolean;
  iwaProbes: ProbeResult[];
  /** Kerberos error codes from the ticket probes and the IWA sign-ins (the clock rules read CLOCK_SKEW here too). */
  kerberosCodes: string[];
}

/** Configuration and the org. */
function orgFindings(c: RuleContext): void {
  const { input, add, get, ofKind, iwaProbes } = c;
  if (!input.orgUrl && input.backend !== 'scep') {
    add({ code: 'NOT_CONFIGURED', severity: 'error', title: 'No org URL is configured', evidence: ['orgUrl is not set in any configuration source'],
      cause: 'The agent was installed without OktaURL= and no managed configuration names the org.',
      remedy: 'Set OktaURL= at install time, "orgUrl" in /etc/device-trust-agent/*.json, DTA_ORG_URL, or --org-url.', probes: [] });
  }
  const orgP = get('org');
  if (down(orgP)) {
    const code = orgP!.error?.code ?? '';
    const networkBlocked = /^TCP_|^TIMEOUT$|UNREACHABLE|REQUEST_TIMEOUT/.test(code) || orgP!.status === 'timeout';
    const internalUp = iwaProbes.some(up) || ofKind('kdc').some(up);
    if (networkBlocked && internalUp) {
      add({ code: 'IDP_BLOCKED', severity: 'error', title: 'The identity provider is blocked from this network',
        evidence: [evidenceOf(orgP!), ...iwaProbes.filter(up).map((p) => `${p.id}: reachable`)],
        cause: `Internal servers answer but the org (${host(input.orgUrl!)}) does not: a firewall, proxy or allowlist is missing the identity provider's domains.`,
        remedy: `Allow ${[host(input.orgUrl!), ...IDP_DOMAINS].join(', ')} (HTTPS, port 443) through the firewall/proxy allowlist.`, probes: ['org', ...iwaProbes.filter(up).map((p) => p.id)] });
    } else if (code !== 'TLS_UNTRUSTED' && code !== 'TLS_INTERCEPTED' && !ROUTE_CODES.test(code)) {
      add({ code: 'ORG_UNREACHABLE', severity: 'error', title: 'The org does not answer', evidence: [evidenceOf(orgP!)],
        cause: code.startsWith('DNS_') ? 'The org\'s host name does not resolve: this device is offline or its DNS is broken.'
          : /^HTTP_5|E0000/.test(code) ? 'The org answered with an error: an outage or maintenance at the identity provider.'
            : 'No network path to the org: offline, a firewall/allowlist missing the identity provider\'s domains, or a proxy that is needed but not configured.',
        remedy: `Check the network connection; allow ${[host(input.orgUrl!), ...IDP_DOMAINS].join(', ')} through firewalls; set HttpProxy= / HttpProxyPacLocation= if this network needs a proxy.`, probes: ['org'] });
    }
  }
  if (input.orgFromCache) {
    add({ code: 'ORG_FROM_CACHE', severity: 'info', title: 'IWA, mTLS and CRL were probed with the last known org settings',
      evidence: ['the org did not answer; its last discovery answer was used'], cause: 'The org is unreachable right now.', remedy: 'None needed for this; see the org finding.', probes: ['org'] });
  }
  if (input.org?.readOnly) {
    add({ code: 'ORG_READ_ONLY', severity: 'warning', title: 'The org is in read-only mode', evidence: ['org discovery: readOnly = true'],
      cause: 'The identity provider is in maintenance (read-only): devices cannot enroll or renew until it ends.',
      remedy: 'Nothing to do on this device: the agent retries on its own. A valid certificate keeps working meanwhile.', probes: ['org'] });
  }
}

/** IWA web apps and failover. */
function iwaFindings(c: RuleContext): void {
  const { input, add, get, iwaProbes } = c;
  if (!input.org) return;
  const mode = input.org.iwa.failoverMode;
  const primary = get('iwa:primary');
  const backups = iwaProbes.filter((p) => p.id.startsWith('iwa:backup'));
  const backupsUp = backups.filter(up);
  const modeText = FAILOVER_TEXT[mode] ?? mode;
  const iwaCauses = 'a firewall or security software on the IWA server blocking traffic, the identity provider\'s domains missing from an allowlist, or IIS / the host itself being down';
  if (down(primary)) {
    const ev = [evidenceOf(primary!), ...backups.map(evidenceOf), `failover mode: ${mode}`];
    const probes = [primary!.id, ...backups.map((b) => b.id)];
    if (mode === 'REDIRECT_TO_BACKUP' && backupsUp.length) {
      add({ code: 'IWA_PRIMARY_DOWN_FAILOVER', severity: 'warning', title: 'Primary IWA web app is offline; sign-ins fail over to a backup', evidence: ev,
        cause: `With ${modeText}, the AD agent health-checks every IWA web app and the org redirects to a healthy backup (${backupsUp.map((b) => b.target).join(', ')}); the admin console shows the primary as offline. Likely ${iwaCauses}.`,
        remedy: 'Restore the primary: check its firewall/security software, allowlist the identity provider\'s domains, and check IIS and the host. Desktop SSO keeps working through the backup meanwhile.', probes });
    } else if (mode === 'REDIRECT_TO_BACKUP') {
      add({ code: 'IWA_ALL_DOWN', severity: 'error', title: backups.length ? 'No IWA web app answers (primary and backups)' : 'The only IWA web app is offline', evidence: ev,
        cause: `Failover has nothing to fail over to. Likely ${iwaCauses}, or this device is not on the corporate network.`,
        remedy: 'Connect to the corporate network or VPN; if that is not it, restore the IWA servers (firewall, allowlist, IIS). Enrollment needs an IWA web app; renewal does not.', probes });
    } else {
      add({ code: mode === 'PRIMARY_ONLY' ? 'IWA_PRIMARY_DOWN_NO_FAILOVER' : 'IWA_FIXED_URL_DOWN', severity: 'error',
        title: mode === 'PRIMARY_ONLY' ? 'Primary IWA web app is offline and failover is off ("only primary")' : 'The fixed IWA URL is offline (failover mode "only this URL")',
        evidence: [...ev, ...(backupsUp.length ? [`backup(s) ${backupsUp.map((b) => b.target).join(', ')} answer but are not used in this mode`] : [])],
        cause: `With ${modeText}, the org sends every desktop-SSO sign-in to ${primary!.target} and never uses a backup. Nobody health-checks the IWA web app in this mode, so the admin console may still show it as active although it is down. Likely ${iwaCauses}.`,
        remedy: `Restore ${primary!.target} (firewall, allowlist, IIS), or switch the failover option to "Redirect to backup IWA if primary goes offline" (Security › Delegated Authentication › On-Prem Desktop SSO).`, probes });
    }
  } else if (up(primary) && mode === 'REDIRECT_TO_BACKUP' && backups.some(down)) {
    add({ code: 'IWA_BACKUP_DOWN', severity: 'warning', title: 'A backup IWA web app is offline', evidence: backups.filter(down).map(evidenceOf),
      cause: `The primary answers, but failover would have nowhere to go. Likely ${iwaCauses}.`, remedy: 'Restore the backup IWA server before the primary needs it.', probes: backups.filter(down).map((b) => b.id) });
  }
  for (const p of iwaProbes) {
    const code = p.error?.code;
    if (code === 'IWA_NO_NEGOTIATE') {
      add({ code: 'IWA_WINDOWS_AUTH_OFF', severity: 'error', title: `The IWA web app ${p.target} does not offer Windows authentication`, evidence: [evidenceOf(p)],
        cause: 'IIS answers 401 without "WWW-Authenticate: Negotiate": Windows Authentication is disabled for the IWA application, or anonymous/basic auth replaced it.',
        remedy: 'In IIS, enable Windows Authentication (Negotiate provider) for the IWA application.', probes: [p.id] });
    } else if (code === 'TLS_NOT_TLS') {
      add({ code: 'IWA_BINDING', severity: 'error', title: `The IWA web app ${p.target} does not speak HTTPS on this port`, evidence: [evidenceOf(p)],
        cause: 'The IWA web app is bound to HTTP while the org sends users to HTTPS (or the reverse): the binding in IIS and the IWA web.config disagree with the URL registered in the org.',
        remedy: 'Make the IIS binding, the IWA web.config and the IWA URL in the org agree (HTTPS with a trusted certificate).', probes: [p.id] });
    } else if (code === 'IWA_SERVER_ERROR' || code === 'IWA_TEST_PAGE_MISSING') {
      add({ code, severity: 'error', title: `The IWA web app ${p.target} is not working`, evidence: [evidenceOf(p)],
        cause: code === 'IWA_SERVER_ERROR' ? 'IIS or the IWA application fails (application pool stopped, configuration error).' : 'The URL does not point at the IWA web app.',
        remedy: code === 'IWA_SERVER_ERROR' ? 'Check the IWA application pool and the IIS logs on the server.' : 'Correct the IWA URL in the org (it ends in /IWA).', probes: [p.id] });
    }
  }
  const authFail = iwaProbes.map((p) => ({ p, auth: p.facts.auth as { ok: boolean; code?: string; message?: string } | undefined })).find((x) => x.auth && !x.auth.ok);
  if (authFail?.auth?.code === 'IWA_AUTH_REJECTED') {
    add({ code: 'IWA_AUTH_REJECTED', severity: 'error', title: 'The IWA web app refuses this user\'s Kerberos ticket', evidence: [`${authFail.p.id}: ${authFail.auth.message}`],
      cause: 'The ticket reached IIS but was not accepted: the user is not a member of the domain the IWA server trusts, or the IWA server\'s service principal (SPN) or keytab is wrong.',
      remedy: 'Check that the user is a domain member and active; ask the directory admin to check the HTTP/<iwa host> SPN (setspn -L).', probes: [authFail.p.id] });
  }
  // The org marks an IWA web app offline when the AD agent's health check fails; if it answers us, the AD agent is what is blocked.
  const iwaPool = input.pools?.find((p) => p.type === 'IWA');
  if (mode === 'REDIRECT_TO_BACKUP' && iwaPool && iwaPool.operationalStatus !== 'OPERATIONAL' && iwaProbes.length && iwaProbes.every(up)) {
    add({ code: 'IWA_HEALTH_CHECK_BLOCKED', severity: 'warning', title: 'The org shows an IWA web app offline that answers this device',
      evidence: [`agent pool ${iwaPool.name}: ${iwaPool.operationalStatus}; ${iwaPool.agents.filter((a) => a.operationalStatus !== 'OPERATIONAL').map((a) => `${a.name} ${a.operationalStatus}`).join(', ')}`, ...iwaProbes.map(evidenceOf)],
      cause: 'The AD agent\'s periodic health check cannot reach the IWA server although clients can: a firewall or security application on the IWA server, or an allowlist missing the identity provider\'s domains and IP addresses.',
      remedy: `Allow the AD agent host and ${IDP_DOMAINS.join(', ')} through the IWA server's firewall/security software; check IIS.`, probes: ['agent-pools', ...iwaProbes.map((p) => p.id)] });
  }
}

/** Kerberos, KDCs and DCs. */
function kerberosFindings(c: RuleContext): void {
  const { add, get, ofKind, enrolled, kerberosCodes } = c;
  const kUser = get('kerberos:user');
  const kDevice = get('kerberos:device');
  const kdcs = ofKind('kdc');
  const severityNeedingIwa: Severity = enrolled ? 'warning' : 'error';
  if ((kdcs.length && kdcs.every(down)) || kerberosCodes.includes('KDC_UNREACHABLE')) {
    add({ code: 'KDC_UNREACHABLE', severity: severityNeedingIwa, title: 'No Kerberos domain controller (KDC) answers',
      evidence: [...kdcs.map(evidenceOf), ...[kUser, kDevice].filter((p) => p?.error?.code === 'KDC_UNREACHABLE').map((p) => evidenceOf(p!))],
      cause: 'This device is not on the corporate network (or VPN), or a firewall blocks Kerberos (port 88) to the domain controllers.',
      remedy: 'Connect to the corporate network or VPN. Enrollment needs Kerberos; renewal of a valid certificate does not.', probes: [...kdcs.map((p) => p.id), ...(kUser ? [kUser.id] : [])] });
  } else if (kUser?.error?.code === 'KERBEROS_NO_TICKET') {
    add({ code: 'NO_KERBEROS_TICKET', severity: severityNeedingIwa, title: 'No Kerberos ticket for the logged-on user', evidence: [evidenceOf(kUser)],
      cause: 'The user did not sign in to the domain (local account, not domain-joined, or signed in off the corporate network) or the ticket expired.',
      remedy: 'Sign in with the domain account on the corporate network or VPN (klist shows a ticket; kinit gets one). Enrollment needs it; renewal does not.', probes: [kUser.id] });
  }
  if (kUser?.error?.code === 'KERBEROS_NOT_INSTALLED') {
    add({ code: 'KERBEROS_NOT_INSTALLED', severity: 'warning', title: 'Kerberos support is not installed', evidence: [evidenceOf(kUser)],
      cause: 'The Kerberos libraries the agent uses for integrated Windows authentication are missing.', remedy: 'Install MIT Kerberos (Debian: libkrb5-3, krb5-user) and reinstall the agent.', probes: [kUser.id] });
  }
  if (kDevice?.error?.code === 'DEVICE_KEYTAB_MISSING') {
    add({ code: 'NOT_DOMAIN_JOINED', severity: enrolled ? 'info' : 'warning', title: 'This device does not look domain-joined', evidence: [evidenceOf(kDevice)],
      cause: 'There is no machine keytab, so the device cannot prove its machine identity to the IWA web app.', remedy: 'Join the device to the domain (realm join / adcli join), which writes /etc/krb5.keytab.', probes: [kDevice.id] });
  }
  const srv = get('dc:srv');
  if (srv?.error?.code === 'SRV_NOT_FOUND') {
    add({ code: 'DC_NOT_DISCOVERABLE', severity: 'info', title: 'Domain controllers cannot be found through DNS', evidence: [evidenceOf(srv)],
      cause: 'The DNS servers in use are not the domain\'s: the device is off the corporate network, or the VPN does not push the corporate DNS.', remedy: 'Connect to the corporate network or VPN; check that its DNS servers are in use.', probes: [srv.id] });
  }
  for (const dc of ofKind('dc').filter((p) => p.id !== 'dc:srv' && down(p))) {
    add({ code: 'DC_PORTS_BLOCKED', severity: 'warning', title: `Domain controller ${dc.target} is not fully reachable`, evidence: [evidenceOf(dc), `ports: ${JSON.stringify(dc.facts.ports ?? {})}`],
      cause: 'A firewall between this device and the domain controller blocks Kerberos (88) or LDAP (389).', remedy: 'Allow TCP/UDP 88 and TCP 389/636 to the domain controllers.', probes: [dc.id] });
  }
}

/** Clocks. */
function clockFindings(c: RuleContext): void {
  const { add, ofKind, kerberosCodes } = c;
  const clocks = ofKind('clock').filter((p) => typeof p.facts.skewMs === 'number');
  const worstClock = clocks.sort((a, b) => Math.abs(b.facts.skewMs as number) - Math.abs(a.facts.skewMs as number))[0];
  const kerberosSkew = kerberosCodes.includes('CLOCK_SKEW');
  if ((worstClock && Math.abs(worstClock.facts.skewMs as number) >= CLOCK_SKEW_WARNING_MS) || kerberosSkew) {
    const skew = worstClock ? (worstClock.facts.skewMs as number) : undefined;
    const big = kerberosSkew || (skew !== undefined && Math.abs(skew) >= CLOCK_SKEW_ERROR_MS);
    add({ code: 'CLOCK_SKEW', severity: big ? 'error' : 'warning',
      title: skew !== undefined ? `This device's clock is ${fmtDuration(skew)} ${skew > 0 ? 'behind' : 'ahead of'} ${worstClock!.id === 'clock:org' ? 'the org' : 'the domain controller'}` : 'Kerberos reports clock skew',
      evidence: [...clocks.map((c) => `${c.id}: ${c.facts.source} says the other side is ${((c.facts.skewMs as number) / 1000).toFixed(1)} s ${(c.facts.skewMs as number) >= 0 ? 'ahead' : 'behind'}`),
        ...(kerberosSkew ? ['Kerberos: clock skew too great'] : [])],
      cause: 'The system clock is wrong or not synchronised. Kerberos refuses tickets past 5 minutes of skew; SAML assertions and certificate validity checks fail too.',
      remedy: 'Enable time synchronisation with the domain\'s time source (timedatectl set-ntp true / w32tm /resync), then run again.', probes: clocks.map((c) => c.id) });
  }
}

/** The proxy route itself. */
function proxyRouteFindings(c: RuleContext): void {
  const { input, add, get } = c;
  const routeFailed = input.probes.filter((p) => ROUTE_CODES.test(p.error?.code ?? ''));
  if (routeFailed.length) {
    const silent = routeFailed.some((p) => p.error?.code === 'PROXY_NO_ANSWER');
    const pac = routeFailed.some((p) => /^PAC_/.test(p.error?.code ?? ''));
    add({ code: pac ? 'PAC_FAILED' : silent ? 'PROXY_NO_ANSWER' : 'PROXY_FAILED', severity: 'error',
      title: pac ? 'The PAC file cannot be used' : silent ? 'The proxy accepts connections but never answers' : 'The proxy on the way to the identity provider fails',
      evidence: routeFailed.map(evidenceOf),
      cause: pac ? 'The configured PAC file cannot be fetched or evaluated (see the evidence), so no route can be chosen.'
        : silent ? 'The configured proxy takes the TCP connection and then says nothing: it is overloaded, misconfigured, or a firewall blackholes traffic behind it.'
          : 'The configured proxy cannot be reached, refuses the destination, or wants credentials it did not get.',
      remedy: 'Check the proxy setting (HttpProxy=, HttpProxyPacLocation=, HTTPS_PROXY or the system proxy) and the proxy itself with the network admin; device-trust-agent proxy-check shows each step.',
      probes: routeFailed.map((p) => p.id) });
  }
}

/** TLS. */
function tlsFindings(c: RuleContext): void {
  const { input, add, get } = c;
  const tlsUntrusted = input.probes.filter((p) => p.error?.code === 'TLS_UNTRUSTED');
  const seen = (p: ProbeResult) => p.facts.interception as { host: string; issuer: string; exempt: string[]; published?: boolean } | undefined;
  const mtls = get('mtls');
  const stripped = mtls?.facts.trusted === false && mtls.facts.reason === 'no-certificate';
  // Named by a known interceptor's issuer on the direct TLS stage, or by the HTTP client's own finding
  // (a chain that does not verify, on any route); the stripped client certificate is evidence of its own.
  const intercepted = input.probes.filter((p) => !(p === mtls && stripped) &&
    (INTERCEPTOR_ISSUERS.test(((p.facts.tls as TlsFacts | undefined)?.chain ?? []).map((c) => c.issuer).join(' ')) || Boolean(seen(p))));
  if (stripped || intercepted.length) {
    const strippedBy = stripped ? seen(mtls!) : undefined;
    const exempt = [...new Set([...input.probes.flatMap((p) => seen(p)?.exempt ?? []),
      ...[input.org ? host(input.org.mtls.url) : undefined, input.orgUrl ? host(input.orgUrl) : undefined, ...IDP_DOMAINS].filter((x): x is string => Boolean(x)).map((h) => h.replace(/:\d+$/, ''))])];
    add({ code: 'TLS_INTERCEPTION', severity: 'error', title: 'A TLS-intercepting proxy or security product sits between this device and the identity provider',
      evidence: [
        ...(stripped ? [`mtls: certificate ${String(mtls!.facts.presented)} was presented, but the mTLS endpoint saw no client certificate${strippedBy ? `; the certificate presented for ${strippedBy.host} is issued by "${strippedBy.issuer}" (a CA this machine trusts)` : ''}`] : []),
        ...intercepted.map((p) => seen(p)
          ? `${p.id}: the certificate presented for ${seen(p)!.host} is issued by "${seen(p)!.issuer}"${seen(p)!.published === false ? ', not by a CA the org publishes for its TLS servers (a CA this machine trusts)' : ''}`
          : `${p.id}: the server certificate was issued by "${(p.facts.tls as TlsFacts).chain.map((c) => c.issuer).find((i) => INTERCEPTOR_ISSUERS.test(i))}"`),
      ],
      cause: 'Something terminates TLS on the way and re-signs it with its own certificate authority; it cannot pass the device certificate on, so mutual TLS (device trust) fails.',
      remedy: `Exempt ${exempt.join(', ')} from TLS inspection in the proxy / endpoint-protection policy.`,
      probes: [...(stripped ? ['mtls'] : []), ...intercepted.map((p) => p.id)] });
  }
  // Pins the org published and then withdrew or replaced (live discovery only: a cached answer proves nothing).
  const pinChange = input.org && !input.orgFromCache && input.orgUrl ? pinChangeFinding(publishedPins(input.org), input.rememberedPins, host(input.orgUrl)) : undefined;
  if (pinChange) {
    add({ code: pinChange.code, severity: 'warning', title: 'The CAs the org publishes for its TLS servers changed since this device remembered them',
      evidence: [`org: ${pinChange.message}`], cause: 'The org changed or withdrew its serverTls pins, or something between this device and the org rewrites its discovery answer.',
      remedy: pinChange.remedy ?? 'Ask the org admin.', probes: ['org'] });
  }
  if (tlsUntrusted.length) {
    add({ code: 'TLS_UNTRUSTED', severity: 'error', title: 'A server certificate on the way to the identity provider is not trusted', evidence: tlsUntrusted.map(evidenceOf),
      cause: 'A TLS-inspecting proxy or security product whose CA this device does not trust, a missing corporate trust anchor (tlsCaFile), or a clock far off.',
      remedy: 'Exempt the identity provider from TLS inspection; if the server is internal (IWA), install its CA certificate (tlsCaFile); check the clock.', probes: tlsUntrusted.map((p) => p.id) });
  }
}

/** The certificate. */
function certificateFindings(c: RuleContext): void {
  const { add, get, now, enrolled } = c;
  const certProbe = get('certificate');
  const mtls = get('mtls');
  const facts = certProbe?.facts ?? {};
  const lastRun = facts.lastRun as { code?: string; message?: string; at?: string } | undefined;
  if (certProbe?.status === 'ok') {
    const current = facts.current as { serialNumber: string; notAfter: string; renewFrom?: string } | undefined;
    if (!enrolled) {
      add({ code: 'CERT_MISSING', severity: 'error', title: 'No device certificate is installed', evidence: [`${certProbe.target}: no certificate issued by ${String(facts.issuerCN)}`, ...(lastRun ? [`last run ${lastRun.at}: ${lastRun.message}`] : [])],
        cause: lastRun?.code ? `The last enrollment attempt failed (${lastRun.code}).` : 'The device has not enrolled yet.', remedy: 'Run: device-trust-agent run (on the corporate network); the findings above say what blocks it.', probes: ['certificate'] });
    }
    if (Number(facts.count) > 1) {
      add({ code: 'CERT_DUPLICATED', severity: 'warning', title: `${String(facts.count)} device-trust certificates are installed`, evidence: (facts.certificates as { serialNumber: string; notAfter: string }[]).map((c) => `serial ${c.serialNumber}, valid until ${c.notAfter}`),
        cause: 'A run was interrupted, or a certificate was imported by hand. Browsers may present the wrong one.', remedy: 'Run: device-trust-agent run (it keeps one and removes the rest).', probes: ['certificate'] });
    }
    if (current) {
      const left = Date.parse(current.notAfter) - now;
      if (left <= 0) {
        add({ code: 'CERT_EXPIRED', severity: 'error', title: 'The device certificate has expired', evidence: [`serial ${current.serialNumber} expired on ${current.notAfter}`],
          cause: 'It was not renewed in time (the device was off the corporate network or the org was unreachable during the renewal window).', remedy: 'Run: device-trust-agent run (it enrolls afresh; needs IWA).', probes: ['certificate'] });
      } else if (left <= EXPIRY_WARNING_MS || (current.renewFrom && Date.parse(current.renewFrom) <= now)) {
        add({ code: 'CERT_EXPIRING', severity: 'warning', title: `The device certificate expires in ${fmtDuration(left)}`, evidence: [`serial ${current.serialNumber} valid until ${current.notAfter}${current.renewFrom ? `; renewal due since ${current.renewFrom}` : ''}`],
          cause: 'Renewal is due and has not happened yet.', remedy: 'Make sure the org is reachable; run: device-trust-agent run (renewal needs the org, not IWA).', probes: ['certificate'] });
      }
      if (facts.keyPresent === false) {
        add({ code: 'CERT_KEY_MISSING', severity: 'error', title: 'The private key of the device certificate is gone', evidence: [`serial ${current.serialNumber}: no key file in the agent's credential store`],
          cause: 'The key file was deleted or the profile was restored without it; the certificate cannot be presented or renewed.', remedy: 'Run: device-trust-agent run --forceRenewal', probes: ['certificate'] });
      }
    }
  }
  const crl = get('crl');
  if (crl?.facts.revoked === true || mtls?.facts.reason === 'revoked') {
    add({ code: 'CERT_REVOKED', severity: 'error', title: 'The device certificate has been revoked', evidence: [crl?.facts.revoked ? `crl: serial ${String(crl.facts.serialNumber)} revoked at ${String(crl.facts.revokedAt)}` : '', mtls?.facts.reason === 'revoked' ? 'mtls: the endpoint says revoked' : ''].filter(Boolean),
      cause: 'An administrator revoked it, or the user was deactivated (which revokes the user\'s certificates). A revoked certificate stays on the device.',
      remedy: 'If the device should be trusted again: device-trust-agent run --forceRenewal', probes: ['crl', 'mtls'] });
  } else if (mtls?.facts.trusted === false && mtls.facts.reason && mtls.facts.reason !== 'no-certificate') {
    add({ code: 'CERT_NOT_TRUSTED', severity: 'error', title: `The mTLS endpoint does not trust the device certificate (${String(mtls.facts.reason)})`, evidence: [evidenceOf(mtls), `reason: ${String(mtls.facts.reason)}`],
      cause: 'The certificate is not one the org issued and still considers valid.', remedy: 'Run: device-trust-agent run --forceRenewal', probes: ['mtls'] });
  }
  if (down(mtls) && mtls!.error?.code !== 'TLS_INTERCEPTED') {
    add({ code: 'MTLS_UNREACHABLE', severity: 'error', title: 'The mTLS endpoint cannot be reached', evidence: [evidenceOf(mtls!)],
      cause: 'Browsers cannot present the device certificate to the identity provider: network, firewall or proxy.', remedy: `Allow ${host(mtls!.target)} through firewalls and exempt it from TLS inspection.`, probes: ['mtls'] });
  }
  if (down(crl)) {
    add({ code: 'CRL_UNREACHABLE', severity: 'warning', title: 'The revocation list (CRL) cannot be fetched', evidence: [evidenceOf(crl!)],
      cause: 'Network, firewall or proxy between this device and the CRL location.', remedy: `Allow ${host(crl!.target)}; revocation is checked again on the next run.`, probes: ['crl'] });
  }
  if (lastRun?.code === 'USER_NOT_ACTIVE') {
    add({ code: 'USER_NOT_ACTIVE', severity: 'error', title: 'The org says the user is not active', evidence: [`last run ${lastRun.at}: ${lastRun.message}`],
      cause: 'The user is suspended or deactivated in the org (deactivation also revokes the user\'s certificates).', remedy: 'Ask an admin to reactivate the user, then run: device-trust-agent run', probes: ['certificate'] });
  }

  if (lastRun?.code === 'CA_CHANGED') {
    add({ code: 'CA_CHANGED', severity: 'error', title: 'The org publishes a CA the previous CA does not vouch for; renewal is refused', evidence: [`last run ${lastRun.at}: ${lastRun.message}`],
      cause: 'The org replaced its CA without a rollover (no certificate signed or cross-signed by the old CA), TLS interception, or a wrong org URL.',
      remedy: 'If the change is genuine, an admin adds the new CA\'s SHA-256 fingerprint to caRolloverFingerprints in the managed configuration.', probes: ['certificate'] });
  }
}

/** Agent pools (AD / IWA agents) and delegated authentication. */
function agentPoolFindings(c: RuleContext): void {
  const { input, add, get, now } = c;
  const poolsP = get('agent-pools');
  const keyring = poolsP?.facts.keyring as { ok: boolean; message?: string } | undefined;
  if (keyring && !keyring.ok) {
    add({ code: 'KEYRING_UNAVAILABLE', severity: 'warning', title: 'The OS keyring is not available, so agent status was not read', evidence: [keyring.message ?? ''],
      cause: 'No Secret Service / keychain is running or unlocked in this session. The agent never keeps the admin token in a plain file instead.',
      remedy: 'Run diagnostics in a desktop session with an unlocked keyring (GNOME Keyring, KWallet, KeePassXC; Keychain; Credential Manager).', probes: ['agent-pools'] });
  } else if (poolsP?.facts.tokenStored === false) {
    add({ code: 'NO_ADMIN_TOKEN', severity: 'info', title: 'AD/IWA agent status was not read (no admin API token)', evidence: ['no admin API token in the OS keyring for this org'],
      cause: 'Reading agent pools needs a read-only admin API token.', remedy: 'Store one: device-trust-agent admin-token set (reads it from standard input).', probes: ['agent-pools'] });
  }
  if (poolsP?.error?.code === 'ADMIN_TOKEN_REJECTED' || poolsP?.error?.code === 'ADMIN_TOKEN_FORBIDDEN') {
    const rejected = poolsP.error.code === 'ADMIN_TOKEN_REJECTED';
    add({ code: poolsP.error.code, severity: 'warning', title: rejected ? 'The org refused the stored admin API token' : 'The admin API token may not read agent pools', evidence: [evidenceOf(poolsP)],
      cause: rejected ? 'The token was revoked, expired (unused API tokens expire), or belongs to another org.' : 'The token\'s admin role cannot read directory agents.',
      remedy: rejected ? 'Create a new token (read-only admin) and store it: device-trust-agent admin-token set' : 'Use a token of a read-only (or higher) administrator.', probes: ['agent-pools'] });
  }
  for (const pool of (input.pools ?? []).filter((p) => p.type === 'AD')) {
    const operational = pool.agents.filter((a) => a.operationalStatus === 'OPERATIONAL');
    const agentsEv = pool.agents.map((a) => `agent ${a.name}: ${a.operationalStatus}, last connection ${a.lastConnection ? new Date(a.lastConnection).toISOString() : 'never'}${a.version ? `, version ${a.version}` : ''}`);
    if (pool.agents.length && operational.length === 0) {
      const s = input.lastSignIn;
      const ends = s ? Date.parse(s.at) + DELEGATED_AUTH_WINDOW_MS : undefined;
      const open = ends !== undefined && ends > now;
      add({ code: 'AD_AGENTS_DOWN', severity: open ? 'warning' : 'error', title: `All AD agents of ${pool.name} are disconnected`,
        evidence: [`pool ${pool.name}: ${pool.operationalStatus}`, ...agentsEv,
          s ? `last successful sign-in this agent saw: ${s.at} (${s.how}${s.principal ? `, ${s.principal}` : ''})` : 'this agent has seen no successful sign-in',
          ...(ends !== undefined ? [`delegated-authentication window ${open ? 'ends' : 'ended'} ${new Date(ends).toISOString()} (${open ? 'in ' : ''}${fmtDuration(ends - now)}${open ? '' : ' ago'})`] : [])],
        cause: 'No AD agent can verify passwords in real time. Users with delegated authentication can still sign in with their password for up to 5 days after their last successful password sign-in (a cached hash), '
          + 'unless they change or reset their password, are suspended, deactivated or disabled in AD, or the 5-day cache expires. Desktop SSO sign-ins do not refresh that cache, so the window may end earlier than shown.',
        remedy: 'Restore the AD agents (service running, network to the org, allowlist of the identity provider\'s domains). Until then, users should not change passwords.', probes: ['agent-pools'] });
    } else if (operational.length < pool.agents.length) {
      add({ code: 'AD_AGENTS_DEGRADED', severity: 'info', title: `Some AD agents of ${pool.name} are disconnected`, evidence: agentsEv,
        cause: 'The remaining agents carry the load; there is less redundancy.', remedy: 'Restore the disconnected agents.', probes: ['agent-pools'] });
    }
  }
}

/** Access gateway. */
function gatewayFindings(c: RuleContext): void {
  const { add, get, now } = c;
  const gw = get('gateway');
  if (gw && gw.status !== 'skipped') {
    if (down(gw)) {
      add({ code: 'GATEWAY_UNREACHABLE', severity: 'error', title: 'The access gateway\'s authentication service does not answer', evidence: [evidenceOf(gw)],
        cause: 'The gateway (or its authentication service) is down or not reachable from here; offline mode cannot take over.', remedy: 'Check the access gateway nodes and their authentication service.', probes: ['gateway'] });
    } else if (gw.facts.status !== 'HEALTHY') {
      add({ code: 'GATEWAY_UNHEALTHY', severity: 'error', title: `The access gateway's authentication service reports ${String(gw.facts.status)}`, evidence: [`gateway: status ${String(gw.facts.status)}, last checked ${String(gw.facts.lastChecked ?? 'never')}`],
        cause: 'Offline-mode authentication (local directory, MySQL database) is not working.', remedy: 'Check the authentication service: its database and the offline directory connection (test-directory-connection).', probes: ['gateway'] });
    } else if (typeof gw.facts.lastChecked === 'string' && now - Date.parse(gw.facts.lastChecked) > GATEWAY_STALE_MS) {
      add({ code: 'GATEWAY_STALE', severity: 'warning', title: 'The access gateway\'s health status is stale', evidence: [`last checked ${gw.facts.lastChecked}`],
        cause: 'The gateway has not re-checked its authentication service recently.', remedy: 'Check the gateway\'s health-check scheduler.', probes: ['gateway'] });
    }
  }
}

/** Turns probe results into findings: what is wrong, the evidence, the likely cause and what to do. */
export function evaluateFindings(input: FindingsInput): Finding[] {
  const out: Finding[] = [];
  const byId = new Map(input.probes.map((p) => [p.id, p]));
  const get = (id: string) => byId.get(id);
  const iwaProbes = input.probes.filter((p) => p.kind === 'iwa');
  const authCode = (p: ProbeResult) => (p.facts.auth as { ok?: boolean; code?: string } | undefined)?.code;
  const c: RuleContext = {
    input,
    add: (f) => out.push(f),
    get,
    ofKind: (kind) => input.probes.filter((p) => p.kind === kind),
    now: input.now.getTime(),
    enrolled: Number(get('certificate')?.facts.count ?? 0) > 0,
    iwaProbes,
    kerberosCodes: [get('kerberos:user')?.error?.code, get('kerberos:device')?.error?.code, ...iwaProbes.map(authCode)].filter(Boolean) as string[],
  };
  // In this order: findings of equal severity are listed as the rules add them.
  for (const rules of [orgFindings, iwaFindings, kerberosFindings, clockFindings, proxyRouteFindings, tlsFindings, certificateFindings, agentPoolFindings, gatewayFindings]) rules(c);
  out.push(...tpmFindings(get('tpm')));
  return out.sort((a, b) => SEVERITY_RANK[b.severity] - SEVERITY_RANK[a.severity]);
}

export function worstSeverity(findings: Finding[]): 'ok' | Severity {
  return findings.reduce<'ok' | Severity>((w, f) => (SEVERITY_RANK[f.severity] > SEVERITY_RANK[w] ? f.severity : w), 'ok');
}
