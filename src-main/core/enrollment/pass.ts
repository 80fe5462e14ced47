import { X509Certificate } from 'node:crypto';
import type { Platform } from '../../platform/types.js';
import type { PolicyResult } from '../../platform/types.js';
import type { DeviceKeyStore, StoredCertificate } from '../../platform/types.js';
import { createBackend, PENDING_CODE, type Authority, type EnrollmentBackend } from '../backends/index.js';
import type { BackendKind, Issued } from '../backends/types.js';
import { assertStrongChain, checkIssuedCertificate, describeCertificate, parseCertificate, type CertInfo } from '../certificates/certificate.js';
import type { LoadedConfig } from '../config.js';
import { CredentialFiles, loadDeviceKey } from '../certificates/credentials.js';
import { AgentError, isAgentError, type FailureClass } from '../../base/errors.js';
import { EventLog, type EventKind } from '../events.js';
import { ensurePrivateDir } from '../../base/fsutil.js';
import { HttpClient } from '../net/http.js';
import { generateLocalKey, keyInStore, keyThumbprint, type LocalKey } from '../keys/keys.js';
import { passDeadline } from '../time/deadline.js';
import { checkMtlsPath, mtlsCredential } from '../net/mtls.js';
import { checkPublishedChains, effectivePins, pinChangeFinding, pinsToRemember } from '../net/server-chain.js';
import { httpOptionsFor } from '../proxy/options.js';
import { checkRevocation } from '../certificates/revocation.js';
import { assertCaContinuity, chainFingerprints } from '../certificates/ca-continuity.js';
import type { AgentContext } from '../context.js';
import { sayNothingChanged } from './refusal.js';
import { isDeviceId, loadState, saveState, type AgentState } from '../state/state.js';
import type { Trace } from '../../base/trace.js';
import { failureContext, type FailureContext } from '../fleet/failure.js';
import { signingTest } from '../fleet/signing.js';
import { clockFinding, CLOCK_SKEW_CODE, isTimeRefusal } from '../time/clock-finding.js';
import { dcClockOffset } from '../time/dc-clock.js';
import { clampWarning, effectiveWindow } from '../time/renewal-window.js';
import { sweepTempDirs } from '../state/temp-sweep.js';
import { newKeyLabel, orphanSweepMessage, sweepOrphanKeys } from '../keys/orphan-keys.js';
import type { Side } from './side.js';

export type Outcome = 'enrolled' | 'renewed' | 'nothing-to-do' | 'configured';

export interface RunOptions {
  loaded: LoadedConfig;
  side: Side;
  force: boolean;
  /** Renew a valid certificate now, before its renewal window (the dashboard's "Renew now"). */
  renewNow?: boolean;
  trace: Trace;
  /** The OS store and browser setup, handed in by the composition root. */
  platform: Platform;
  /** The root's event sinks and proxy source (core/context.ts). */
  context: Pick<AgentContext, 'events' | 'systemProxy'>;
  now?: () => Date;
  /**
   * Scheduled passes: the moment inside the renewal window at which this certificate is renewed (the
   * scheduler draws it once per certificate so a fleet does not renew at once). Without it — a pass a
   * person started — renewal happens as soon as the window opens.
   */
  renewAt?: (c: { sha256: string; notAfter: Date; windowStart: Date }) => Date;
}

export interface InstalledCertificate extends CertInfo {
  storeId: string;
  store: string;
  thumbprint: string;
}

export interface RunResult {
  outcome: Outcome;
  /** Which enrollment backend the agent is configured with (`backend`). */
  backend: BackendKind;
  message: string;
  deviceId: string;
  certificate?: InstalledCertificate;
  warnings: string[];
  /**
   * Faults found while the pass itself succeeded (a TLS interceptor between this device and the org): each
   * is also a warning; the command exits with the fault's class (base/errors.ts FAULT_CLASSES).
   */
  faults?: { code: string; message: string; remedy?: string }[];
  browserPolicy?: PolicyResult;
}

/** The org's refusals of an attested certificate's renewal (core/enrollment/refusal.ts): a person decides, not a fallback. */
const ATTESTED_RENEWAL_REFUSALS = new Set(['ATTESTED_RENEWAL_REQUIRED', 'RENEWAL_TOO_EARLY']);

const FAILURE_EVENT: Record<FailureClass, EventKind> = {
  config: 'CONFIG_ERROR',
  'retry-later': 'RETRY_LATER',
  rejected: 'REJECTED',
  'bad-answer': 'BAD_ANSWER',
  local: 'LOCAL_FAILURE',
  internal: 'INTERNAL_ERROR',
};

/** The one-certificate rule needs to know which store entries are ours, and which key file each uses. */
async function thumbprintOf(c: StoredCertificate): Promise<string> {
  return keyThumbprint(new X509Certificate(c.pem).publicKey);
}

/**
 * One pass (an enrollment or renewal attempt): enroll, renew, or nothing. Ordered so that a failure at any step
 * leaves the previous certificate, key and state as they were, and a crash is repaired by the next pass.
 * Who issues the certificate is the enrollment backend's business (backends/); everything else is here.
 */
export class EnrollmentPass {
  private readonly config;
  private readonly backend: EnrollmentBackend;
  private readonly http: HttpClient;
  private readonly platform: Platform;
  private readonly creds: CredentialFiles;
  /** The platform's key store; SCEP keeps a software key (its answers are encrypted to the key). */
  private readonly keys: DeviceKeyStore | undefined;
  private readonly events: EventLog;
  private readonly trace: Trace;
  private readonly now: () => Date;
  private state!: AgentState;
  private readonly warnings: string[] = [];
  private readonly faults: NonNullable<RunResult['faults']> = [];
  /** A key being generated while the store and the CA are asked (RSA for SCEP takes longer than both). */
  private earlyKey: Promise<LocalKey> | undefined;
  /** The modules a request needs, loading (startEarlyKey). */
  private requestCode: Promise<void> | undefined;

