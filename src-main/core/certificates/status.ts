import type { Platform } from '../../platform/types.js';
import { backendConfigured } from '../backends/configured.js';
import type { CertInfo } from './certificate.js';
import type { LoadedConfig } from '../config.js';
import type { AgentContext } from '../context.js';
import { CredentialFiles } from './credentials.js';
import { isAgentError } from '../../base/errors.js';
import { scheduleView, type ScheduleView } from '../scheduler/view.js';
import { loadState, type AgentState } from '../state/state.js';
import { postureSection, type PostureSection } from '../posture/status.js';

export type DeviceState = 'NOT_CONFIGURED' | 'NOT_ENROLLED' | 'ENROLLED' | 'RENEWAL_DUE' | 'EXPIRED' | 'KEY_MISSING' | 'REVOKED' | 'PENDING' | 'REJECTED' | 'CLOCK_WRONG';

export interface StatusReport {
  state: DeviceState;
  summary: string;
  orgUrl?: string;
  /** The enrollment backend in use (`backend`): idp or scep. */
  backend: string;
  deviceId: string;
  store: string;
  stateDir: string;
  certificate?: CertInfo & { storeId: string; renewFrom?: string };
  /** Device-trust certificates in the store (more than one means a pass was interrupted). */
  certificatesInStore: number;
  /** How the device key is protected and why: `tpm` / `software` (a key store) or `file` (legacy key file). */
  keyProtection?: { protection: 'tpm' | 'software' | 'file'; reason: string; store: string;
    /** `tpm (attested)`, `tpm`, `software` or `file`: what `status` and the dashboard show. */
    label?: string; attested?: boolean; attestation?: string };
  lastRun?: AgentState['lastRun'];
  /** The scheduler's named state, why, what to do when stuck, and the next attempt. */
  schedule: ScheduleView;
  /** The last posture pass (docs/POSTURE.md): counts, failing checks, the org's compliance answer. */
  posture?: PostureSection;
  /**
   * Managed configuration: per setting (and `posture` unit) the admin's source, and the user's values that were
   * ignored because the admin set that setting (values redacted).
   */
  configuration?: { managed: Record<string, string>; ignored: LoadedConfig['ignored'] };
  checks?: {
    org?: { ok: boolean; detail: string; code?: string };
    revocation?: { ok: boolean; detail: string };
    mtls?: { ok: boolean; trusted?: boolean; detail: string; code?: string };
    /** The server TLS issuer pins changed or were withdrawn since they were remembered. */
    pins?: { ok: boolean; detail: string; code?: string };
    /** SCEP backend: the CA reachable, matching the pin, with acceptable algorithms (scep/diagnose.ts). */
    ca?: { ok: boolean; detail: string };
  };
}

