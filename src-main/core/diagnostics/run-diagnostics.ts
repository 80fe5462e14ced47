import type { Platform, PlatformFactory } from '../../platform/types.js';
import type { Config, LoadedConfig } from '../config.js';
import { ExitCode, exitCodeForClass, faultClass, worstExitCode } from '../../base/errors.js';
import { PAC_TIME_LIMIT_MS } from '../proxy/pac.js';
import { EventLog } from '../events.js';
import { runCommand, type CommandRunner } from '../../base/exec.js';
import { HttpClient, rootCertificates } from '../net/http.js';
import type { OrgConfig } from '../enrollment/protocol.js';
import type { SecretStore } from '../secrets/index.js';
import type { AgentContext } from '../context.js';
import { readKrb5Conf } from './directory.js';
import { evaluateFindings, worstSeverity, type SignInRecord } from './findings.js';
import { DEFAULT_HEALTH_POLICY, type HealthPolicy } from './health.js';
import {
  currentCredential, peekState, probeAgentPools, probeCertificate, probeCrl, probeDcClock, probeDirectory, probeGateway, probeIwa, probeKerberos, probeMtls, probeOrg,
  readOrgCache, sameTargets, type ProbeContext,
} from './probes.js';
import { probeTpm } from './tpm.js';
import { DIAGNOSE_SCHEMA, DIAGNOSE_SCHEMA_VERSION, type DiagnoseReport, type ProbeResult } from './types.js';
import { httpOptionsFor } from '../proxy/options.js';
import { chainFinding, pinsInForce } from '../net/server-chain.js';

export interface DiagnoseOptions {
  loaded: LoadedConfig;
  /** What the root wired: the platform, the secret store, the proxy source and the event sinks used by default. */
  context: AgentContext;
  /** Its timeout bounds every probe (default 3 s). */
  policy?: HealthPolicy;
  /** Where the admin API token is read from; null: do not read agent pools. Default: the context's store. */
  secrets?: SecretStore | null;
  /** Builds the certificate store to look at; null: skip the local certificate probe. Default: the context's. */
  platform?: PlatformFactory | null;
  /** KRB5_CONFIG, USER…; default process.env. */
  env?: NodeJS.ProcessEnv;
  now?: () => Date;
  /** DNS servers for the SRV lookups (default: the system's). */
  dnsServers?: string[];
  /** The DCs' SNTP port (default 123). */
  ntpPort?: number;
  runner?: CommandRunner;
  /** Where the run is recorded (events 1200–1202, 1220); default the state directory's log, to the context's sinks. */
  events?: EventLog;
  /** Record the outcome as an event (default true; `--watch` records changes only). */
  recordOutcome?: boolean;
  /**
   * Whether traffic to a URL goes direct, so that DNS/TCP/TLS can be measured on their own. Default: direct
   * unless a proxy or PAC file is configured (the HTTP stage always goes through HttpClient's proxy path).
   */
  direct?: (url: string) => boolean;
}

const SIGN_IN_RECORD_INTERVAL_MS = 3600_000;

/** The order probes appear in the report: the way a sign-in travels. */
const ORDER = ['org', 'clock:org', 'iwa:primary', 'iwa:backup', 'mtls', 'crl', 'kerberos:user', 'kerberos:device', 'kdc:', 'dc:srv', 'dc:', 'clock:dc:', 'gateway', 'agent-pools', 'certificate', 'tpm'];
const rank = (id: string) => {
  const i = ORDER.findIndex((p) => id === p || id.startsWith(p));
  return i < 0 ? ORDER.length : i;
};

export function exitCodeForWorst(worst: DiagnoseReport['worst']): number {
  return worst === 'error' ? ExitCode.NEEDS_ATTENTION : worst === 'warning' ? ExitCode.RETRY_LATER : ExitCode.OK;
}

/**
 * The exit code of a report: an error finding whose fault has a written-down class (base/errors.ts
 * FAULT_CLASSES: by the finding's code, else by the error codes of the probes it rests on) exits as `run`,
 * `status --check` and `proxy-check` do for that fault; any other error 30, a warning 20.
 */