  constructor(private readonly opts: RunOptions) {
    this.config = opts.loaded.config;
    this.trace = opts.trace;
    this.now = opts.now ?? (() => new Date());
    this.http = new HttpClient(httpOptionsFor(this.config, opts.context, { events: new EventLog(this.config.stateDir, opts.side, { sinks: opts.context.events }), log: (line) => opts.trace.log(line) }));
    this.backend = createBackend(opts.loaded, { http: this.http, trace: this.trace, now: this.now, deviceChannel: opts.platform.deviceChannel });
    ensurePrivateDir(this.config.stateDir);
    this.platform = opts.platform;
    this.creds = new CredentialFiles(this.config.stateDir);
    // SCEP answers are encrypted to the device key: its key lives in the store only if the store can decrypt.
    this.keys = this.backend.kind === 'scep' && !opts.platform.keys?.decrypt ? undefined : opts.platform.keys;
    this.events = new EventLog(this.config.stateDir, opts.side, { sinks: opts.context.events });
  }

  async run(): Promise<RunResult> {
    // The pass's own deadline (docs/ADMINS.md "Deadlines"): its requests are cut off, and it ends, within it.
    const pass = passDeadline(this.config.requestTimeoutMs, this.config.scepPendingWaitSeconds, this.http);
    try {
      const result = await pass.bound(this.runInner());
      this.recordLastRun(result.outcome, undefined, result.message);
      return result;
    } catch (e) {
      const raw = isAgentError(e) ? e : new AgentError('internal', 'INTERNAL', `Unexpected failure: ${(e as Error).message}`, undefined, { cause: e });
      // Any refusal about time (token nbf/iat/exp, SCEP badTime, TLS validity) is named as the clock's, wherever it came from.
      const err = sayNothingChanged((await this.clockRefusal(raw)) ?? raw);
      const kind: EventKind = err.code === 'ORG_READ_ONLY' || err.code === 'CA_CHANGED' ? err.code : err.code === CLOCK_SKEW_CODE ? 'CLOCK_SKEW_FOUND' : FAILURE_EVENT[err.failure];
      // A server's failure names the request (its ID is in the server's log); a local one names only the pass.
      const remote = err.failure === 'retry-later' || err.failure === 'rejected' || err.failure === 'bad-answer';
      const ctx = failureContext(this.http.traceId, remote ? this.http.last : undefined, this.trace.steps, err);
      this.events.record(kind, err.message, { code: err.code, ...(err.remedy ? { remedy: err.remedy } : {}), ...ctx });
      this.recordLastRun('failed', err.code, err.message, ctx);
      throw err;
    } finally {
      pass.clear();
      await this.http.close();
    }
  }

  /** A refusal about time as a clock finding, with the org's offset (its Date header) and the DC's (SNTP) measured now. */
  private async clockRefusal(e: unknown): Promise<AgentError | undefined> {
    if (!isTimeRefusal(e)) return undefined;
    const fresh = !(isAgentError(e) && e.code === CLOCK_SKEW_CODE);
    const sntpOffsetMs = fresh ? await dcClockOffset(this.config) : undefined;
    return clockFinding(e, this.backend.target, { localNow: this.now().getTime(), ...(sntpOffsetMs !== undefined ? { sntpOffsetMs } : {}) });
  }

  private recordLastRun(outcome: string, code: string | undefined, message: string, ctx?: FailureContext): void {
    if (!this.state) return;
    try {
      saveState(this.config.stateDir, { ...this.state, lastRun: { at: this.now().toISOString(), task: this.opts.side, outcome, ...(code ? { code } : {}), message, correlationId: this.http.traceId, ...ctx } });
    } catch {
      /* the outcome is still reported; a full disk is not made worse by failing here */
    }
  }

  /** The pass's steps, in order; each step below says what it decides. */
  private async runInner(): Promise<RunResult> {
    await this.prepare();
    const inventory = await this.trace.step('Read the certificate store', () => this.platform.store.list(), (r) => `${r.length} personal certificate(s)`);
    let authority: Authority;
    try {
      authority = await this.backend.authority();
    } catch (e) {
      return this.offlineAnswer(e, inventory);
    }
    if (this.opts.side === 'device') return this.deviceSide(authority);
    this.checkAuthority(authority);
    const current = await this.reconcile(inventory.filter((c) => authority.owns(c.info)));
    const deviceId = current?.info.subjectCN || this.state.deviceId;
    const forced = await this.forcedRenewal(authority, deviceId, current);
    if (forced) return forced;
    const resumed = await this.resumePending(authority, deviceId, current);
    if (resumed) return resumed;
    if (!current) return this.enroll(authority, deviceId, undefined);
    return this.renewOrKeep(authority, deviceId, current);
  }

  /** Loads the state and cleans up after an interrupted pass (temporary directories, keys never recorded). */
  private async prepare(): Promise<void> {
    const loaded = loadState(this.config.stateDir);
    this.state = loaded.state;
    if (loaded.recoveredFrom) {
      this.events.record('STATE_RECOVERED', `The state file was unreadable and was moved to ${loaded.recoveredFrom}; it is rebuilt from the certificate store.`);
    }
    await this.checkKeyStore();
    const swept = sweepTempDirs(this.config.stateDir);
    if (swept.length) this.events.record('TEMP_SWEPT', `Removed ${swept.length} temporary director${swept.length === 1 ? 'y' : 'ies'} (${swept.join(', ')}) left by an interrupted run; they could hold key material.`);
    const orphans = await sweepOrphanKeys(this.keys, this.config.stateDir);
    if (orphans.removed.length) this.events.record('ORPHAN_KEYS_REMOVED', orphanSweepMessage(orphans.removed, (await this.keys!.info()).description));
    this.trace.log(`Side: ${this.opts.side}; backend ${this.backend.kind} (${this.backend.target}); store: ${this.platform.store.description}; state: ${this.config.stateDir}`);
    this.startEarlyKey();
    await this.requestCode;
  }

  /** The org's CA: strong enough, and the one the current certificate was issued under (or vouched for by it). */
  private checkAuthority(authority: Authority): void {
    // A CA below the floor for keys and signatures is refused before any request (at first enrollment too).
    assertStrongChain(authority.chainPem, authority.name);
    const cur = this.state.current;
    assertCaContinuity({ currentThumbprint: cur?.thumbprint, storedChainPem: cur && this.creds.complete().find((c) => c.thumbprint === cur.thumbprint)?.chainPem, authority,
      pins: this.opts.loaded.sources.caRolloverFingerprints === 'managed' ? this.config.caRolloverFingerprints : [], log: (l) => this.trace.log(l) });
  }

