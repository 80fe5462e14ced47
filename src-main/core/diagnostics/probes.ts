import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { KerberosError, kerberosAvailable, negotiateAuthorization } from '../auth/negotiate.js';
import type { Config } from '../config.js';
import { CredentialFiles } from '../certificates/credentials.js';
import { isAgentError } from '../../base/errors.js';
import type { CommandRunner } from '../../base/exec.js';
import { writeFileAtomic } from '../../base/fsutil.js';
import { parseJsonAnswer, type HttpClient, type HttpResponse } from '../net/http.js';
import { labSignInAllowed } from '../auth/iwa.js';
import { MtlsCheckAnswerSchema, OrgConfigSchema, type OrgConfig } from '../enrollment/protocol.js';
import { chainFinding, pinBasis, pinsInForce } from '../net/server-chain.js';
import { strippedCertificateFinding } from '../proxy/diagnose.js';
import { mtlsCredential } from '../net/mtls.js';
import { redactUserInfo } from '../proxy/env.js';
import type { SecretStore } from '../secrets/index.js';
import { adminTokenName } from '../secrets/index.js';
import { StateSchema, stateFile, type AgentState, type RememberedPins } from '../state/state.js';
import type { Platform } from '../../platform/types.js';
import { klistCommand, lookupSrv, parseKlist, sntpOffset, splitHostPort, srvNames, type Krb5Conf } from './directory.js';
import { dnsStage, hostPort, messageOf, ProbeSkipped, runProbe, StageFailure, tcpConnect, tcpStage, tlsStage, withTimeout, type ProbeRecorder, type TlsFacts } from './stages.js';
import { AgentPoolsAnswerSchema, type AgentPool, type ProbeResult } from './types.js';

/** Everything a probe may use; built once per diagnose run. */
export interface ProbeContext {
  config: Config;
  orgUrl: string | undefined;
  http: HttpClient;
  /** Trust anchors for the direct TLS stage (the same HttpClient uses). */
  roots: string[];
  timeoutMs: number;
  /** The deadline of a probe whose requests go through the proxy route: `timeoutMs`, plus the PAC budget when a PAC file chooses the route. */
  routedTimeoutMs?: number;
  env: NodeJS.ProcessEnv;
  platform: Platform | undefined;
  secrets: SecretStore | undefined;
  runner: CommandRunner;
  dnsServers?: string[];
  ntpPort: number;
  /** Whether traffic to this URL goes direct (DNS/TCP/TLS can then be measured on their own) or via a proxy. */
  direct: (url: string) => boolean;
  now: () => Date;
  /** serverTlsPins came from managed configuration (honoured only then); the pins remembered in state. */
  managedPins?: boolean;
  rememberedPins?: RememberedPins | undefined;
}

export const ORG_CACHE_FILE = 'diagnostics-org.json';

/** Direct DNS → TCP → TLS stages (skipped, with the reason, when a proxy carries the traffic), then the caller's HTTP. */
async function connectStages(ctx: ProbeContext, rec: ProbeRecorder, url: string): Promise<TlsFacts | undefined> {
  const { host, port, servername } = hostPort(url);
  if (!ctx.direct(url)) {
    // Never the proxy's user-info: the report is printed and saved.
    const via = redactUserInfo(ctx.config.httpProxy ?? ctx.config.httpProxyPacLocation ?? 'the proxy');
    for (const name of ['dns', 'tcp', 'tls'] as const) rec.skip(name, `${name.toUpperCase()} ${host}:${port}`, `through ${via}: part of the HTTP stage`);
    return undefined;
  }
  const address = await dnsStage(rec, host, ctx.timeoutMs);
  await tcpStage(rec, address, port, ctx.timeoutMs);
  if (new URL(url).protocol !== 'https:') return undefined;
  const facts = await tlsStage(rec, address, port, servername ?? (host === address ? undefined : host), ctx.roots, ctx.timeoutMs);
  rec.facts.tls = facts;
  return facts;
}

async function httpStage(rec: ProbeRecorder, label: string, fn: () => Promise<HttpResponse>): Promise<HttpResponse> {
  return rec.stage('http', label, fn, (r) => `HTTP ${r.status}`);
}