export function diagnoseExitCode(findings: DiagnoseReport['findings'], probes: ProbeResult[]): number {
  const byId = new Map(probes.map((p) => [p.id, p]));
  return worstExitCode(findings.map((f) => {
    // A fault with a written-down class has that class whatever the finding's severity (one fault, one exit code).
    const own = faultClass(f.code);
    if (own && f.severity !== 'info') return exitCodeForClass(own);
    if (f.severity !== 'error') return f.severity === 'warning' ? ExitCode.RETRY_LATER : ExitCode.OK;
    const fromProbes = f.probes.map((id) => faultClass(byId.get(id)?.error?.code)).filter((c) => c !== undefined);
    return fromProbes.length ? worstExitCode(fromProbes.map(exitCodeForClass)) : ExitCode.NEEDS_ATTENTION;
  }));
}

/** The agent's own record of the last successful user sign-in it saw: an IWA Negotiate round trip or an enrollment. */
export function lastSignInFromEvents(events: EventLog): SignInRecord | undefined {
  const e = events.latest(['SIGN_IN_SEEN', 'ENROLLED']);
  if (!e) return undefined;
  const principal = typeof e.data?.principal === 'string' ? e.data.principal : undefined;
  return { at: e.time, how: e.id === 1220 ? 'IWA Negotiate sign-in checked by diagnostics' : 'enrollment through the IWA web app', principal };
}

/**
 * Runs every probe, in parallel, each within the policy timeout: the org and everything that does not need it
 * start at once; the IWA web apps, mTLS endpoint, CRL and Kerberos tickets start as soon as the org says where
 * they are (or from its last answer when it does not answer). Then the findings rules run over the results.
 */