  /** A forced renewal asked for now, or one a killed pass left unfinished: the certificate is replaced. */
  private async forcedRenewal(authority: Authority, deviceId: string, current: StoredCertificate | undefined): Promise<RunResult | undefined> {
    let intent = this.state.forceRequested;
    if (!this.opts.force && intent?.replaces && current && current.info.serialNumber !== intent.replaces) {
      // The killed run got as far as installing the new certificate (adopted above): the request is fulfilled.
      this.state = { ...this.state, forceRequested: undefined };
      saveState(this.config.stateDir, this.state);
      intent = undefined;
    }
    if (this.opts.force || intent) {
      await this.dropPending();
      if (!intent) {
        // Persisted first: a crash from here on is completed by the next pass, not forgotten.
        this.state = { ...this.state, forceRequested: { at: this.now().toISOString(), ...(current ? { replaces: current.info.serialNumber } : {}) } };
        saveState(this.config.stateDir, this.state);
      }
      const resumedMsg = !this.opts.force && intent ? ` (resuming the forced renewal requested at ${intent.at}, which did not complete)` : '';
      this.events.record('FORCED_RENEWAL', `Forced renewal${resumedMsg}: ${current ? `certificate ${current.info.serialNumber} will be replaced` : 'no certificate present'}.`);
      return this.enroll(authority, deviceId, current);
    }
    return undefined;
  }

  /** With a certificate in place: renew it when due (or asked), enroll afresh when it is expired or its key unusable, else leave it. */
  private async renewOrKeep(authority: Authority, deviceId: string, current: StoredCertificate): Promise<RunResult> {
    const tp = await thumbprintOf(current);
    await this.checkNotRevoked(authority, current);
    const key = await this.currentKey(tp, current);
    // A key file that no longer signs, or signs for another public key, is repaired by enrolling afresh.
    const signing = await signingTest({ key, certificatePem: current.pem });
    if (!signing.ok) {
      this.events.record('KEY_UNUSABLE', `The device key of certificate ${current.info.serialNumber} failed the signing test (${signing.evidence}); enrolling a new certificate.`);
      return this.enroll(authority, deviceId, current);
    }
    const now = this.now().getTime();
    const notAfter = Date.parse(current.info.notAfter);
    if (notAfter <= now) {
      this.events.record('EXPIRED_FOUND', `Certificate ${current.info.serialNumber} expired on ${current.info.notAfter}; enrolling a new one.`);
      return this.enroll(authority, deviceId, current);
    }
    const windowStart = notAfter - this.windowMs(authority, current.info, false);
    const renewFrom = this.opts.renewAt?.({ sha256: current.info.sha256, notAfter: new Date(notAfter), windowStart: new Date(windowStart) }).getTime() ?? windowStart;
    if (now >= renewFrom || this.opts.renewNow) return this.renew(authority, deviceId, current, key);

    const browserPolicy = await this.configureBrowsers(authority);
    // Reaching the mTLS host too: an interceptor this machine trusts is otherwise invisible to a pass that
    // has nothing to do (the org's answer may come from its cache), and every browser sign-in would fail.
    await this.checkPublishedChain(authority, true);
    const msg = `This device is enrolled: certificate ${current.info.serialNumber} is valid until ${current.info.notAfter}; renewal from ${new Date(renewFrom).toISOString()}.`;
    return { outcome: 'nothing-to-do', backend: this.backend.kind, message: msg, deviceId, certificate: this.installed(current, tp), warnings: this.warnings, ...(this.faults.length ? { faults: this.faults } : {}), ...(browserPolicy ? { browserPolicy } : {}) };
  }

  /** A revoked certificate stops the pass (a person decides); a CRL that cannot be read is a warning. */
  private async checkNotRevoked(authority: Authority, current: StoredCertificate): Promise<void> {
    if (authority.crlUrl) {
      const crlUrl = authority.crlUrl;
      try {
        const rev = await this.trace.step('Check revocation (CRL)', () => checkRevocation(this.http, crlUrl, authority.chainPem, current.info.serialNumber),
          (r) => (r.revoked ? `REVOKED at ${r.revokedAt}` : 'not revoked'));
        if (rev.revoked) {
          this.events.record('REVOKED_FOUND', `Certificate ${current.info.serialNumber} was revoked at ${rev.revokedAt}.`, { serialNumber: current.info.serialNumber });
          throw new AgentError('rejected', 'CERT_REVOKED',
            `The device certificate ${current.info.serialNumber} has been revoked by an administrator (at ${rev.revokedAt}). A revoked certificate stays on the device, and no new one is enrolled while it is there.`,
            'If the revocation was a mistake or the device should be trusted again, run: device-trust-agent run --forceRenewal');
        }
      } catch (e) {
        if (isAgentError(e) && e.code === 'CERT_REVOKED') throw e;
        this.warn('REVOCATION_UNCHECKED', `Revocation could not be checked: ${(e as Error).message}`);
      }
    }
  }

  /** The current certificate's key, from the key store or the legacy key file; without it nothing can be renewed. */
  private async currentKey(tp: string, current: StoredCertificate): Promise<LocalKey> {
    const key = await this.loadKey(tp, current.id);
    if (!key) {
      this.events.record('KEY_MISSING', `The private key of certificate ${current.info.serialNumber} is missing (key store and ${this.creds.root}).`);
      throw new AgentError('local', 'KEY_MISSING', `The private key of the device certificate ${current.info.serialNumber} is missing, so it cannot be renewed or proven.`,
        'Run: device-trust-agent run --forceRenewal (it removes the certificate and enrolls a new one).');
    }
    return key;
  }