/** What `status` shows: local facts always; with `check`, the org, revocation and the mTLS endpoint too. */
export async function getStatus(loaded: LoadedConfig, opts: { check?: boolean; platform: Platform; context: Pick<AgentContext, 'events' | 'systemProxy'> }): Promise<StatusReport> {
  const { config } = loaded;
  const platform = opts.platform;
  const { state } = loadState(config.stateDir);
  const base = { backend: config.backend, deviceId: state.deviceId, store: platform.store.description, stateDir: config.stateDir, ...(config.orgUrl ? { orgUrl: config.orgUrl } : {}), ...(state.lastRun ? { lastRun: state.lastRun } : {}),
    schedule: scheduleView(loaded, state), ...postureSection(config),
    ...(Object.keys(loaded.managed ?? {}).length || loaded.ignored?.length ? { configuration: { managed: loaded.managed ?? {}, ignored: loaded.ignored ?? [] } } : {}) };
  // Ours: issued by the issuer the state recorded (a SCEP CA may have no CN), else by the configured issuer CN.
  const isOurs = (info: CertInfo) => (state.current ? info.issuer === state.current.issuer : info.issuerCN === config.issuerCN);
  const ours = (await platform.store.list()).filter((c) => isOurs(c.info));
  const current = ours.find((c) => c.id === state.current?.storeId) ?? ours[0];
  if (!backendConfigured(loaded)) {
    return { ...base, state: 'NOT_CONFIGURED', summary: config.backend === 'scep' ? 'The SCEP backend is selected but scepUrl or scepCaFingerprint is missing.' : 'No org URL is configured.', certificatesInStore: ours.length };
  }
  const usable = current && Date.parse(current.info.notAfter) > Date.now();
  const hold = state.hold && Date.parse(state.hold.until) > Date.now() ? state.hold : undefined;
  if (!usable && hold) {
    return { ...base, state: 'REJECTED', summary: `The CA rejected this device's request at ${hold.at}: ${hold.message}`, certificatesInStore: ours.length };
  }
  if (!usable && state.pending) {
    return { ...base, state: 'PENDING', summary: `The request made at ${state.pending.since} is waiting for the CA's approval; the next run asks again.`, certificatesInStore: ours.length };
  }
  if (!current) {
    // The certificate is in a TPM token this machine's TPM cannot open: not "no certificate yet".
    const unusable = state.current ? await platform.keys?.unusable?.().catch(() => undefined) : undefined;
    if (unusable) return { ...base, state: 'KEY_MISSING', summary: `${unusable.message}. Run: device-trust-agent run --forceRenewal (it enrolls a new key in this machine's TPM).`, certificatesInStore: 0 };
    return { ...base, state: 'NOT_ENROLLED', summary: 'This device has no device-trust certificate yet.', certificatesInStore: 0 };
  }

  const creds = new CredentialFiles(config.stateDir);
  const tp = state.current?.storeId === current.id ? state.current.thumbprint : undefined;
  const keyPem = tp ? creds.readKeyPem(tp) : undefined;
  const keyRef = tp ? creds.readKeyRef(tp) ?? platform.keys?.keyIdOf(current.id) : undefined;
  const keyProtection = withAttestation(await protectionOf(platform, keyRef, keyPem !== undefined), state.current?.storeId === current.id ? state.current.keyAttestation : undefined);
  const now = Date.now();
  const renewFrom = state.current?.storeId === current.id ? state.current.renewFrom : undefined;
  let st: DeviceState = 'ENROLLED';
  // A certificate not yet valid by this clock, or a server that refused the last pass because of this clock:
  // the clock is what is wrong, and no run fixes it (the org refuses a clock it does not agree with).
  if (Date.parse(current.info.notBefore) > now || (base.schedule.state === 'CLOCK_WRONG' && !base.schedule.clockAnomaly)) st = 'CLOCK_WRONG';
  else if (Date.parse(current.info.notAfter) <= now) st = 'EXPIRED';
  else if (!keyProtection) st = 'KEY_MISSING';
  else if (renewFrom && Date.parse(renewFrom) <= now) st = 'RENEWAL_DUE';
  const report: StatusReport = {
    ...base,
    deviceId: current.info.subjectCN || state.deviceId,
    state: st,
    summary: '',
    certificate: { ...current.info, storeId: current.id, ...(renewFrom ? { renewFrom } : {}) },
    certificatesInStore: ours.length,
    ...(keyProtection ? { keyProtection } : {}),
  };

  if (opts.check && config.backend === 'scep') {
    const { diagnoseScep } = await import('../scep/diagnose.js');
    const { findings } = await diagnoseScep(loaded, opts.context, { state });
    const problems = findings.filter((f) => f.severity === 'error');
    report.checks = { ca: { ok: problems.length === 0, detail: (problems.length ? problems : findings.filter((f) => f.severity === 'ok')).map((f) => f.title).join('; ') } };
  }
  if (opts.check && config.orgUrl && config.backend === 'idp') {
    // Loaded only for --check: plain `status` reads local state and starts fast. One after another: concurrent
    // import()s of graphs that share modules can fail to link on Node 20 (nodejs/node#52187).
    const { HttpClient } = await import('../net/http.js');
    const { httpOptionsFor } = await import('../proxy/options.js');
    const { EventLog } = await import('../events.js');
    const { discoverOrg } = await import('../enrollment/discovery.js');
    const { checkMtlsPath, mtlsCredential } = await import('../net/mtls.js');
    const { checkRevocation } = await import('./revocation.js');
    const http = new HttpClient(httpOptionsFor(config, opts.context, { events: new EventLog(config.stateDir, undefined, { sinks: opts.context.events }) }));
    report.checks = {};
    try {
      const org = await discoverOrg(http, config.orgUrl.replace(/\/+$/, ''));
      report.checks.org = { ok: true, detail: `${org.orgName}${org.readOnly ? ' (read-only)' : ''}` };
      // Pins the org published before and withdrew or replaced: a finding, not silence.
      const { pinChangeFinding, publishedPins } = await import('../net/server-chain.js');
      const pinChange = pinChangeFinding(publishedPins(org), state.serverTls, new URL(config.orgUrl).host);
      if (pinChange) report.checks.pins = { ok: false, code: pinChange.code, detail: `${pinChange.message} What to do: ${pinChange.remedy}` };
      if (org.crlUrl) {
        try {
          const rev = await checkRevocation(http, org.crlUrl, org.ca.chainPem, current.info.serialNumber);
          report.checks.revocation = { ok: !rev.revoked, detail: rev.revoked ? `revoked at ${rev.revokedAt}` : `not revoked (CRL of ${rev.crlThisUpdate})` };
          if (rev.revoked) report.state = 'REVOKED';
        } catch (e) {
          report.checks.revocation = { ok: false, detail: (e as Error).message };
        }
      }
      // A key in a key store is presented by the platform's TLS client (a child process: Node's TLS cannot hold it).
      const cred = mtlsCredential({ certPem: current.pem, serialNumber: current.info.serialNumber, keyPem, keyRef }, platform.keys);
      if ('unavailable' in cred) {
        if (keyRef || keyPem) report.checks.mtls = { ok: false, code: 'TOKEN_TLS_UNAVAILABLE', detail: `not checked: ${cred.unavailable}` };
      } else {
        try {
          const { answer, intercepted } = await checkMtlsPath(http, org.mtls.url, cred, [new URL(config.orgUrl).host]);
          report.checks.mtls = { ok: answer.trusted, trusted: answer.trusted, ...(intercepted ? { code: intercepted.code } : {}),
            detail: answer.trusted ? `trusted as device ${answer.deviceId}${'presenter' in cred ? ` (key presented from its token by ${cred.presenter.description})` : ''}` : intercepted ? `${intercepted.message} What to do: ${intercepted.remedy}` : `not trusted (${answer.reason ?? 'no reason given'})` };
        } catch (e) {
          report.checks.mtls = { ok: false, detail: isAgentError(e) ? e.message : String(e), ...(isAgentError(e) ? { code: e.code } : {}) };
        }
      }
      // The chains seen for the org and mTLS hosts against the TLS issuers the org publishes: an interceptor this
      // machine trusts shows here even when no key can be presented.
      // (Also when the mTLS check already failed: the org host's chain is evidence of its own; a failed mTLS verdict is kept.)
      {
        const { checkPublishedChains, pinsInForce } = await import('../net/server-chain.js');
        const pins = pinsInForce(org, config, loaded.sources.serverTlsPins === 'managed', state.serverTls);
        for (const m of await checkPublishedChains(http, { mtlsUrl: org.mtls.url, pins }, config.orgUrl, { reach: true })) {
          const which = m.what === 'the org' ? 'org' : 'mtls';
          if (which === 'mtls' && report.checks.mtls && !report.checks.mtls.ok) continue;
          report.checks[which] = { ok: false, code: m.error.code, detail: `${m.error.message} What to do: ${m.error.remedy}` };
        }
      }
    } catch (e) {
      report.checks.org = { ok: false, detail: (e as Error).message, ...(isAgentError(e) ? { code: e.code } : {}) };
    } finally {
      await http.close();
    }
  }
  report.summary = summarize(report);
  return report;
}