export async function runDiagnostics(opts: DiagnoseOptions): Promise<DiagnoseReport> {
  const t0 = performance.now();
  const now = opts.now ?? (() => new Date());
  const { config } = opts.loaded;
  const orgUrl = config.orgUrl?.replace(/\/+$/, '');
  const policy = opts.policy ?? DEFAULT_HEALTH_POLICY;
  const env = opts.env ?? process.env;
  const events = opts.events ?? new EventLog(config.stateDir, 'diagnose', { sinks: opts.context.events });
  const platform = platformOrNone(opts.platform === undefined ? opts.context.platform : opts.platform, config);
  const secrets = opts.secrets === null ? undefined : (opts.secrets ?? opts.context.secrets);
  // Each request gives up just before its probe's deadline, so the probe records why (a silent proxy, a PAC
  // file, a trickling body) rather than only that time ran out.
  // A PAC file gets the one documented budget (PAC_TIME_LIMIT_MS), as in `run` and `proxy-check`: the probes that
  // go through it get that long on top of their own timeout, so a valid but slow PAC is not called a loop.
  const pacMs = config.httpProxyPacLocation ? PAC_TIME_LIMIT_MS : 0;
  const routedMs = policy.timeoutMs + pacMs;
  const http = new HttpClient({ ...httpOptionsFor(config, opts.context, { env }), timeoutMs: policy.timeoutMs, deadlineMs: Math.max(100, routedMs - Math.min(500, policy.timeoutMs / 5)) });
  const ctx: ProbeContext = {
    config, orgUrl, http, roots: rootCertificates(config.tlsCaFile), timeoutMs: policy.timeoutMs, routedTimeoutMs: routedMs, env, platform, secrets,
    runner: opts.runner ?? runCommand, ...(opts.dnsServers ? { dnsServers: opts.dnsServers } : {}), ntpPort: opts.ntpPort ?? 123,
    direct: opts.direct ?? (() => !config.httpProxy && !config.httpProxyPacLocation), now,
    managedPins: opts.loaded.sources.serverTlsPins === 'managed', rememberedPins: peekState(config.stateDir)?.serverTls,
  };
  const cred = currentCredential(config);
  // First: it looks at the TPM store's permissions before the certificate probe opens the token (which sets them to 0700).
  const tpmPhase = probeTpm(ctx);

  try {
    const dependentOn = (org: OrgConfig | undefined): Promise<ProbeResult[]> => {
      const dependent: Promise<ProbeResult | ProbeResult[]>[] = [probeKerberos(ctx, org)];
      if (org) {
        dependent.push(probeIwa(ctx, org, org.iwa.primary, 'iwa:primary'));
        org.iwa.backups.forEach((b, i) => dependent.push(probeIwa(ctx, org, b, `iwa:backup:${i + 1}`)));
        dependent.push(probeMtls(ctx, org, cred), probeCrl(ctx, org, cred));
      }
      return Promise.all(dependent).then((r) => r.flat());
    };
    // With the org's last answer, the IWA, mTLS, CRL and Kerberos probes start at once, alongside discovery;
    // they are only run again if the org now names other targets.
    const cached = readOrgCache(ctx);
    const early = cached ? dependentOn(cached) : undefined;
    early?.catch(() => undefined);
    const orgPhase = probeOrg(ctx).then(async (o) => {
      if (o.org && early && sameTargets(o.org, cached!)) return { ...o, fromCache: false, rest: await early };
      // Other targets now: probe those; the early probes are still awaited so nothing outlives the run.
      if (o.org) return { ...o, fromCache: false, rest: (await Promise.all([dependentOn(o.org), early?.catch(() => [])]))[0] };
      if (early) return { ...o, org: cached, fromCache: true, rest: await early };
      return { ...o, fromCache: false, rest: await dependentOn(undefined) };
    });
    const directoryPhase = probeDirectory(ctx, readKrb5Conf(env)).then(async (d) => [...d.probes, ...(await Promise.all(d.timeSources.map((h) => probeDcClock(ctx, h))))]);
    const [orgOutcome, directory, gateway, pools, certificate, tpm] = await Promise.all([orgPhase, directoryPhase, probeGateway(ctx), probeAgentPools(ctx), probeCertificate(ctx, undefined), tpmPhase]);

    const probes = [orgOutcome.result, ...(orgOutcome.clock ? [orgOutcome.clock] : []), ...orgOutcome.rest, ...directory, gateway, pools.result, certificate, tpm]
      .sort((a, b) => rank(a.id) - rank(b.id));
    attachInterceptions(probes, http);
    if (orgOutcome.org && orgUrl) attachUnpublishedOrgChain(probes, http, orgOutcome.org, orgUrl, ctx);

    const signedIn = probes.find((p) => p.kind === 'iwa' && (p.facts.auth as { ok?: boolean } | undefined)?.ok);
    const auth = signedIn?.facts.auth as { principal?: string; via?: string } | undefined;
    const previous = events.latest(['SIGN_IN_SEEN']);
    // Once an hour is enough to keep the delegated-auth window's start current; --watch must not flood the log.
    const fresh = previous && now().getTime() - Date.parse(previous.time) < SIGN_IN_RECORD_INTERVAL_MS && previous.data?.principal === (auth?.principal ?? null);
    if (signedIn && auth && !fresh) {
      events.record('SIGN_IN_SEEN', `${auth.principal ?? 'The user'} signed in to the IWA web app ${signedIn.target} (${auth.via ?? 'Negotiate'}).`, { principal: auth.principal ?? null, iwa: signedIn.target });
    }
    const scep = config.backend === 'scep' ? await scepFindings(opts.loaded, opts.context) : [];
    const findings = evaluateFindings({
      backend: config.backend, orgUrl, org: orgOutcome.org, orgFromCache: orgOutcome.fromCache, probes, pools: pools.pools, now: now(), lastSignIn: lastSignInFromEvents(events),
      rememberedPins: ctx.rememberedPins,
    });
    findings.push(...scep);
    const worst = worstSeverity(findings);
    const report: DiagnoseReport = {
      schema: DIAGNOSE_SCHEMA,
      version: DIAGNOSE_SCHEMA_VERSION,
      generatedAt: now().toISOString(),
      durationMs: Math.round(performance.now() - t0),
      orgUrl: orgUrl ?? null,
      org: orgOutcome.org
        ? { orgName: orgOutcome.org.orgName, readOnly: orgOutcome.org.readOnly, failoverMode: orgOutcome.org.iwa.failoverMode, iwa: [orgOutcome.org.iwa.primary, ...orgOutcome.org.iwa.backups], fromCache: orgOutcome.fromCache }
        : null,
      probes,
      agentPools: pools.pools ?? null,
      findings,
      worst,
      exitCode: diagnoseExitCode(findings, probes),
    };
    if (opts.recordOutcome !== false) {
      recordOutcome(events, report);
      const refused = pools.result.error?.code === 'ADMIN_TOKEN_REJECTED' ? pools.result.error : undefined;
      if (refused) events.record('ADMIN_TOKEN_REJECTED', `Agent status was not read: ${refused.message}.`, { org: orgUrl ?? null });
    }
    return report;
  } finally {
    // A target that missed its deadline may still hold a request open: abort it rather than wait for it.
    await http.destroy();
  }
}