  /**
   * A key store whose keys this machine cannot use (a TPM token from another TPM, or from this one before it was
   * cleared) is named as such: a plain pass stops with what to do; a forced renewal sets it aside and enrolls a new
   * key in the TPM that is here.
   */
  private async checkKeyStore(): Promise<void> {
    if (this.opts.side !== 'user' || !this.keys?.unusable) return;
    const problem = await this.keys.unusable();
    if (!problem) return;
    if (!this.opts.force && !this.state.forceRequested) {
      this.events.record('TPM_NOT_THIS_ONE', `${problem.message}.`, { code: problem.code });
      throw new AgentError('local', problem.code, `${problem.message}. Nothing was changed.`,
        "Run: device-trust-agent run --forceRenewal (it sets the old token aside and enrolls a new key in this machine's TPM).");
    }
    const aside = await this.keys.replaceUnusable!();
    this.events.record('TPM_NOT_THIS_ONE', `${problem.message}. Forced renewal: the old token store was moved to ${aside}; a new key is made in this machine's TPM.`, { code: problem.code });
  }

  /** The device side (system context) writes the machine-wide browser policy; certificates are per user. */
  private async deviceSide(authority: Authority): Promise<RunResult> {
    const browserPolicy = await this.configureBrowsers(authority);
    return {
      outcome: 'configured',
      backend: this.backend.kind,
      message: browserPolicy ? `Browser policy written to ${browserPolicy.written.join(', ') || 'no directory'}.` : 'Browser setup skipped (SkipBrowserSetup=true).',
      deviceId: this.state.deviceId,
      warnings: this.warnings, ...(this.faults.length ? { faults: this.faults } : {}),
      ...(browserPolicy ? { browserPolicy } : {}),
    };
  }

  /** Without the org we cannot enroll, but a valid certificate that is not due is still fine. */
  private async offlineAnswer(e: unknown, inventory: StoredCertificate[]): Promise<RunResult> {
    if (!isAgentError(e) || e.failure !== 'retry-later' || this.opts.force || this.state.forceRequested) throw e;
    const state = this.state.current;
    const current = state && inventory.find((c) => c.id === state.storeId);
    const now = this.now().getTime();
    if (!current || Date.parse(current.info.notAfter) <= now) throw e;
    this.warn('REVOCATION_UNCHECKED', `${cap(this.backend.target)} could not be reached, so revocation and renewal were not checked: ${e.message}`);
    return {
      outcome: 'nothing-to-do',
      backend: this.backend.kind,
      message: `This device is enrolled (certificate ${current.info.serialNumber}, valid until ${current.info.notAfter}); ${this.backend.target} was not reachable for checks.`,
      deviceId: current.info.subjectCN,
      certificate: this.installed(current, state.thumbprint),
      warnings: this.warnings, ...(this.faults.length ? { faults: this.faults } : {}),
    };
  }

  /**
   * Converges store, key files and state after any interruption, so that exactly one of our certificates is
   * installed. The owner-only credential files are the agent's record of what it holds; the one kept is the
   * one the state names, else the newest complete credential, else the newest certificate in the store.
   */
  private async reconcile(ours: StoredCertificate[]): Promise<StoredCertificate | undefined> {
    const now = this.now().getTime();
    const complete = this.creds.complete().map((c) => ({ ...c, info: describeCertificate(parseCertificate(c.certPem)) }));
    const newestFirst = <T extends { info: CertInfo }>(xs: T[]) => [...xs].sort((a, b) => Date.parse(b.info.notAfter) - Date.parse(a.info.notAfter));
    // A forced renewal killed after installing its certificate but before recording it: that new one is kept.
    const replaces = this.state.forceRequested?.replaces;
    const forcedNew = replaces ? newestFirst(complete.filter((c) => c.info.serialNumber !== replaces && ours.some((o) => o.info.sha256 === c.info.sha256)))[0] : undefined;
    const chosenCred = forcedNew ?? complete.find((c) => c.thumbprint === this.state.current?.thumbprint)
      ?? newestFirst(complete.filter((c) => ours.some((o) => o.info.sha256 === c.info.sha256)))[0]
      ?? newestFirst(complete.filter((c) => Date.parse(c.info.notAfter) > now))[0];
    const keepSha = chosenCred?.info.sha256 ?? newestFirst(ours)[0]?.info.sha256;
    const extras = ours.filter((o) => o.info.sha256 !== keepSha);
    if (extras.length) {
      await this.trace.step(`Remove ${extras.length} extra device-trust certificate(s)`, async () => {
        for (const x of extras) await this.platform.store.remove(x.id);
      });
      this.events.record('DUPLICATES_REMOVED', `Kept one device-trust certificate; removed ${extras.map((x) => x.info.serialNumber).join(', ')}.`);
    }
    // A request the CA holds as PENDING keeps its key (it has no certificate yet).
    for (const tp of this.creds.list()) if (tp !== chosenCred?.thumbprint && tp !== this.state.pending?.thumbprint) await this.forget(tp);
    if (!keepSha) return undefined;

    let kept = (extras.length ? await this.platform.store.list() : ours).find((o) => o.info.sha256 === keepSha);
    if (!kept && chosenCred) {
      // Interrupted between removing the old certificate and installing the new one, or removed by hand.
      try {
        kept = await this.trace.step('Reinstall the device certificate from the agent\'s own copy', () => this.installCredential(chosenCred.thumbprint, chosenCred.certPem, chosenCred.chainPem));
      } catch (e) {
        // Its key is gone for good (a TPM token set aside, a token wiped): a forced renewal enrolls afresh instead.
        if (!(isAgentError(e) && e.code === 'KEY_MISSING' && (this.opts.force || this.state.forceRequested))) throw e;
        this.trace.log(`The certificate ${chosenCred.info.serialNumber} cannot be reinstalled: its key is gone (${e.message}); the forced renewal enrolls a new one.`);
        await this.forget(chosenCred.thumbprint);
        this.state = { ...this.state, current: undefined };
        saveState(this.config.stateDir, this.state);
        return undefined;
      }
      this.events.record('CERT_REINSTALLED', `Certificate ${kept.info.serialNumber} was missing from ${this.platform.store.description} and was reinstalled.`);
    }
    if (!kept) return undefined;
    const tp = chosenCred?.thumbprint ?? (await thumbprintOf(kept));
    if (this.state.current?.sha256 !== kept.info.sha256 || this.state.current.storeId !== kept.id) this.adopt(kept, tp);
    this.ensureEnrollmentEvent(kept);
    return kept;
  }

