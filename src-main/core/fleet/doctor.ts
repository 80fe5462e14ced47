/**
 * `status` as a doctor (after `dsregcmd /status`): named tests, each PASS / FAIL / SKIPPED with evidence, the
 * last failure with its phase, client and server codes and correlation ID, and the context the agent runs in.
 * The JSON is versioned (STATUS_SCHEMA / STATUS_SCHEMA_VERSION); the fields `status` had before stay as they were.
 */
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { runCommand } from '../../base/exec.js';
import { ExitCode, exitCodeForFault, worstExitCode, type AgentError } from '../../base/errors.js';
import { POLICY_FILE } from '../../platform/types.js';
import type { Platform } from '../../platform/types.js';
import type { LoadedConfig } from '../config.js';
import { CredentialFiles, loadDeviceKey } from '../certificates/credentials.js';
import type { AgentContext } from '../context.js';
import { EventLog } from '../events.js';
import { loadState } from '../state/state.js';
import { getStatus, type StatusReport } from '../certificates/status.js';
import { signingTest } from './signing.js';

export const STATUS_SCHEMA = 'device-trust-agent/status';
export const STATUS_SCHEMA_VERSION = 1;

export const DOCTOR_TESTS = [
  ['configuration', 'Configuration'],
  ['org_reachable', 'Org reachable'],
  ['iwa', 'IWA web app reachable'],
  ['kerberos_tickets', 'Kerberos tickets'],
  ['certificate_present', 'Certificate present'],
  ['certificate_valid', 'Certificate valid (dates)'],
  ['certificate_not_revoked', 'Certificate not revoked'],
  ['certificate_chains', 'Certificate chains to the CA'],
  ['key_present', 'Device key present'],
  ['signing_test', 'Live signing test with the device key'],
  ['browser_policy', 'Browser policy in place'],
  ['mtls_accepted', 'mTLS endpoint accepts the certificate'],
  ['schedule_next_deadline', 'Schedule has a next deadline'],
] as const;
export type DoctorTestName = (typeof DOCTOR_TESTS)[number][0];
export type TestResult = 'PASS' | 'FAIL' | 'SKIPPED';

export interface DoctorTest {
  name: DoctorTestName;
  title: string;
  result: TestResult;
  evidence: string;
}

export interface LastFailure {
  at: string;
  task: string;
  phase?: string;
  /** The agent's own code (AgentError code). */
  clientCode?: string;
  /** The server's errorCode, when a server answered with one. */
  serverCode?: string;
  httpStatus?: number;
  /** The pass's trace ID: every request of that pass carried it (X-Request-ID / traceparent). */
  correlationId?: string;
  /** The last request of the failed pass (the one to look up in the server's log). */
  requestId?: string;
  message: string;
}

export interface DoctorSection {
  schema: typeof STATUS_SCHEMA;
  schemaVersion: typeof STATUS_SCHEMA_VERSION;
  /** Whether the agent's last pass ran as the user side or the device (system) side, and this process's account. */
  context: { lastTask?: string; runningAs: 'user' | 'device'; uid?: number };
  tests: DoctorTest[];
  passed: number;
  failed: number;
  skipped: number;
  lastFailure?: LastFailure;
}

export type DoctorStatus = StatusReport & DoctorSection;

const NOT_CHECKED = 'not checked: run "status --check" to ask the network';

/** getStatus plus the doctor's tests. `check` also runs the tests that ask the network. */
/**
 * getStatus plus the doctor's tests. `check` also runs the tests that ask the network. `configError`: the
 * configuration files could not be used and `loaded` is what the environment and command line give alone;
 * every other test still runs, and the configuration test FAILs with the error (which names the file and setting).
 */
export async function getDoctorStatus(loaded: LoadedConfig, opts: { check?: boolean; platform: Platform; context: Pick<AgentContext, 'events' | 'systemProxy'>; configError?: AgentError }): Promise<DoctorStatus> {
  const report = await getStatus(loaded, opts);
  const section = await doctor(loaded, report, opts);
  return { ...report, ...headline(report, section, opts.configError), ...section };
}