function errorSummary(res: HttpResponse): { code: string; summary: string } {
  try {
    const j = JSON.parse(res.body.toString('utf8')) as { errorCode?: unknown; errorSummary?: unknown };
    return { code: typeof j.errorCode === 'string' ? j.errorCode : `HTTP_${res.status}`, summary: typeof j.errorSummary === 'string' ? j.errorSummary : '' };
  } catch {
    return { code: `HTTP_${res.status}`, summary: '' };
  }
}

function pathOf(url: string): string {
  return new URL(url).pathname;
}

// --- the org (discovery) and the clock against it ---

export interface OrgProbeOutcome {
  result: ProbeResult;
  /** The org's answer now (undefined when it did not answer). */
  org: OrgConfig | undefined;
  clock: ProbeResult | undefined;
}

export async function probeOrg(ctx: ProbeContext): Promise<OrgProbeOutcome> {
  let org: OrgConfig | undefined;
  let dateHeader: string | undefined;
  let midpoint = 0;
  const url = ctx.orgUrl ? `${ctx.orgUrl}/api/v1/device-trust/config` : '';
  const result = await runProbe({ id: 'org', kind: 'org', target: url || '(no org URL configured)', deadlineMs: routed(ctx) }, async (rec) => {
    if (!ctx.orgUrl) throw new ProbeSkipped('no org URL is configured');
    await connectStages(ctx, rec, url);
    const t0 = ctx.now().getTime();
    const res = await httpStage(rec, `GET ${pathOf(url)}`, () => ctx.http.send({ url, what: 'the org' }));
    midpoint = (t0 + ctx.now().getTime()) / 2;
    const date = res.headers.date;
    dateHeader = Array.isArray(date) ? date[0] : date;
    rec.facts.httpStatus = res.status;
    if (res.status !== 200) {
      const { code, summary } = errorSummary(res);
      throw new StageFailure(code, `the org answered HTTP ${res.status}${summary ? `: ${summary}` : ''}`);
    }
    org = parseJsonAnswer(OrgConfigSchema, res.body, 'the org', new URL(url).host);
    rec.facts.orgName = org.orgName;
    rec.facts.readOnly = org.readOnly;
    rec.facts.failoverMode = org.iwa.failoverMode;
  });
  if (org) {
    try {
      writeFileAtomic(path.join(ctx.config.stateDir, ORG_CACHE_FILE), JSON.stringify({ orgUrl: ctx.orgUrl, at: ctx.now().toISOString(), org }) + '\n');
    } catch {
      /* the cache only helps when the org is down, and to start the other probes early */
    }
  }
  let clock: ProbeResult | undefined;
  if (dateHeader) {
    const serverMs = Date.parse(dateHeader);
    // The Date header has one-second resolution: the server's clock is somewhere in [date, date + 1 s).
    const skewMs = Number.isNaN(serverMs) ? undefined : serverMs + 500 - midpoint;
    clock = {
      id: 'clock:org', kind: 'clock', target: ctx.orgUrl!, status: skewMs === undefined ? 'fail' : 'ok', ms: 0,
      stages: [{ name: 'http', label: 'HTTP Date header of the org', status: skewMs === undefined ? 'fail' : 'ok', ms: 0, detail: dateHeader }],
      facts: { source: 'HTTP Date', serverTime: dateHeader, ...(skewMs !== undefined ? { skewMs: Math.round(skewMs), resolutionMs: 1000 } : {}) },
      ...(skewMs === undefined ? { error: { code: 'DATE_UNREADABLE', message: `the org's Date header "${dateHeader}" cannot be read` } } : {}),
    };
  }
  return { result, org, clock };
}