  /** An installed certificate whose run was killed before event 1000/1001 gets its event 1000 now. */
  private ensureEnrollmentEvent(kept: StoredCertificate): void {
    const cur = this.state.current;
    if (!cur || cur.eventLogged || cur.sha256 !== kept.info.sha256) return;
    const serial = kept.info.serialNumber;
    let logged = false;
    try {
      logged = this.events.read().some((e) => (e.id === 1000 || e.id === 1001) && (e.data as { serialNumber?: unknown } | undefined)?.serialNumber === serial);
    } catch {
      /* an unreadable log: record it */
    }
    if (!logged) {
      this.events.record('ENROLLED', `Certificate ${serial} for device ${kept.info.subjectCN}, valid until ${kept.info.notAfter}, is installed in ${this.platform.store.description} (recorded on reconciliation: the run that installed it was interrupted before recording it).`,
        { serialNumber: serial, notAfter: kept.info.notAfter, store: this.platform.store.description, reconciled: true });
    }
    this.state = { ...this.state, current: { ...cur, eventLogged: true } };
    saveState(this.config.stateDir, this.state);
  }

  /** The renewal window for this certificate; the agent's own SCEP window is clamped to the CA's validity (renewal-window.ts). */
  private windowMs(authority: Authority, info: CertInfo, warn: boolean): number {
    const configured = authority.renewalWindowSeconds * 1000;
    if (this.backend.kind !== 'scep') return configured;
    const w = effectiveWindow(info.notBefore, info.notAfter, configured);
    if (w.clamped) {
      if (warn) this.warn('RENEWAL_WINDOW_CLAMPED', clampWarning(info.serialNumber, w, configured));
      else this.trace.log(`note: ${clampWarning(info.serialNumber, w, configured)}`);
    }
    return w.windowMs;
  }

  private async installCredential(thumbprint: string, certPem: string, chainPem: string[]): Promise<StoredCertificate> {
    const issuingCas = chainPem.filter((p) => {
      const c = new X509Certificate(p);
      return c.subject !== c.issuer;
    });
    const info = describeCertificate(parseCertificate(certPem));
    const label = `device-trust-${info.serialNumber.slice(0, 16)}`;
    // A key in the key store: the certificate is filed beside it (this is also the repair of a broken entry).
    const ref = this.creds.readKeyRef(thumbprint);
    if (ref && this.keys) return this.keys.attach(ref, { certPem, chainPem: issuingCas, label });
    const keyPem = this.creds.readKeyPem(thumbprint);
    if (!keyPem) throw new AgentError('local', 'KEY_MISSING', 'The private key of the certificate to install is missing.');
    return this.platform.store.install({ certPem, chainPem: issuingCas, keyPem, label });
  }

  /** The key of a credential: in the key store (by its recorded reference, or the store entry's own key), else a legacy key file. */
  private loadKey(thumbprint: string, storeId?: string): Promise<LocalKey | undefined> {
    return loadDeviceKey(this.creds, this.keys, thumbprint, storeId);
  }

  /** How a credential's key is kept: in the key store (tpm/software) or a legacy key file. */
  private async protectionOf(thumbprint: string, storeId: string): Promise<LocalKey['protection'] | undefined> {
    const key = await this.loadKey(thumbprint, storeId).catch(() => undefined);
    return key?.protection;
  }

  /** Drops a credential the agent no longer needs: its key in the store (if any) and its files. */
  private async forget(thumbprint: string): Promise<void> {
    const ref = this.creds.readKeyRef(thumbprint);
    if (ref && this.keys) await this.keys.remove(ref).catch(() => undefined);
    this.creds.remove(thumbprint);
  }

  /** Rebuilds the state's record of the current certificate from the store (lost or corrupt state). */
  private adopt(c: StoredCertificate, thumbprint: string): void {
    this.state = {
      ...this.state,
      deviceId: isDeviceId(c.info.subjectCN) ? c.info.subjectCN : this.state.deviceId,
      current: { thumbprint, serialNumber: c.info.serialNumber, storeId: c.id, subject: c.info.subject, issuer: c.info.issuer, notBefore: c.info.notBefore, notAfter: c.info.notAfter, sha256: c.info.sha256, enrolledAt: c.info.notBefore, how: 'enrolled' },
    };
    saveState(this.config.stateDir, this.state);
  }

  private ensureWritable(authority: Authority): void {
    if (authority.readOnly) {
      throw new AgentError('retry-later', 'ORG_READ_ONLY', 'The org is in read-only mode (maintenance), so devices cannot enroll or renew right now. Nothing was changed on this device.',
        'Nothing to do on this device: the agent tries again later on its own.');
    }
  }

  /**
   * state.json of an earlier version holds the unkeyed settings hash (guessable offline): a hold or pending
   * request recorded under it is the same request, so it is kept under the keyed hash instead of being dropped.
   */
  private migrateRequestIdentity(): void {
    const legacy = this.backend.legacyRequestIdentity;
    if (!legacy) return;
    const { hold, pending } = this.state;
    const fix = <T extends { backend: string; requestIdentity: string }>(x: T | undefined): T | undefined =>
      x && x.backend === this.backend.kind && x.requestIdentity === legacy ? { ...x, requestIdentity: this.backend.requestIdentity } : x;
    if ((hold && hold.requestIdentity === legacy) || (pending && pending.requestIdentity === legacy)) {
      this.state = { ...this.state, hold: fix(hold), pending: fix(pending) };
      saveState(this.config.stateDir, this.state);
    }
  }

  /** After a rejection the same request (same backend and settings) is not resent before the hold ends. */
  private checkHold(): void {
    this.migrateRequestIdentity();
    const h = this.state.hold;
    if (!h || this.opts.force) return;
    if (h.backend !== this.backend.kind || h.requestIdentity !== this.backend.requestIdentity || Date.parse(h.until) <= this.now().getTime()) return;
    this.trace.log(`Not sending a request: the CA rejected the last one at ${h.at} and the hold lasts until ${h.until}.`);
    throw new AgentError('rejected', h.code,
      `The CA rejected this device's last request (at ${h.at}): ${h.message} The agent does not send the same request again before ${h.until}, so that it does not flood the CA.`,
      h.remedy ?? 'Fix the cause with the CA administrator, then run: device-trust-agent run --forceRenewal');
  }