/** Tests whose failure means the device is not trusted now, whatever the certificate's state says. */
const TRUST_TESTS: ReadonlySet<DoctorTestName> = new Set(['certificate_valid', 'certificate_not_revoked', 'key_present', 'signing_test', 'mtls_accepted']);

/**
 * The headline (state and summary) as a function of the tests: it never says "trusted" while a test that
 * trust depends on FAILs, and a broken configuration is named first.
 */
function headline(report: StatusReport, d: DoctorSection, configError: AgentError | undefined): Pick<StatusReport, 'state' | 'summary'> {
  if (configError) return { state: 'NOT_CONFIGURED', summary: `The configuration cannot be used: ${configError.message}${configError.remedy ? ` What to do: ${configError.remedy}` : ''}` };
  const failed = d.tests.filter((t) => t.result === 'FAIL' && TRUST_TESTS.has(t.name));
  if ((report.state === 'ENROLLED' || report.state === 'RENEWAL_DUE') && failed.length) {
    return { state: report.state, summary: `This device is NOT trusted: ${failed.map((t) => `${t.title} FAILED (${t.evidence})`).join('; ')}.` };
  }
  return { state: report.state, summary: report.summary };
}

/** The exit code of `status`: from the faults its checks and tests found (base/errors.ts FAULT_CLASSES) and the state. */
export function statusExitCode(r: DoctorStatus): number {
  const codes: number[] = [];
  for (const [name, c] of Object.entries(r.checks ?? {})) {
    // A check that could not be made here (no engine to present a token key) is SKIPPED, not a fault.
    if (!c.ok && 'code' in c && c.code === 'TOKEN_TLS_UNAVAILABLE') continue;
    if (!c.ok) codes.push(exitCodeForFault('code' in c ? c.code : undefined, name === 'mtls' ? ExitCode.NEEDS_ATTENTION : ExitCode.RETRY_LATER));
  }
  for (const t of r.tests) {
    if (t.result !== 'FAIL') continue;
    if (t.name === 'configuration') codes.push(ExitCode.CONFIG);
    else if (TRUST_TESTS.has(t.name)) codes.push(ExitCode.NEEDS_ATTENTION);
  }
  codes.push(r.state === 'ENROLLED' || r.state === 'RENEWAL_DUE' ? ExitCode.OK : r.state === 'NOT_CONFIGURED' ? ExitCode.CONFIG
    : r.state === 'CLOCK_WRONG' ? exitCodeForFault('CLOCK_SKEW', ExitCode.RETRY_LATER) : ExitCode.NEEDS_ATTENTION);
  return worstExitCode(codes);
}