/** The org's last discovery answer: where the IWA, mTLS and CRL live, so they can be probed without waiting (or when the org is down). */
export function readOrgCache(ctx: ProbeContext): OrgConfig | undefined {
  if (!ctx.orgUrl) return undefined;
  try {
    const cached = JSON.parse(fs.readFileSync(path.join(ctx.config.stateDir, ORG_CACHE_FILE), 'utf8')) as { orgUrl?: string; org?: unknown };
    const parsed = OrgConfigSchema.safeParse(cached.org);
    return cached.orgUrl === ctx.orgUrl && parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

/** Whether probes run against `a` are valid for `b`: the same targets and trust. */
export function sameTargets(a: OrgConfig, b: OrgConfig): boolean {
  const pick = (o: OrgConfig) => JSON.stringify([o.lab ?? false, o.iwa, o.mtls.url, o.crlUrl ?? null, o.ca]);
  return pick(a) === pick(b);
}

// --- IWA web apps ---

/** The lab-only sign-in header, when the config asks for it and the org is a lab org on loopback (as the agent does). */
function labAuthorization(ctx: ProbeContext, org: OrgConfig): string | undefined {
  if (!ctx.config.labSignIn || !labSignInAllowed(org)) return undefined;
  const principal = `${ctx.env.USER || 'alice'}@LAB.TEST`;
  return `LabSignIn ${Buffer.from(JSON.stringify({ principal })).toString('base64')}`;
}

function kerberosCode(e: unknown): string {
  if (!(e instanceof KerberosError)) return isAgentError(e) ? e.code : 'KERBEROS_FAILED';
  return { 'no-credentials': 'KERBEROS_NO_TICKET', 'kdc-unreachable': 'KDC_UNREACHABLE', 'clock-skew': 'CLOCK_SKEW', 'unknown-service': 'IWA_SPN_UNKNOWN', 'not-installed': 'KERBEROS_NOT_INSTALLED', other: 'KERBEROS_FAILED' }[e.kind];
}

export function probeIwa(ctx: ProbeContext, org: OrgConfig, base: string, id: string): Promise<ProbeResult> {
  const testPage = `${base.replace(/\/+$/, '')}/authenticated.aspx`;
  return runProbe({ id, kind: 'iwa', target: base, deadlineMs: routed(ctx) }, async (rec) => {
    rec.facts.role = id === 'iwa:primary' ? 'primary' : 'backup';
    await connectStages(ctx, rec, testPage);
    const anon = await httpStage(rec, `GET ${pathOf(testPage)} (no credentials)`, () => ctx.http.send({ url: testPage, what: 'the IWA web app', headers: { accept: 'text/plain, */*' } }));
    const challenge = String(anon.headers['www-authenticate'] ?? '');
    rec.facts.httpStatus = anon.status;
    rec.facts.negotiateOffered = /\bNegotiate\b/i.test(challenge);
    if (anon.status >= 500) throw new StageFailure('IWA_SERVER_ERROR', `the IWA web app answered HTTP ${anon.status} (IIS or the IWA application is failing)`);
    if (anon.status === 404) throw new StageFailure('IWA_TEST_PAGE_MISSING', `the IWA test page ${pathOf(testPage)} is not there (HTTP 404): is this URL the IWA web app?`);
    if (anon.status === 401 && !rec.facts.negotiateOffered) {
      throw new StageFailure('IWA_NO_NEGOTIATE', `the IWA web app asks for credentials but does not offer Negotiate (WWW-Authenticate: ${challenge || 'none'}): Windows Authentication is not enabled for it in IIS`);
    }
    // Authentication: a failure here says something about this device's credentials, not about the server.
    try {
      await rec.stage('auth', 'Negotiate round trip to the IWA test page', async () => {
        let authorization = labAuthorization(ctx, org);
        if (!authorization) {
          try {
            authorization = await negotiateAuthorization({ url: testPage });
          } catch (e) {
            throw new StageFailure(kerberosCode(e), messageOf(e));
          }
        }
        const res = await ctx.http.send({ url: testPage, what: 'the IWA web app', headers: { authorization, accept: 'text/plain, */*' } });
        if (res.status === 401) throw new StageFailure('IWA_AUTH_REJECTED', 'the IWA web app did not accept this user\'s Kerberos ticket (HTTP 401)');
        if (res.status !== 200) throw new StageFailure(`HTTP_${res.status}`, `the IWA test page answered HTTP ${res.status}`);
        const who = /Authenticated as\s+(\S+)/i.exec(res.body.toString('utf8'))?.[1];
        rec.facts.auth = { ok: true, via: authorization.split(' ')[0], ...(who ? { principal: who } : {}) };
        return who ?? 'authenticated';
      }, (who) => `authenticated as ${who}`);
    } catch (e) {
      rec.facts.auth = { ok: false, code: e instanceof StageFailure ? e.code : 'AUTH_FAILED', message: messageOf(e) };
    }
  });
}

// --- mTLS endpoint with the device certificate ---

export interface LocalCredential {
  certPem: string;
  keyPem: string | undefined;
  serialNumber: string;
  /** The key lives in a key store (TPM / token): the platform's TLS client presents it (Node's TLS cannot). */
  inKeyStore?: boolean;
  /** The key store's id of that key. */
  keyRef?: string;
}

/** The state as it is on disk, without the repairs `loadState` makes: diagnostics only look. */
export function peekState(stateDir: string): AgentState | undefined {
  try {
    const parsed = StateSchema.safeParse(JSON.parse(fs.readFileSync(stateFile(stateDir), 'utf8')));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

export function currentCredential(config: Config): LocalCredential | undefined {
  const cur = peekState(config.stateDir)?.current;
  if (!cur) return undefined;
  const creds = new CredentialFiles(config.stateDir);
  const certPem = creds.readCertificate(cur.thumbprint);
  if (!certPem) return undefined;
  const keyRef = creds.readKeyRef(cur.thumbprint);
  return { certPem, keyPem: creds.readKeyPem(cur.thumbprint), serialNumber: cur.serialNumber, ...(keyRef ? { inKeyStore: true, keyRef } : {}) };
}

export function probeMtls(ctx: ProbeContext, org: OrgConfig, cred: LocalCredential | undefined): Promise<ProbeResult> {
  const url = org.mtls.url;
  return runProbe({ id: 'mtls', kind: 'mtls', target: url, deadlineMs: routed(ctx) }, async (rec) => {
    const present = cred ? mtlsCredential(cred, ctx.platform?.keys) : undefined;
    const cannot = !cred ? 'no device certificate is enrolled'
      : present && 'unavailable' in present ? (cred.inKeyStore ? `the device key is in the key store (TPM or PKCS#11 token) and ${present.unavailable}` : 'the private key of the device certificate is missing') : undefined;
    if (cannot || !present || 'unavailable' in present) {
      // Without a certificate to present, the route and the TLS chain can still be checked against the org's published one.
      const set = pinsInForce(org, ctx.config, ctx.managedPins === true, ctx.rememberedPins);
      const why = cannot ?? 'no key to present';
      if (!set) throw new ProbeSkipped(why);
      await connectStages(ctx, rec, url);
      const res = await httpStage(rec, `GET ${pathOf(url)} without a client certificate (TLS chain against the org's published issuers)`, () => ctx.http.send({ url, what: 'the mTLS endpoint' }));
      rec.facts.httpStatus = res.status;
      const host = new URL(url).host;
      const rule = await ctx.http.decide(url).then((d) => d.rule, () => undefined);
      const found = chainFinding({ host, what: 'the mTLS endpoint', chain: ctx.http.presentedChain(host), set, exemptHosts: ctx.orgUrl ? [new URL(ctx.orgUrl).host] : [], route: rule });
      if (found) {
        ctx.http.noteInterception(found.interception, found.error.message);
        rec.facts.interception = { host, issuer: found.interception.issuer, exempt: found.interception.exempt, published: false };
        throw new StageFailure('TLS_INTERCEPTED', found.error.message);
      }
      throw new ProbeSkipped(`${why}; the route works and the TLS chain presented for ${host} is issued by ${pinBasis(set)}`);
    }
    await connectStages(ctx, rec, url);
    const res = await httpStage(rec, `GET ${pathOf(url)} presenting certificate ${cred!.serialNumber}${'presenter' in present ? ` (key in its token, by ${present.presenter.description})` : ''}`, () =>
      'keyPem' in present ? ctx.http.send({ url, what: 'the mTLS endpoint' }, { certPem: present.certPem, keyPem: present.keyPem })
        : ctx.http.sendPresenting({ url, what: 'the mTLS endpoint' }, { certPem: present.certPem, presenter: present.presenter }));
    rec.facts.httpStatus = res.status;
    if (res.status !== 200) throw new StageFailure(`HTTP_${res.status}`, `the mTLS endpoint answered HTTP ${res.status}`);
    const answer = parseJsonAnswer(MtlsCheckAnswerSchema, res.body, 'the mTLS endpoint', new URL(url).host);
    rec.facts.presented = cred!.serialNumber;
    rec.facts.trusted = answer.trusted;
    if (!answer.trusted && answer.reason === 'no-certificate') {
      // Presented but not seen: something terminated TLS. Name it by who presented the mTLS host's certificate.
      const host = new URL(url).host;
      if (!ctx.http.presentedChain(host)) await ctx.http.send({ url, what: 'the mTLS endpoint' }).catch(() => undefined);
      const found = strippedCertificateFinding({ host, serialNumber: cred!.serialNumber, chain: ctx.http.presentedChain(host), exemptHosts: ctx.orgUrl ? [new URL(ctx.orgUrl).host] : [] });
      ctx.http.noteInterception(found.interception, found.error.message);
      rec.facts.interception = { host, issuer: found.interception.issuer, exempt: found.interception.exempt };
    }
    if (answer.reason) rec.facts.reason = answer.reason;
    if (answer.deviceId) rec.facts.deviceId = answer.deviceId;
  });
}

// --- CRL ---

export function probeCrl(ctx: ProbeContext, org: OrgConfig, cred: LocalCredential | undefined): Promise<ProbeResult> {
  const url = org.crlUrl ?? '';
  return runProbe({ id: 'crl', kind: 'crl', target: url || '(none published)', deadlineMs: routed(ctx) }, async (rec) => {
    if (!url) throw new ProbeSkipped('the org publishes no CRL location');
    await connectStages(ctx, rec, url);
    // Loaded here: revocation.js brings @peculiar/x509, which the other probes do not need.
    const { checkRevocation } = await import('../certificates/revocation.js');
    const rev = await rec.stage('http', `GET ${pathOf(url)} and verify the CRL`, () => checkRevocation(ctx.http, url, org.ca.chainPem, cred?.serialNumber ?? ''),
      (r) => `CRL of ${r.crlThisUpdate}${cred ? (r.revoked ? `; certificate ${cred.serialNumber} REVOKED` : `; certificate ${cred.serialNumber} not revoked`) : ''}`);
    rec.facts.thisUpdate = rev.crlThisUpdate;
    if (cred) {
      rec.facts.serialNumber = cred.serialNumber;
      rec.facts.revoked = rev.revoked;
      if (rev.revokedAt) rec.facts.revokedAt = rev.revokedAt;
    }
  });
}

// --- directory: KDCs from krb5.conf, DCs from DNS SRV, ports 88/389/636, their clocks ---

export interface DirectoryOutcome {
  probes: ProbeResult[];
  /** Hosts whose clocks can be read (DCs and KDCs). */
  timeSources: string[];
}

export async function probeDirectory(ctx: ProbeContext, krb5: Krb5Conf | undefined): Promise<DirectoryOutcome> {
  const probes: ProbeResult[] = [];
  const realm = krb5?.defaultRealm;
  const domain = ctx.config.adDomain ?? realm?.toLowerCase();
  const kdcEntries = realm ? (krb5?.kdcs[realm] ?? []) : Object.values(krb5?.kdcs ?? {}).flat();
  const hosts = new Set<string>();

  const kdcProbes = kdcEntries.map((entry) => {
    const { host, port } = splitHostPort(entry, 88);
    hosts.add(host);
    return runProbe({ id: `kdc:${host}:${port}`, kind: 'kdc', target: `${host}:${port}`, deadlineMs: ctx.timeoutMs }, async (rec) => {
      rec.facts.source = krb5?.file;
      rec.facts.realm = realm;
      const address = await dnsStage(rec, host, ctx.timeoutMs);
      await tcpStage(rec, address, port, ctx.timeoutMs);
    });
  });

  const srvProbe = async (): Promise<ProbeResult[]> => {
    if (!domain) return [];
    const names = srvNames(domain);
    let dcs: { name: string; port: number }[] = [];
    const srv = await runProbe({ id: 'dc:srv', kind: 'dc', target: domain, deadlineMs: ctx.timeoutMs }, async (rec) => {
      rec.facts.domain = domain;
      const found: Record<string, string[]> = {};
      await Promise.all(Object.entries(names).map(async ([what, name]) => {
        try {
          const targets = await rec.stage('dns', `SRV ${name}`, () => withTimeout(lookupSrv(name, ctx.dnsServers), ctx.timeoutMs, `SRV ${name}`),
            (t) => t.map((x) => `${x.name}:${x.port}`).join(', ') || 'none');
          found[what] = targets.map((t) => `${t.name}:${t.port}`);
          if (what === 'dc') dcs = targets.map((t) => ({ name: t.name, port: t.port }));
          if (what === 'kdc') for (const t of targets) hosts.add(t.name);
        } catch {
          found[what] = [];
        }
      }));
      rec.facts.records = found;
      if (!found.dc?.length && !found.kdc?.length) {
        throw new StageFailure('SRV_NOT_FOUND', `no domain controller SRV records for ${domain} (${names.dc}, ${names.kdc}): this DNS is not the domain's`);
      }
    });
    const dcProbes = dcs.map((dc) => {
      hosts.add(dc.name);
      return runProbe({ id: `dc:${dc.name}`, kind: 'dc', target: dc.name, deadlineMs: ctx.timeoutMs }, async (rec) => {
        const address = await dnsStage(rec, dc.name, ctx.timeoutMs);
        const ports: Record<string, boolean> = {};
        await Promise.all([88, 389, 636].map(async (port) => {
          try {
            await rec.stage('tcp', `TCP ${dc.name}:${port} (${port === 88 ? 'Kerberos' : port === 389 ? 'LDAP' : 'LDAPS'})`, () => tcpConnect(address, port, ctx.timeoutMs), () => 'connected');
            ports[port] = true;
          } catch {
            ports[port] = false;
          }
        }));
        rec.facts.ports = ports;
        if (!ports[88] || !ports[389]) throw new StageFailure('DC_PORTS_CLOSED', `${dc.name}: ${[88, 389].filter((p) => !ports[p]).map((p) => `port ${p}`).join(' and ')} not reachable`);
      });
    });
    return [srv, ...(await Promise.all(dcProbes))];
  };

  const [kdcResults, srvResults] = await Promise.all([Promise.all(kdcProbes), srvProbe()]);
  probes.push(...kdcResults, ...srvResults);
  return { probes, timeSources: [...hosts] };
}

export function probeDcClock(ctx: ProbeContext, host: string): Promise<ProbeResult> {
  return runProbe({ id: `clock:dc:${host}`, kind: 'clock', target: `${host}:${ctx.ntpPort}`, deadlineMs: ctx.timeoutMs }, async (rec) => {
    rec.facts.source = 'SNTP';
    try {
      const r = await rec.stage('ntp', `SNTP ${host}:${ctx.ntpPort}`, () => sntpOffset(host, ctx.ntpPort, ctx.timeoutMs),
        (x) => `offset ${(x.offsetMs / 1000).toFixed(1)} s, round trip ${x.rttMs.toFixed(0)} ms`);
      rec.facts.skewMs = Math.round(r.offsetMs);
      rec.facts.resolutionMs = Math.max(1, Math.round(r.rttMs));
    } catch (e) {
      // Not every DC answers NTP to clients; that is not a failure of the DC.
      throw new ProbeSkipped(`no time from ${host} over NTP (${messageOf(e)})`);
    }
  });
}

// --- Kerberos tickets ---

export async function probeKerberos(ctx: ProbeContext, org: OrgConfig | undefined): Promise<ProbeResult[]> {
  const lab = org ? labAuthorization(ctx, org) : undefined;
  const iwaUrl = org ? `${org.iwa.primary.replace(/\/+$/, '')}/authenticated.aspx` : undefined;
  const available = lab ? { ok: true } : await kerberosAvailable();

  const user = runProbe({ id: 'kerberos:user', kind: 'kerberos', target: 'the logged-on user', deadlineMs: ctx.timeoutMs }, async (rec) => {
    if (lab) throw new ProbeSkipped('lab-only sign-in is configured; Kerberos is not used');
    try {
      const out = await rec.stage('local', 'klist (credential cache)', async () => {
        const r = await ctx.runner(klistCommand());
        return { ...parseKlist(r.stdout), code: r.code, stderr: r.stderr.trim() };
      }, (k) => (k.principal ? `${k.principal}${k.tgtExpires ? `, TGT until ${k.tgtExpires.toISOString()}` : ', no TGT'}` : k.stderr || 'no credential cache'));
      if (out.principal) rec.facts.principal = out.principal;
      if (out.tgtExpires) rec.facts.tgtExpires = out.tgtExpires.toISOString();
      rec.facts.ccache = out.ccache ?? null;
    } catch {
      rec.skip('local', 'klist (credential cache)', 'klist is not installed');
    }
    if (!available.ok) throw new StageFailure('KERBEROS_NOT_INSTALLED', (available as { reason?: string }).reason ?? 'Kerberos support is not installed');
    if (!iwaUrl) throw new ProbeSkipped('the IWA web app is unknown (the org did not answer), so there is no service to ask a ticket for');
    await rec.stage('kerberos', `service ticket for HTTP@${new URL(iwaUrl).hostname}`, async () => {
      try {
        await negotiateAuthorization({ url: iwaUrl });
      } catch (e) {
        throw new StageFailure(kerberosCode(e), messageOf(e));
      }
    }, () => 'ticket obtained');
  });

  const device = runProbe({ id: 'kerberos:device', kind: 'kerberos', target: ctx.config.devicePrincipal ?? `host/${ctx.config.deviceName}`, deadlineMs: ctx.timeoutMs }, async (rec) => {
    if (lab) throw new ProbeSkipped('lab-only sign-in is configured; Kerberos is not used');
    const keytab = ctx.config.deviceKeytab;
    const present = await rec.stage('local', `keytab ${keytab}`, async () => fs.existsSync(keytab.replace(/^FILE:/, '')), (p) => (p ? 'present' : 'absent'));
    rec.facts.keytab = keytab;
    rec.facts.keytabPresent = present;
    if (!present) throw new StageFailure('DEVICE_KEYTAB_MISSING', `the machine keytab ${keytab} does not exist: this device does not look domain-joined`);
    if (!available.ok) throw new StageFailure('KERBEROS_NOT_INSTALLED', (available as { reason?: string }).reason ?? 'Kerberos support is not installed');
    if (!iwaUrl) throw new ProbeSkipped('the IWA web app is unknown (the org did not answer)');
    const principal = ctx.config.devicePrincipal ?? `host/${ctx.config.deviceName}`;
    await rec.stage('kerberos', `service ticket for HTTP@${new URL(iwaUrl).hostname} as ${principal}`, async () => {
      try {
        await negotiateAuthorization({ url: iwaUrl, principal, clientKeytab: keytab });
      } catch (e) {
        throw new StageFailure(kerberosCode(e), messageOf(e));
      }
    }, () => 'ticket obtained');
  });
  return Promise.all([user, device]);
}

// --- access gateway authentication-service health ---

export function probeGateway(ctx: ProbeContext): Promise<ProbeResult> {
  const url = ctx.config.gatewayHealthUrl ?? '';
  return runProbe({ id: 'gateway', kind: 'gateway', target: url || '(not configured)', deadlineMs: routed(ctx) }, async (rec) => {
    if (!url) throw new ProbeSkipped('no access gateway health URL is configured (gatewayHealthUrl)');
    await connectStages(ctx, rec, url);
    const res = await httpStage(rec, `GET ${pathOf(url)}`, () => ctx.http.send({ url, what: 'the access gateway' }));
    rec.facts.httpStatus = res.status;
    if (res.status !== 200) throw new StageFailure(`HTTP_${res.status}`, `the access gateway health check answered HTTP ${res.status}`);
    const health = parseJsonAnswer(z.object({ status: z.string().max(100), lastChecked: z.string().max(100).optional() }), res.body, 'the access gateway', new URL(url).host);
    rec.facts.status = health.status;
    if (health.lastChecked) rec.facts.lastChecked = health.lastChecked;
  });
}

// --- AD / IWA agent pools from the org, with the admin API token from the OS keyring ---

export interface PoolsOutcome {
  result: ProbeResult;
  pools: AgentPool[] | undefined;
}

export async function probeAgentPools(ctx: ProbeContext): Promise<PoolsOutcome> {
  let pools: AgentPool[] | undefined;
  const url = ctx.orgUrl ? `${ctx.orgUrl}/api/v1/agentPools` : '';
  const result = await runProbe({ id: 'agent-pools', kind: 'agent-pools', target: url || '(no org URL configured)', deadlineMs: routed(ctx) }, async (rec) => {
    if (!ctx.orgUrl) throw new ProbeSkipped('no org URL is configured');
    if (!ctx.secrets) throw new ProbeSkipped('no secret store');
    let token: string | undefined;
    try {
      token = await rec.stage('local', `admin API token from ${ctx.secrets.description}`, () => ctx.secrets!.get(adminTokenName(ctx.orgUrl!)), (t) => (t ? 'found' : 'none stored'));
    } catch (e) {
      rec.facts.keyring = { ok: false, code: isAgentError(e) ? e.code : 'KEYRING_UNAVAILABLE', message: messageOf(e) };
      throw new ProbeSkipped(`the OS keyring is not available: ${messageOf(e)}`);
    }
    rec.facts.keyring = { ok: true, store: ctx.secrets.description };
    if (!token) {
      rec.facts.tokenStored = false;
      throw new ProbeSkipped('no admin API token is stored (device-trust-agent admin-token set)');
    }
    rec.facts.tokenStored = true;
    const res = await httpStage(rec, 'GET /api/v1/agentPools (SSWS admin API token)', () =>
      ctx.http.send({ url, what: 'the org', headers: { authorization: `SSWS ${token}` } }));
    rec.facts.httpStatus = res.status;
    if (res.status === 401) throw new StageFailure('ADMIN_TOKEN_REJECTED', `the org refused the admin API token (HTTP 401${errorSummary(res).summary ? `: ${errorSummary(res).summary}` : ''})`);
    if (res.status === 403) throw new StageFailure('ADMIN_TOKEN_FORBIDDEN', 'the admin API token may not read agent pools (HTTP 403)');
    if (res.status !== 200) throw new StageFailure(`HTTP_${res.status}`, `the org answered HTTP ${res.status} for agent pools`);
    pools = parseJsonAnswer(AgentPoolsAnswerSchema, res.body, 'the org', new URL(url).host);
    rec.facts.pools = pools.map((p) => ({ type: p.type, name: p.name, operationalStatus: p.operationalStatus, agents: p.agents.length }));
  });
  return { result, pools };
}

const routed = (ctx: ProbeContext) => ctx.routedTimeoutMs ?? ctx.timeoutMs;

// --- the certificate on this device ---

export function probeCertificate(ctx: ProbeContext, org: OrgConfig | undefined): Promise<ProbeResult> {
  return runProbe({ id: 'certificate', kind: 'certificate', target: ctx.platform?.store.description ?? 'certificate store', deadlineMs: Math.max(ctx.timeoutMs, 10_000) }, async (rec) => {
    if (!ctx.platform) throw new ProbeSkipped('no certificate store on this platform');
    const issuerCN = org?.ca.issuerCN ?? ctx.config.issuerCN;
    const list = await rec.stage('local', `list ${ctx.platform.store.description}`, () => ctx.platform!.store.list(), (l) => `${l.length} personal certificate(s)`);
    const state = peekState(ctx.config.stateDir) ?? ({} as Partial<AgentState>);
    // Ours: issued by the issuer the state recorded (a SCEP CA may have no CN, and is not the org's), else by the org's CA CN.
    const ours = list.filter((c) => (state.current?.issuer ? c.info.issuer === state.current.issuer : c.info.issuerCN === issuerCN));
    const current = ours.find((c) => c.id === state.current?.storeId) ?? ours[0];
    rec.facts.issuerCN = issuerCN;
    rec.facts.count = ours.length;
    if (state.lastRun) rec.facts.lastRun = state.lastRun;
    rec.facts.certificates = ours.map((c) => ({ serialNumber: c.info.serialNumber, subject: c.info.subject, notBefore: c.info.notBefore, notAfter: c.info.notAfter, storeId: c.id, sha256: c.info.sha256 }));
    if (!current) return;
    const files = new CredentialFiles(ctx.config.stateDir);
    const cred = state.current && state.current.storeId === current.id ? files.readKeyPem(state.current.thumbprint) ?? files.readKeyRef(state.current.thumbprint) : undefined;
    const renewFrom = state.current?.storeId === current.id ? state.current.renewFrom : undefined;
    rec.facts.current = { serialNumber: current.info.serialNumber, notAfter: current.info.notAfter, ...(renewFrom ? { renewFrom } : {}) };
    rec.facts.keyPresent = cred !== undefined;
  });
}