  /** Records what happened to a request: a PENDING one keeps its key for the next run, a rejected one is held. */
  private async afterFailedRequest(e: unknown, key: LocalKey, how: 'enrolled' | 'renewed'): Promise<void> {
    if (isAgentError(e) && e.code === PENDING_CODE) {
      this.state = { ...this.state, pending: { thumbprint: key.thumbprint, backend: this.backend.kind, requestIdentity: this.backend.requestIdentity, since: this.state.pending?.since ?? this.now().toISOString(), how, message: e.message } };
      saveState(this.config.stateDir, this.state);
      return;
    }
    await this.forget(key.thumbprint);
    if (this.state.pending?.thumbprint === key.thumbprint) this.state = { ...this.state, pending: undefined };
    if (isAgentError(e) && e.failure === 'rejected' && this.backend.holdAfterRejectionSeconds > 0) {
      const at = this.now();
      this.state = {
        ...this.state,
        hold: { backend: this.backend.kind, requestIdentity: this.backend.requestIdentity, code: e.code, message: e.message, ...(e.remedy ? { remedy: e.remedy } : {}),
          at: at.toISOString(), until: new Date(at.getTime() + this.backend.holdAfterRejectionSeconds * 1000).toISOString() },
      };
      saveState(this.config.stateDir, this.state);
    }
  }

  private async dropPending(): Promise<void> {
    const p = this.state.pending;
    if (!p) return;
    if (p.thumbprint !== this.state.current?.thumbprint) await this.forget(p.thumbprint);
    this.state = { ...this.state, pending: undefined };
    saveState(this.config.stateDir, this.state);
  }

  /** A request left PENDING by an earlier run is asked about again, with the same key, instead of starting over. */
  private async resumePending(authority: Authority, deviceId: string, current: StoredCertificate | undefined): Promise<RunResult | undefined> {
    this.migrateRequestIdentity();
    const p = this.state.pending;
    if (!p) return undefined;
    const key = p.backend === this.backend.kind && p.requestIdentity === this.backend.requestIdentity && this.backend.resume ? await this.loadKey(p.thumbprint) : undefined;
    if (!key || !this.backend.resume) {
      this.trace.log('A pending request from an earlier run no longer matches the configuration (or its key is gone); starting afresh.');
      await this.dropPending();
      return undefined;
    }
    this.ensureWritable(authority);
    const resume = this.backend.resume.bind(this.backend);
    let issued: Issued;
    try {
      issued = await resume({ key, deviceId });
    } catch (e) {
      await this.afterFailedRequest(e, key, p.how);
      throw e;
    }
    // The pending record (and its key) stays until the certificate is installed: a failed install polls again.
    return this.install(authority, issued, key, current, p.how, deviceId);
  }

  /**
   * When the state already says a new key will be needed (no certificate, renewal due, forced), it is generated
   * in the background while the store and the CA are asked; an unneeded one is simply dropped (never written).
   */
  private startEarlyKey(): void {
    const cur = this.state.current;
    const due = !cur || Date.parse(cur.renewFrom ?? cur.notAfter) <= this.now().getTime();
    if (this.opts.side !== 'user' || (!this.opts.force && !due) || (this.state.pending && !this.opts.force)) return;
    // A request will be made: its CSR (and SCEP's signer certificate) need @peculiar/x509. Loaded here, before the
    // first request (prepare awaits it), not at start-up: a pass with nothing to do never loads it. Loading it while
    // the org is asked overlaps the network but raised the pass's peak RSS by 4–6 MiB (bench enrollment findings).
    this.requestCode = import('../certificates/x509.js').then(() => undefined, () => undefined);
    // A key in the store is made only when it is used, on the main thread: made on a worker thread while the pass
    // signed with the current key in the same NSS database, a renewal hung under load (key-crash test, CI).
    if (this.keys) return;
    this.earlyKey = generateLocalKey(this.backend.keyAlgorithm);
    this.earlyKey.catch(() => undefined);
  }

  private async newKey(): Promise<LocalKey> {
    const algorithm = this.backend.keyAlgorithm;
    const early = this.earlyKey;
    this.earlyKey = undefined;
    const keys = this.keys;
    if (keys) {
      const info = await keys.info();
      // The reference is written at once, inside the step: a pass killed later still knows the key and removes it.
      return this.trace.step(`Generate the device key (${algorithm}) inside the ${info.description}`, async () => {
        const k = await keyInStore(keys, await keys.generate(algorithm, newKeyLabel(Date.now())));
        // Killed right here, the key has no reference yet: the next pass's orphan sweep removes it (orphan-keys.ts).
        this.trace.log(`Device key ${k.storeId!.slice(0, 12)} made in the key store; recording it`);
        this.creds.writeKeyRef(k.thumbprint, k.storeId!);
        return k;
      }, (k) => `key thumbprint ${k.thumbprint}, protection ${info.protection} (${info.reason})`);
    }
    const key = await this.trace.step(`Generate the device key (${algorithm}) on this machine`, () => early ?? generateLocalKey(algorithm),
      (k) => `key thumbprint ${k.thumbprint}${early ? ' (generated while the CA was asked)' : ''}`);
    this.creds.writeKey(key);
    return key;
  }

  private async enroll(authority: Authority, deviceId: string, previous: StoredCertificate | undefined): Promise<RunResult> {
    this.ensureWritable(authority);
    this.checkHold();
    const key = await this.newKey();
    let issued: Issued;
    try {
      issued = await this.backend.enroll({ key, deviceId });
    } catch (e) {
      await this.afterFailedRequest(e, key, 'enrolled');
      throw e;
    }
    return this.installOrDiscard(authority, issued, key, previous, 'enrolled', deviceId);
  }

  private async renew(authority: Authority, deviceId: string, current: StoredCertificate, currentKey: LocalKey): Promise<RunResult> {
    this.ensureWritable(authority);
    this.checkHold();
    const key = await this.newKey();
    let issued: Issued;
    try {
      issued = await this.backend.renew({ key, deviceId, currentCertPem: current.pem, currentKey });
    } catch (e) {
      // A refusal about time is the clock's fault: enrolling afresh would fail the same way, every run.
      const clock = await this.clockRefusal(e);
      if (clock) {
        await this.forget(key.thumbprint);
        throw clock;
      }
      // A refused TPM attestation would be refused the same way at enrollment (docs/PROTOCOL.md §11); an attested
      // certificate's renewal refusal (§13.4) is not quietly turned into an unattested enrollment.
      if (isAgentError(e) && e.failure === 'rejected' && !/^E0000_ATTESTATION_/.test(e.code) && !ATTESTED_RENEWAL_REFUSALS.has(e.code)) {
        await this.forget(key.thumbprint);
        this.trace.log(`Renewal was refused (${e.message}); enrolling afresh.`);
        return this.enroll(authority, deviceId, current);
      }
      await this.afterFailedRequest(e, key, 'renewed');
      throw e;
    }
    return this.installOrDiscard(authority, issued, key, current, 'renewed', deviceId);
  }