export async function doctor(loaded: LoadedConfig, report: StatusReport, opts: { check?: boolean; platform: Pick<Platform, "keys">; context: Pick<AgentContext, 'events' | 'systemProxy'>; configError?: AgentError }): Promise<DoctorSection> {
  const { config } = loaded;
  const { state } = loadState(config.stateDir);
  const t = new Map<DoctorTestName, { result: TestResult; evidence: string }>();
  const set = (name: DoctorTestName, result: TestResult, evidence: string) => t.set(name, { result, evidence });
  const check = Boolean(opts.check);
  const idp = config.backend === 'idp';

  if (opts.configError) set('configuration', 'FAIL', `${opts.configError.message}${opts.configError.remedy ? ` What to do: ${opts.configError.remedy}` : ''} (the other tests use the environment, the command line and defaults only)`);
  else set('configuration', report.state === 'NOT_CONFIGURED' ? 'FAIL' : 'PASS', report.state === 'NOT_CONFIGURED' ? report.summary
    : `backend ${config.backend}${config.orgUrl ? `, org ${config.orgUrl}` : ''}${config.scepUrl ? `, SCEP CA ${config.scepUrl}` : ''}; read from ${loaded.files.length ? loaded.files.join(', ') : 'environment, command line and defaults'}`);

  // Network tests: the org (and through it the IWA web app), revocation and mTLS.
  if (!check) {
    set('org_reachable', 'SKIPPED', NOT_CHECKED);
    set('iwa', 'SKIPPED', idp ? NOT_CHECKED : 'the SCEP backend does not use IWA');
  } else if (!idp) {
    const ca = report.checks?.ca;
    set('org_reachable', ca ? (ca.ok ? 'PASS' : 'FAIL') : 'SKIPPED', ca ? `SCEP CA: ${ca.detail}` : 'no SCEP CA configured');
    set('iwa', 'SKIPPED', 'the SCEP backend does not use IWA');
  } else if (!config.orgUrl) {
    set('org_reachable', 'SKIPPED', 'no org URL configured');
    set('iwa', 'SKIPPED', 'no org URL configured');
  } else {
    // Loaded only for --check: plain `status` (what the tray polls) never loads the HTTP stack and its proxy engine.
    // One after another: concurrent import()s of graphs that share modules can fail to link on Node 20 (nodejs/node#52187).
    const { HttpClient } = await import('../net/http.js');
    const { discoverOrg } = await import('../enrollment/discovery.js');
    const { httpOptionsFor } = await import('../proxy/options.js');
    const http = new HttpClient(httpOptionsFor(config, opts.context, { events: new EventLog(config.stateDir, undefined, { sinks: opts.context.events }) }));
    try {
      const org = await discoverOrg(http, config.orgUrl.replace(/\/+$/, ''));
      // The org answered, but status's own check of the route (interception of the org host) may have failed:
      // that check decides, so the test and the check never disagree.
      const orgCheck = report.checks?.org;
      if (orgCheck && !orgCheck.ok) set('org_reachable', 'FAIL', orgCheck.detail);
      else set('org_reachable', 'PASS', `${org.orgName}${org.readOnly ? ' (read-only)' : ''} answered discovery [request ID ${http.last?.requestId}]`);
      try {
        const res = await http.send({ url: org.iwa.primary, what: 'the IWA web app' });
        const negotiate = /negotiate/i.test(String(res.headers['www-authenticate'] ?? ''));
        set('iwa', res.status < 500 ? 'PASS' : 'FAIL', `${org.iwa.primary} answered HTTP ${res.status}${negotiate ? ' with a Negotiate challenge' : ''} (failover mode ${org.iwa.failoverMode}) [request ID ${http.last?.requestId}]`);
      } catch (e) {
        set('iwa', 'FAIL', `${org.iwa.primary}: ${(e as Error).message} [request ID ${http.last?.requestId}]`);
      }
    } catch (e) {
      set('org_reachable', 'FAIL', `${(e as Error).message} [request ID ${http.last?.requestId}]`);
      set('iwa', 'SKIPPED', 'the org did not say where its IWA web app is');
    } finally {
      await http.close();
    }
  }

  set('kerberos_tickets', ...(await kerberosTickets(loaded)));

  const cert = report.certificate;
  const cred = state.current && cert && state.current.storeId === cert.storeId ? new CredentialFiles(config.stateDir).complete().find((c) => c.thumbprint === state.current!.thumbprint) : undefined;
  const key = state.current && cert && state.current.storeId === cert.storeId
    ? await loadDeviceKey(new CredentialFiles(config.stateDir), opts.platform.keys, state.current.thumbprint, cert.storeId).catch(() => undefined) : undefined;
  const unusable = !key ? await opts.platform.keys?.unusable?.().catch(() => undefined) : undefined;
  if (!cert) {
    set('certificate_present', 'FAIL', report.summary);
    for (const n of ['certificate_valid', 'certificate_not_revoked', 'certificate_chains', 'key_present', 'signing_test', 'mtls_accepted'] as const) set(n, 'SKIPPED', 'no certificate');
    // A key in a TPM token this TPM cannot open does not sign: a failure, not a test that did not apply.
    if (unusable && state.current) for (const n of ['key_present', 'signing_test'] as const) set(n, 'FAIL', `${unusable.message}: run device-trust-agent run --forceRenewal`);
  } else {
    set('certificate_present', 'PASS', `serial ${cert.serialNumber}, ${cert.subject}, in ${report.store} as "${cert.storeId}"`);
    const now = Date.now();
    const nb = Date.parse(cert.notBefore);
    const na = Date.parse(cert.notAfter);
    set('certificate_valid', now >= nb && now < na ? 'PASS' : 'FAIL', now < nb ? `not valid before ${cert.notBefore} (check the clock)` : now >= na ? `expired on ${cert.notAfter}` : `valid ${cert.notBefore} → ${cert.notAfter} (${Math.floor((na - now) / 86_400_000)} days left)`);
    const rev = report.checks?.revocation;
    if (report.state === 'REVOKED') set('certificate_not_revoked', 'FAIL', rev?.detail ?? 'revoked');
    else if (rev) set('certificate_not_revoked', rev.ok ? 'PASS' : 'FAIL', rev.detail);
    else set('certificate_not_revoked', 'SKIPPED', check ? 'the org publishes no CRL (or the backend has none)' : NOT_CHECKED);
    set('certificate_chains', ...chainTest(cred?.certPem, cred?.chainPem));
    if (!key) {
      set('key_present', 'FAIL', unusable ? `${unusable.message}: run device-trust-agent run --forceRenewal` : `no private key for certificate ${cert.serialNumber} in ${opts.platform.keys ? 'the key store or ' : ''}${path.join(config.stateDir, 'credentials')}: run device-trust-agent run --forceRenewal`);
      set('signing_test', unusable ? 'FAIL' : 'SKIPPED', unusable ? unusable.message : 'no device key');
    } else {
      set('key_present', 'PASS', `${key.algorithm} key (${key.protection}), thumbprint ${key.thumbprint}`);
      if (!cred) set('signing_test', 'SKIPPED', 'the agent\'s copy of the certificate is missing');
      else {
        const s = await signingTest({ key, certificatePem: cred.certPem });
        set('signing_test', s.ok ? 'PASS' : 'FAIL', `${s.evidence} (${s.ms} ms)${s.ok ? '' : '; the next pass enrolls a new certificate'}`);
      }
    }
    const mtls = report.checks?.mtls;
    // A check that could not be made (the token's TLS client is not installed) is not a verdict on the org.
    set('mtls_accepted', mtls ? (mtls.ok ? 'PASS' : mtls.code === 'TOKEN_TLS_UNAVAILABLE' ? 'SKIPPED' : 'FAIL') : 'SKIPPED', mtls ? mtls.detail : check ? (idp ? 'no key to present' : 'the SCEP backend has no mTLS check endpoint') : NOT_CHECKED);
  }

  set('browser_policy', ...browserPolicyTest(loaded));
  const s = report.schedule;
  set('schedule_next_deadline', s.nextAttempt ? 'PASS' : 'FAIL', s.nextAttempt ? `next pass ${s.nextAttempt.at} (${s.nextAttempt.reason}: ${s.nextAttempt.why})` : `no next pass: ${s.state}${s.action ? ` — ${s.action}` : ''}`);

  const tests: DoctorTest[] = DOCTOR_TESTS.map(([name, title]) => ({ name, title, ...(t.get(name) ?? { result: 'SKIPPED' as const, evidence: 'not applicable' }) }));
  const lr = state.lastRun;
  const lastFailure: LastFailure | undefined = lr && lr.outcome === 'failed'
    ? { at: lr.at, task: lr.task, message: lr.message, ...(lr.phase ? { phase: lr.phase } : {}), ...(lr.code ? { clientCode: lr.code } : {}), ...(lr.serverCode ? { serverCode: lr.serverCode } : {}),
      ...(lr.httpStatus !== undefined ? { httpStatus: lr.httpStatus } : {}), ...(lr.correlationId ? { correlationId: lr.correlationId } : {}), ...(lr.requestId ? { requestId: lr.requestId } : {}) }
    : undefined;
  const uid = typeof process.getuid === 'function' ? process.getuid() : undefined;
  return {
    schema: STATUS_SCHEMA,
    schemaVersion: STATUS_SCHEMA_VERSION,
    context: { ...(lr ? { lastTask: lr.task } : {}), runningAs: uid === 0 ? 'device' : 'user', ...(uid !== undefined ? { uid } : {}) },
    tests,
    passed: tests.filter((x) => x.result === 'PASS').length,
    failed: tests.filter((x) => x.result === 'FAIL').length,
    skipped: tests.filter((x) => x.result === 'SKIPPED').length,
    ...(lastFailure ? { lastFailure } : {}),
  };
}

