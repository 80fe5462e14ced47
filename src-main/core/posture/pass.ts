import type { Side } from '../enrollment/side.js';
import { X509Certificate } from 'node:crypto';
import { isAgentError } from '../../base/errors.js';
import type { LoadedConfig } from '../config.js';
import { CredentialFiles, loadDeviceKey } from '../certificates/credentials.js';
import type { DeviceKeyStore } from '../../platform/keystore.js';
import type { AgentContext } from '../context.js';
import { EventLog } from '../events.js';
import { HttpClient } from '../net/http.js';
import { httpOptionsFor } from '../proxy/options.js';
import { redact } from '../../base/safe-text.js';
import { loadState } from '../state/state.js';
import { evaluatePosture, type PostureRun } from './evaluate.js';
import { postureClaims, sendPostureReport, signPostureReport, softwareSigner, type DeviceSigner } from './report.js';
import { resolvePostureSettings } from './settings.js';
import { writePostureFile } from './snapshot.js';
import type { PostureContext } from '../../platform/posture/contract.js';

export interface PosturePassOptions {
  loaded: LoadedConfig;
  side: Side;
  /**
   * What the root wired. Its platform's posture checks run and its key store (TPM, NSS, CNG, keychain) signs the
   * report: required, so a caller cannot forget it (without it only a legacy key file could sign).
   */
  context: AgentContext;
  /** Send the signed report (the CLI's --report; the daemon: when something changed or the last one failed). */
  report?: 'always' | 'on-change' | 'never';
  /** How the report is signed; default: the current certificate's device key in the platform's key store. */
  signer?: () => Promise<DeviceSigner | undefined>;
  events?: EventLog;
  /** Facts about the machine the checks would otherwise gather (tests). */
  machine?: Partial<PostureContext>;
  now?: Date;
}

export interface PosturePassResult extends PostureRun {
  reported?: { ok: boolean; error?: string };
}

/** The signer for the installed certificate, or undefined when this device has no certificate yet. */
export async function currentDeviceSigner(stateDir: string, keys: DeviceKeyStore | undefined): Promise<DeviceSigner | undefined> {
  const { state } = loadState(stateDir);
  const tp = state.current?.thumbprint;
  if (!tp) return undefined;
  const creds = new CredentialFiles(stateDir);
  const certPem = creds.readCertificate(tp);
  const key = await loadDeviceKey(creds, keys, tp, state.current?.storeId).catch(() => undefined);
  return key && certPem ? softwareSigner(key, certPem) : undefined;
}

function certificateSha256(certPem: string): string {
  return new X509Certificate(certPem).fingerprint256.replace(/:/g, '').toLowerCase();
}

function deviceIdOf(certPem: string): string {
  return /(?:^|\n)CN=([^\n]*)/.exec(new X509Certificate(certPem).subject)?.[1] ?? '';
}

/**
 * One posture pass for a side: evaluate, then (user side, enrolled, org configured) send the signed report
 * and keep the org's compliance answer next to the results. Never throws for a failed delivery: it is an event.
 */
export async function runPosturePass(opts: PosturePassOptions): Promise<PosturePassResult> {
  const { config } = opts.loaded;
  const settings = resolvePostureSettings(config.posture);
  const events = opts.events ?? new EventLog(config.stateDir, opts.side, { sinks: opts.context.events });
  const platform = opts.context.platform(config);
  const run = await evaluatePosture({ side: opts.side, stateDir: config.stateDir, settings, checks: platform.posture, events, ...(opts.machine ? { context: opts.machine } : {}), ...(opts.now ? { now: opts.now } : {}) });
  const mode = opts.report ?? 'on-change';
  if (opts.side !== 'user' || !settings.report || mode === 'never' || !config.orgUrl || config.backend !== 'idp') return run;
  const signer = await (opts.signer ? opts.signer() : currentDeviceSigner(config.stateDir, platform.keys));
  if (!signer) return run;
  // Sent on change, after a failed delivery, and for a new certificate (enrollment, renewal): the org keys reports by it.
  const certificate = certificateSha256(signer.certificatePem);
  const wanted = mode === 'always' || run.changes.length > 0 || !run.file.report?.ok || run.file.report.certificate !== certificate;
  if (!wanted) return run;
  const http = new HttpClient(httpOptionsFor(config, opts.context, { events }));
  const now = opts.now ?? new Date();
  let reported: PosturePassResult['reported'];
  try {
    const jws = await signPostureReport(signer, postureClaims(run.file, deviceIdOf(signer.certificatePem), now));
    const compliance = await sendPostureReport(http, config.orgUrl, jws);
    run.file.report = { at: now.toISOString(), ok: true, certificate, compliance };
    reported = { ok: true };
    const failing = compliance.failing.map((f) => f.check);
    events.record('POSTURE_REPORTED', `The org received the posture report: ${compliance.status} (${compliance.mode}).`, { compliance: compliance.status, mode: compliance.mode, failing });
    if (compliance.status === 'non-compliant') {
      events.record('POSTURE_NON_COMPLIANT', redact(`The org's device-assurance policy finds this device non-compliant: ${compliance.failing.map((f) => `${f.check} (${f.reason})`).join('; ')}.${compliance.deadline ? ` Fix it before ${compliance.deadline}.` : ''}${compliance.mode === 'enforce' ? ' Access is refused until then.' : ''}`),
        { checks: failing, mode: compliance.mode, ...(compliance.deadline ? { deadline: compliance.deadline } : {}) });
    }
  } catch (e) {
    const error = redact(isAgentError(e) ? e.message : (e as Error).message).slice(0, 500);
    run.file.report = { at: now.toISOString(), ok: false, error, ...(run.file.report?.compliance ? { compliance: run.file.report.compliance } : {}) };
    reported = { ok: false, error };
    events.record('POSTURE_REPORT_FAILED', `The posture report was not delivered: ${error} It is sent again on the next pass.`);
  } finally {
    await http.close();
  }
  writePostureFile(run.path, run.file, false);
  return { ...run, reported };
}