export function recordOutcome(events: EventLog, report: DiagnoseReport): void {
  const problems = report.findings.filter((f) => f.severity !== 'info');
  const summary = problems.length ? problems.map((f) => `${f.code}: ${f.title}`).join('; ') : 'every probe answered as expected';
  const kind = report.worst === 'error' ? 'DIAGNOSE_ERRORS' : report.worst === 'warning' ? 'DIAGNOSE_WARNINGS' : 'DIAGNOSE_OK';
  events.record(kind, `Diagnostics: ${summary}.`, { findings: report.findings.map((f) => f.code), durationMs: report.durationMs });
}

/** The platform to look at: built by the factory given, none without one or where it is unsupported. */
export function platformOrNone(factory: PlatformFactory | null | undefined, config: Config): Platform | undefined {
  if (!factory) return undefined;
  try {
    return factory(config);
  } catch {
    return undefined;
  }
}

/**
 * The chain the org host presented, against the TLS issuers the org publishes: an interceptor this machine trusts
 * shows on the org probe too (the mTLS probe compares its own host).
 */
function attachUnpublishedOrgChain(probes: ProbeResult[], http: HttpClient, org: OrgConfig, orgUrl: string, ctx: ProbeContext): void {
  const probe = probes.find((p) => p.kind === 'org' && p.status === 'ok');
  if (!probe || probe.facts.interception) return;
  const host = new URL(orgUrl).host;
  const found = chainFinding({ host, what: 'the org', chain: http.presentedChain(host), set: pinsInForce(org, ctx.config, ctx.managedPins === true, ctx.rememberedPins), exemptHosts: [new URL(org.mtls.url).host] });
  if (!found) return;
  http.noteInterception(found.interception, found.error.message);
  probe.facts.interception = { host, issuer: found.interception.issuer, exempt: found.interception.exempt, published: false };
}

/** Interceptions the HTTP client found (any route, proxy included) become facts of the probes that met them. */
function attachInterceptions(probes: ProbeResult[], http: HttpClient): void {
  for (const p of probes) {
    if (p.facts.interception) continue;
    let host: string;
    try {
      host = new URL(p.target).host;
    } catch {
      continue;
    }
    const f = http.interceptionFor(host);
    if (f && (p.error?.code === 'TLS_INTERCEPTED' || p.kind === 'mtls')) p.facts.interception = { host: f.host, issuer: f.issuer, exempt: f.exempt };
  }
}

/** The SCEP backend enrolls with its CA, not the org: the CA's own checks (scep/diagnose.ts) as findings. */
async function scepFindings(loaded: LoadedConfig, context: AgentContext): Promise<DiagnoseReport['findings']> {
  const { diagnoseScep } = await import('../scep/diagnose.js');
  const { findings } = await diagnoseScep(loaded, context);
  return findings.filter((f) => f.severity !== 'ok').map((f) => ({
    code: f.severity === 'error' ? 'SCEP_CA_PROBLEM' : 'SCEP_CA_NOTE', severity: f.severity as 'info' | 'warning' | 'error', title: f.title, evidence: [f.evidence],
    cause: f.cause ?? '', remedy: f.remedy ?? '', probes: [],
  }));
}