async function kerberosTickets(loaded: LoadedConfig): Promise<[TestResult, string]> {
  const { config } = loaded;
  if (config.backend !== 'idp') return ['SKIPPED', 'the SCEP backend does not use Kerberos'];
  if (config.labSignIn) return ['SKIPPED', 'lab-only sign-in is configured instead of Kerberos'];
  if (process.platform === 'win32') return ['SKIPPED', 'Windows signs in through SSPI (see klist in a user session)'];
  const r = await runCommand({ file: 'klist', args: [] }).catch((e: Error) => ({ code: -1, stdout: '', stderr: e.message }));
  if (r.code === -1 && /ENOENT/.test(r.stderr)) return ['SKIPPED', 'klist is not installed (krb5-user)'];
  const principal = /Default principal:\s*(\S+)/.exec(r.stdout)?.[1];
  const tgt = /krbtgt\/(\S+)/.exec(r.stdout)?.[0];
  if (r.code === 0 && principal) return ['PASS', `${principal} holds ${tgt ?? 'tickets'}`];
  return ['FAIL', `no Kerberos tickets for this user (${(r.stderr || r.stdout).trim().split('\n')[0] || 'klist found no credentials cache'}): sign in to the domain or run kinit`];
}

function chainTest(certPem: string | undefined, chainPem: string[] | undefined): [TestResult, string] {
  if (!certPem || !chainPem) return ['SKIPPED', 'the agent\'s copy of the certificate and its chain is missing'];
  try {
    let cur = new X509Certificate(certPem);
    const pool = chainPem.map((p) => new X509Certificate(p));
    const names: string[] = [];
    for (let depth = 0; depth < 8; depth++) {
      const issuer = pool.find((c) => cur.checkIssued(c) && cur.verify(c.publicKey));
      if (!issuer) return depth === 0 ? ['FAIL', `no certificate in the CA chain issued ${cur.subject.replace(/\n/g, ', ')}`] : ['PASS', `verifies through ${names.join(' → ')}`];
      names.push(issuer.subject.split('\n').find((l) => l.startsWith('CN='))?.slice(3) ?? issuer.subject);
      if (issuer.subject === issuer.issuer) return ['PASS', `verifies through ${names.join(' → ')} (root)`];
      cur = issuer;
    }
    return ['PASS', `verifies through ${names.join(' → ')}`];
  } catch (e) {
    return ['FAIL', `the chain could not be checked: ${(e as Error).message}`];
  }
}