function summarize(r: StatusReport): string {
  const c = r.certificate!;
  switch (r.state) {
    case 'ENROLLED':
      return `This device is trusted: certificate ${c.serialNumber} valid until ${c.notAfter}.`;
    case 'RENEWAL_DUE':
      return `This device is trusted; its certificate (valid until ${c.notAfter}) is due for renewal.`;
    case 'EXPIRED':
      return `The device certificate expired on ${c.notAfter}; the next run enrolls a new one.`;
    case 'CLOCK_WRONG':
      return Date.parse(c.notBefore) > Date.now()
        ? `This device is not trusted: its certificate ${c.serialNumber} is not valid before ${c.notBefore} by this device's clock (${new Date().toISOString()}). Fix the clock (turn on time synchronisation).`
        : `This device's clock is wrong: ${r.schedule.why} Fix the clock (turn on time synchronisation); the certificate ${c.serialNumber} is kept${Date.parse(c.notAfter) <= Date.now() ? ` (by this clock it expired on ${c.notAfter})` : ''} and renews once the clocks agree.`;
    case 'KEY_MISSING':
      return 'The device certificate is installed but its private key is missing: run device-trust-agent run --forceRenewal.';
    case 'REVOKED':
      return 'The device certificate has been revoked: run device-trust-agent run --forceRenewal if the device should be trusted again.';
    default:
      return r.summary;
  }
}

/** Adds whether the org verified the key's TPM attestation (recorded at issuance) and why (not). */
function withAttestation(p: StatusReport['keyProtection'], a: { attested: boolean; reason: string } | undefined): StatusReport['keyProtection'] {
  if (!p) return p;
  const attested = p.protection === 'tpm' && a?.attested === true;
  const attestation = p.protection !== 'tpm' ? undefined : a ? a.reason : 'enrolled before TPM attestation; the next renewal attests the new key';
  return { ...p, label: attested ? 'tpm (attested)' : p.protection, attested, ...(attestation ? { attestation } : {}) };
}

/** Where the current key is and why; undefined when it is in neither the key store nor a key file. */
async function protectionOf(platform: Platform, keyRef: string | undefined, hasFile: boolean): Promise<StatusReport['keyProtection']> {
  if (keyRef && platform.keys) {
    try {
      const k = await platform.keys.find(keyRef);
      if (k) {
        const info = await platform.keys.info();
        return { protection: k.protection, reason: k.protection === info.protection ? info.reason : 'created before the current key store was chosen', store: info.description };
      }
    } catch {
      /* an unreachable key store is reported as a missing key below */
    }
  }
  if (hasFile) {
    const reason = platform.keys
      ? 'a key file from before the key store; the next renewal moves the key into the key store'
      : process.platform === 'linux'
        ? 'the PKCS#11 binding (pkcs11js) is not installed, so the key is a software key file; install the agent with its native part (npm install with g++ and make) to keep it in a token'
        : 'this platform has no key store wired in yet: a non-exportable key in the OS store, with the agent\'s own copy for renewal';
    return { protection: 'file', reason, store: platform.store.description };
  }
  return undefined;
}