  private async installOrDiscard(authority: Authority, issued: Issued, key: LocalKey, previous: StoredCertificate | undefined, how: 'enrolled' | 'renewed', deviceId: string): Promise<RunResult> {
    try {
      return await this.install(authority, issued, key, previous, how, deviceId);
    } catch (e) {
      await this.forget(key.thumbprint);
      throw e;
    }
  }

  private async install(authority: Authority, issued: Issued, key: LocalKey, previous: StoredCertificate | undefined, how: 'enrolled' | 'renewed', deviceId: string): Promise<RunResult> {
    const certificate = issued.certificatePem;
    const info = await this.trace.step('Check the issued certificate (key, issuer, chain, clientAuth, identity, strength, validity)', async () =>
      checkIssuedCertificate(certificate, { key, caChainPem: authority.chainPem, issuerCN: authority.issuerCN, owns: authority.owns, issuedBy: authority.name, pinnedPem: authority.pinnedPem, now: this.now(),
        identity: deviceId, maxValiditySeconds: authority.maxValiditySeconds, lifetimeSource: authority.lifetimeSource }),
      (i) => `serial ${i.serialNumber}, valid until ${i.notAfter}`);
    this.creds.writeCertificate(key.thumbprint, certificate, authority.chainPem);
    const oldTp = previous ? await thumbprintOf(previous) : undefined;
    const oldProtection = oldTp ? await this.protectionOf(oldTp, previous!.id) : undefined;
    const previousAttested = this.state.current?.thumbprint === oldTp ? this.state.current?.keyAttestation?.attested : undefined;
    // The previous certificate goes first (NSS files same-subject certificates under one nickname); if
    // anything below fails it is put back from the agent's own copy, so the device never ends up with none.
    const restorePrevious = async () => {
      const cred = oldTp && this.creds.complete().find((c) => c.thumbprint === oldTp);
      if (cred) await this.installCredential(cred.thumbprint, cred.certPem, cred.chainPem).catch(() => undefined);
    };
    // A key-store key has its own id and label, so the new pair goes in first and the previous one leaves after.
    const inStore = key.storeId !== undefined;
    const removePrevious = (p: StoredCertificate) => this.trace.step(`Remove the previous certificate ${p.info.serialNumber} from the store`, () => this.platform.store.remove(p.id));
    if (previous && !inStore) await removePrevious(previous);
    let stored: StoredCertificate;
    try {
      stored = await this.trace.step(`Install into the ${this.platform.store.description}`, () => this.installCredential(key.thumbprint, certificate, authority.chainPem),
        (s) => `as "${s.id}"`);
    } catch (e) {
      if (!inStore) await restorePrevious();
      throw e;
    }
    try {
      this.state = {
        ...this.state,
        deviceId: isDeviceId(info.subjectCN) ? info.subjectCN : this.state.deviceId,
        current: { thumbprint: key.thumbprint, serialNumber: info.serialNumber, storeId: stored.id, subject: info.subject, issuer: info.issuer, notBefore: info.notBefore, notAfter: info.notAfter, sha256: info.sha256, enrolledAt: this.now().toISOString(), how, caSha256: chainFingerprints(authority.chainPem), keyProtection: key.protection,
          ...(issued.attestation ? { keyAttestation: issued.attestation } : {}),
          renewFrom: new Date(Date.parse(info.notAfter) - this.windowMs(authority, info, true)).toISOString() },
        hold: undefined,
        pending: undefined,
        forceRequested: undefined,
      };
      saveState(this.config.stateDir, this.state);
    } catch (e) {
      await this.platform.store.remove(stored.id).catch(() => undefined);
      if (!inStore) await restorePrevious();
      throw new AgentError('local', 'STATE_WRITE_FAILED', `The new certificate could not be recorded (${(e as Error).message}); it was removed again and the previous one kept.`,
        'Check free disk space and permissions of the state directory, then run again.', { cause: e });
    }
    // The previous pair (and, on migration, its old key file) goes only once the new one is recorded.
    if (previous && inStore && previous.id !== stored.id) {
      await removePrevious(previous).catch((e) => this.warn('LOCAL_FAILURE', `The previous certificate ${previous.info.serialNumber} could not be removed yet (${(e as Error).message}); the next run removes it.`));
    }
    if (oldTp && oldTp !== key.thumbprint) await this.forget(oldTp);
    const browserPolicy = await this.configureBrowsers(authority);
    const label = (p: string, a: boolean | undefined) => (p === 'tpm' && a ? 'tpm (attested)' : p);
    const [was, now] = [oldProtection && label(oldProtection, previousAttested), label(key.protection, issued.attestation?.attested)];
    if (was && was !== now) {
      this.events.record('KEY_PROTECTION_CHANGED', `The device key is now protected by ${key.protection === 'file' ? 'a key file' : key.protection === 'tpm' ? `the TPM${issued.attestation?.attested ? ', attested to the org' : ''}` : 'the software token'} (was ${was})${issued.attestation && !issued.attestation.attested && key.protection === 'tpm' ? `; not attested: ${issued.attestation.reason}` : ''}.`,
        { from: was, to: now });
    }
    await this.checkInterception(authority, certificate, key, info.serialNumber);
    const event = how === 'enrolled' ? 'ENROLLED' : 'RENEWED';
    this.events.record(event, `Certificate ${info.serialNumber} ${how} for device ${info.subjectCN}, valid until ${info.notAfter}, installed in ${this.platform.store.description}.`,
      { serialNumber: info.serialNumber, notAfter: info.notAfter, store: this.platform.store.description, ...(previous ? { replaced: previous.info.serialNumber } : {}), correlationId: this.http.traceId });
    // Written with the pass's outcome (recordLastRun, one write less); a pass killed before that is
    // reconciled from the event log instead (ensureEnrollmentEvent).
    if (this.state.current) this.state = { ...this.state, current: { ...this.state.current, eventLogged: true } };
    return {
      outcome: how,
      backend: this.backend.kind,
      message: `Certificate ${how}: serial ${info.serialNumber}, issued by ${info.issuerCN || info.issuer}, valid until ${info.notAfter}.`,
      deviceId: this.state.deviceId,
      certificate: this.installed(stored, key.thumbprint),
      warnings: this.warnings, ...(this.faults.length ? { faults: this.faults } : {}),
      ...(browserPolicy ? { browserPolicy } : {}),
    };
  }