function browserPolicyTest(loaded: LoadedConfig): [TestResult, string] {
  const { config } = loaded;
  if (config.skipBrowserSetup) return ['SKIPPED', 'SkipBrowserSetup=true'];
  if (process.platform !== 'linux') return ['SKIPPED', 'checked by the platform\'s policy store (see browser-setup)'];
  const found = config.browserPolicyDirs.map((d) => path.join(d, POLICY_FILE)).filter((f) => {
    try {
      return /AutoSelectCertificateForUrls/.test(fs.readFileSync(f, 'utf8'));
    } catch {
      return false;
    }
  });
  return found.length ? ['PASS', `AutoSelectCertificateForUrls in ${found.join(', ')}`] : ['FAIL', `no AutoSelectCertificateForUrls policy in ${config.browserPolicyDirs.join(', ')}: the device task (root) writes it; run device-trust-agent run --device`];
}

/** The text form: one line per test, then the last failure. */
export function describeDoctor(d: DoctorSection): string[] {
  const lines = ['', `Tests (${d.passed} passed, ${d.failed} failed, ${d.skipped} skipped; running as ${d.context.runningAs}${d.context.lastTask ? `, last pass: ${d.context.lastTask} task` : ''}):`];
  for (const x of d.tests) lines.push(`  ${x.result.padEnd(7)} ${x.title}: ${x.evidence}`);
  const f = d.lastFailure;
  if (f) {
    lines.push('', `Last failure (${f.at}, ${f.task} task):`, `  phase:          ${f.phase ?? 'unknown'}`, `  client code:    ${f.clientCode ?? '-'}`,
      `  server code:    ${f.serverCode ?? '-'}${f.httpStatus !== undefined ? ` (HTTP ${f.httpStatus})` : ''}`, `  correlation ID: ${f.correlationId ?? '-'}`,
      `  request ID:     ${f.requestId ?? '-'}`, `  message:        ${f.message}`);
  }
  return lines;
}