  private async configureBrowsers(authority: Authority): Promise<PolicyResult | undefined> {
    if (this.config.skipBrowserSetup) {
      this.trace.log('Browser setup skipped (SkipBrowserSetup=true).');
      return undefined;
    }
    const refused = authority.refusedHostPatterns ?? [];
    if (refused.length) {
      this.warn('HOST_PATTERNS_REFUSED', `${cap(authority.name)} sent host patterns that were refused and not written to the browser policy: ${refused.map((r) => `"${r.pattern}" (${r.reason})`).join('; ')}. Ask the org admin to correct them, or add their domain to hostPatternAllowList in the managed configuration.`);
    }
    const res = await this.platform.configureBrowsers(authority.hostPatterns, authority.issuerFilter);
    this.trace.log(`Browser policy: written ${res.written.join(', ') || 'nowhere'}${res.skipped.length ? `; skipped ${res.skipped.map((s) => `${s.dir} (${s.reason})`).join(', ')}` : ''}`);
    if (res.written.length === 0 && res.skipped.length > 0) {
      this.warn('BROWSER_SETUP_SKIPPED', `The browser policy could not be written (${res.skipped.map((s) => `${s.dir}: ${s.reason}`).join('; ')}); browsers will ask which certificate to present. The device side (run as root: run --device) writes it.`);
    }
    return res;
  }

  /**
   * After install, the new certificate is presented once to the mTLS endpoint: a TLS interceptor the machine
   * trusts is invisible otherwise, and would make every browser sign-in fail with a "working" certificate.
   */
  private async checkInterception(authority: Authority, certPem: string, key: LocalKey, serialNumber: string): Promise<void> {
    const keyPem = this.creds.readKeyPem(key.thumbprint);
    if (!authority.mtlsUrl) return;
    try {
      // A key in a token is presented by the platform's TLS client (a child process); without one, the published
      // TLS chain is the evidence alone.
      const cred = mtlsCredential({ certPem, serialNumber, keyPem, keyRef: key.storeId }, this.platform.keys);
      if ('unavailable' in cred) this.trace.log(`mTLS check after install: not made (${cred.unavailable})`);
      const { intercepted } = 'unavailable' in cred ? { intercepted: undefined } : await checkMtlsPath(this.http, authority.mtlsUrl, cred, this.config.orgUrl ? [new URL(this.config.orgUrl).host] : []);
      if (intercepted) {
        this.warnings.push(`${intercepted.message} What to do: ${intercepted.remedy}`);
        this.faults.push({ code: intercepted.code, message: intercepted.message, ...(intercepted.remedy ? { remedy: intercepted.remedy } : {}) });
        this.trace.log(`warning: ${intercepted.message}`);
      } else await this.checkPublishedChain(authority, true);
    } catch (e) {
      // Only the interception matters here; any other failure is for status --check and diagnose to report.
      this.trace.log(`mTLS check after install: ${(e as Error).message}`);
    }
  }

  /** The chains seen for the org (and, with `reach`, the mTLS host) against the TLS issuers the org publishes. */
  private async checkPublishedChain(authority: Authority, reach: boolean): Promise<void> {
    if (!authority.mtlsUrl || !this.config.orgUrl) return;
    const published = authority.serverTlsPins ?? [];
    const orgHost = new URL(this.config.orgUrl).host;
    const remembered = this.state.serverTls;
    const change = pinChangeFinding(published, remembered, orgHost);
    if (change) {
      this.warnings.push(`${change.message} What to do: ${change.remedy}`);
      this.faults.push({ code: change.code, message: change.message, ...(change.remedy ? { remedy: change.remedy } : {}) });
      this.trace.log(`warning: ${change.message}`);
    }
    const pins = effectivePins(published, this.opts.loaded.sources.serverTlsPins === 'managed' ? this.config.serverTlsPins : [], remembered);
    const found = (await checkPublishedChains(this.http, { mtlsUrl: authority.mtlsUrl, pins }, this.config.orgUrl, { reach }).catch(() => []))[0]?.error;
    if (found) {
      this.warnings.push(`${found.message} What to do: ${found.remedy}`);
      this.faults.push({ code: found.code, message: found.message, ...(found.remedy ? { remedy: found.remedy } : {}) });
      this.trace.log(`warning: ${found.message}`);
      return;
    }
    // Nothing against them: remember the published pins, or (first use) the CAs each org host presented.
    const mtlsHost = new URL(authority.mtlsUrl).host;
    const next = pinsToRemember(published, remembered, { [orgHost]: this.http.presentedChain(orgHost), [mtlsHost]: this.http.presentedChain(mtlsHost) }, this.now());
    if (next) {
      // Written with the pass's outcome (recordLastRun): pins lost to a kill are simply learned again next pass.
      this.state = { ...this.state, serverTls: next };
      this.trace.log(`Server TLS pins remembered (${next.source === 'published' ? 'published by the org' : `first use: ${next.hosts.join(', ')}`}).`);
    }
  }

  private warn(kind: EventKind, message: string): void {
    this.warnings.push(message);
    this.events.record(kind, message);
    this.trace.log(`warning: ${message}`);
  }

  private installed(c: StoredCertificate, thumbprint: string): InstalledCertificate {
    return { ...c.info, storeId: c.id, store: this.platform.store.description, thumbprint };
  }
}

function cap(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

export function runPass(opts: RunOptions): Promise<RunResult> {
  return new EnrollmentPass(opts).run();
}
