import { X509Certificate } from 'node:crypto';
import { createPlatform, type Platform } from '../platform/index.js';
import type { PolicyResult } from '../platform/browser-policy.js';
import type { StoredCertificate } from '../platform/types.js';
import { checkIssuedCertificate, describeCertificate, parseCertificate, type CertInfo } from './certificate.js';
import { requireOrgUrl, type LoadedConfig } from './config.js';
import { CredentialFiles } from './credentials.js';
import { AgentError, isAgentError, type FailureClass } from './errors.js';
import { EventLog, type EventKind } from './events.js';
import { ensurePrivateDir } from './fsutil.js';
import { HttpClient } from './http.js';
import { IwaClient, labSignInAllowed } from './iwa.js';
import { createCsr, generateLocalKey, keyThumbprint, privateKeyPem, type LocalKey } from './keys.js';
import { discoverOrg } from './discovery.js';
import { IssuedAnswerSchema, type IssuedAnswer, type OrgConfig } from './protocol.js';
import { signRenewalToken } from './renewal.js';
import { checkRevocation } from './revocation.js';
import { loadState, saveState, type AgentState } from './state.js';
import type { Trace } from './trace.js';

export type TaskKind = 'user' | 'device';
export type Outcome = 'enrolled' | 'renewed' | 'nothing-to-do' | 'configured';

export interface RunOptions {
  loaded: LoadedConfig;
  task: TaskKind;
  force: boolean;
  trace: Trace;
  platform?: Platform;
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
  message: string;
  deviceId: string;
  certificate?: InstalledCertificate;
  warnings: string[];
  browserPolicy?: PolicyResult;
}

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
 * One pass of the registration task: enroll, renew, or nothing. Ordered so that a failure at any step
 * leaves the previous certificate, key and state as they were, and a crash is repaired by the next pass.
 */
export class EnrollmentTask {
  private readonly config;
  private readonly orgUrl: string;
  private readonly http: HttpClient;
  private readonly platform: Platform;
  private readonly creds: CredentialFiles;
  private readonly events: EventLog;
  private readonly trace: Trace;
  private readonly now: () => Date;
  private state!: AgentState;
  private readonly warnings: string[] = [];

  constructor(private readonly opts: RunOptions) {
    this.config = opts.loaded.config;
    this.orgUrl = requireOrgUrl(this.config);
    ensurePrivateDir(this.config.stateDir);
    this.http = new HttpClient({ tlsCaFile: this.config.tlsCaFile, timeoutMs: this.config.requestTimeoutMs });
    this.platform = opts.platform ?? createPlatform(this.config);
    this.creds = new CredentialFiles(this.config.stateDir);
    this.events = new EventLog(this.config.stateDir, opts.task);
    this.trace = opts.trace;
    this.now = opts.now ?? (() => new Date());
  }

  async run(): Promise<RunResult> {
    try {
      const result = await this.runInner();
      this.recordLastRun(result.outcome, undefined, result.message);
      return result;
    } catch (e) {
      const err = isAgentError(e) ? e : new AgentError('internal', 'INTERNAL', `Unexpected failure: ${(e as Error).message}`, undefined, { cause: e });
      const kind: EventKind = err.code === 'ORG_READ_ONLY' ? 'ORG_READ_ONLY' : FAILURE_EVENT[err.failure];
      this.events.record(kind, err.message, { code: err.code, ...(err.remedy ? { remedy: err.remedy } : {}) });
      this.recordLastRun('failed', err.code, err.message);
      throw err;
    } finally {
      await this.http.close();
    }
  }

  private recordLastRun(outcome: string, code: string | undefined, message: string): void {
    if (!this.state) return;
    try {
      saveState(this.config.stateDir, { ...this.state, lastRun: { at: this.now().toISOString(), task: this.opts.task, outcome, ...(code ? { code } : {}), message } });
    } catch {
      /* the outcome is still reported; a full disk is not made worse by failing here */
    }
  }

  private async runInner(): Promise<RunResult> {
    const { trace } = this;
    const loaded = loadState(this.config.stateDir);
    this.state = loaded.state;
    if (loaded.recoveredFrom) {
      this.events.record('STATE_RECOVERED', `The state file was unreadable and was moved to ${loaded.recoveredFrom}; it is rebuilt from the certificate store.`);
    }
    trace.log(`Task: ${this.opts.task}; org ${this.orgUrl}; store: ${this.platform.store.description}; state: ${this.config.stateDir}`);

    const inventory = await trace.step('Read the certificate store', () => this.platform.store.list(), (r) => `${r.length} personal certificate(s)`);
    let org: OrgConfig;
    try {
      org = await trace.step('Discover the org (IWA web apps, CA, mTLS host)', () => discoverOrg(this.http, this.orgUrl),
        (o) => `IWA primary ${o.iwa.primary}, ${o.iwa.backups.length} backup(s), failover ${o.iwa.failoverMode}${o.readOnly ? ', READ-ONLY' : ''}`);
    } catch (e) {
      return this.offlineAnswer(e, inventory);
    }

    if (this.opts.task === 'device') return this.deviceTask(org);

    const ours = inventory.filter((c) => c.info.issuerCN === org.ca.issuerCN);
    const current = await this.reconcile(ours);
    const deviceId = current?.info.subjectCN || this.state.deviceId;

    if (this.opts.force) {
      this.events.record('FORCED_RENEWAL', `Forced renewal: ${current ? `certificate ${current.info.serialNumber} will be replaced` : 'no certificate present'}.`);
      return this.enroll(org, deviceId, current);
    }
    if (!current) return this.enroll(org, deviceId, undefined);

    const tp = await thumbprintOf(current);
    if (org.crlUrl) {
      try {
        const rev = await trace.step('Check revocation (CRL)', () => checkRevocation(this.http, org.crlUrl!, org.ca.chainPem, current.info.serialNumber),
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
    const key = await this.creds.readKey(tp);
    if (!key) {
      this.events.record('KEY_MISSING', `The private key of certificate ${current.info.serialNumber} is missing from ${this.creds.root}.`);
      throw new AgentError('local', 'KEY_MISSING', `The private key of the device certificate ${current.info.serialNumber} is missing, so it cannot be renewed or proven.`,
        'Run: device-trust-agent run --forceRenewal (it removes the certificate and enrolls a new one).');
    }
    const now = this.now().getTime();
    const notAfter = Date.parse(current.info.notAfter);
    if (notAfter <= now) {
      this.events.record('EXPIRED_FOUND', `Certificate ${current.info.serialNumber} expired on ${current.info.notAfter}; enrolling a new one.`);
      return this.enroll(org, deviceId, current);
    }
    const windowStart = notAfter - org.certificate.renewalWindowSeconds * 1000;
    const renewFrom = this.opts.renewAt?.({ sha256: current.info.sha256, notAfter: new Date(notAfter), windowStart: new Date(windowStart) }).getTime() ?? windowStart;
    if (now >= renewFrom) return this.renew(org, deviceId, current, key);

    const browserPolicy = this.configureBrowsers(org);
    const msg = `This device is enrolled: certificate ${current.info.serialNumber} is valid until ${current.info.notAfter}; renewal from ${new Date(renewFrom).toISOString()}.`;
    return { outcome: 'nothing-to-do', message: msg, deviceId, certificate: this.installed(current, tp), warnings: this.warnings, ...(browserPolicy ? { browserPolicy } : {}) };
  }

  /** The device task (system context) writes the machine-wide browser policy; certificates are per user. */
  private deviceTask(org: OrgConfig): RunResult {
    const browserPolicy = this.configureBrowsers(org);
    return {
      outcome: 'configured',
      message: browserPolicy ? `Browser policy written to ${browserPolicy.written.join(', ') || 'no directory'}.` : 'Browser setup skipped (SkipBrowserSetup=true).',
      deviceId: this.state.deviceId,
      warnings: this.warnings,
      ...(browserPolicy ? { browserPolicy } : {}),
    };
  }

  /** Without the org we cannot enroll, but a valid certificate that is not due is still fine. */
  private async offlineAnswer(e: unknown, inventory: StoredCertificate[]): Promise<RunResult> {
    if (!isAgentError(e) || e.failure !== 'retry-later' || this.opts.force) throw e;
    const state = this.state.current;
    const current = state && inventory.find((c) => c.id === state.storeId);
    const now = this.now().getTime();
    if (!current || Date.parse(current.info.notAfter) <= now) throw e;
    this.warn('REVOCATION_UNCHECKED', `The org could not be reached, so revocation and renewal were not checked: ${e.message}`);
    return {
      outcome: 'nothing-to-do',
      message: `This device is enrolled (certificate ${current.info.serialNumber}, valid until ${current.info.notAfter}); the org was not reachable for checks.`,
      deviceId: current.info.subjectCN,
      certificate: this.installed(current, state.thumbprint),
      warnings: this.warnings,
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
    const chosenCred = complete.find((c) => c.thumbprint === this.state.current?.thumbprint)
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
    for (const tp of this.creds.list()) if (tp !== chosenCred?.thumbprint) this.creds.remove(tp);
    if (!keepSha) return undefined;

    let kept = (extras.length ? await this.platform.store.list() : ours).find((o) => o.info.sha256 === keepSha);
    if (!kept && chosenCred) {
      // Interrupted between removing the old certificate and installing the new one, or removed by hand.
      kept = await this.trace.step('Reinstall the device certificate from the agent\'s own copy', () => this.installCredential(chosenCred.thumbprint, chosenCred.certPem, chosenCred.chainPem));
      this.events.record('CERT_REINSTALLED', `Certificate ${kept.info.serialNumber} was missing from ${this.platform.store.description} and was reinstalled.`);
    }
    if (!kept) return undefined;
    const tp = chosenCred?.thumbprint ?? (await thumbprintOf(kept));
    if (this.state.current?.sha256 !== kept.info.sha256 || this.state.current.storeId !== kept.id) this.adopt(kept, tp);
    return kept;
  }

  private async installCredential(thumbprint: string, certPem: string, chainPem: string[]): Promise<StoredCertificate> {
    const keyPem = this.creds.readKeyPem(thumbprint);
    if (!keyPem) throw new AgentError('local', 'KEY_MISSING', 'The private key file of the certificate to install is missing.');
    const issuingCas = chainPem.filter((p) => {
      const c = new X509Certificate(p);
      return c.subject !== c.issuer;
    });
    const info = describeCertificate(parseCertificate(certPem));
    return this.platform.store.install({ certPem, chainPem: issuingCas, keyPem, label: `device-trust-${info.serialNumber.slice(0, 16)}` });
  }

  /** Rebuilds the state's record of the current certificate from the store (lost or corrupt state). */
  private adopt(c: StoredCertificate, thumbprint: string): void {
    this.state = {
      ...this.state,
      deviceId: /^[0-9a-f-]{36}$/.test(c.info.subjectCN) ? c.info.subjectCN : this.state.deviceId,
      current: { thumbprint, serialNumber: c.info.serialNumber, storeId: c.id, subject: c.info.subject, issuer: c.info.issuer, notBefore: c.info.notBefore, notAfter: c.info.notAfter, sha256: c.info.sha256, enrolledAt: c.info.notBefore, how: 'enrolled' },
    };
    saveState(this.config.stateDir, this.state);
  }

  private ensureWritable(org: OrgConfig): void {
    if (org.readOnly) {
      throw new AgentError('retry-later', 'ORG_READ_ONLY', 'The org is in read-only mode (maintenance), so devices cannot enroll or renew right now. Nothing was changed on this device.',
        'Nothing to do on this device: the agent tries again later on its own.');
    }
  }

  private async newKey(): Promise<LocalKey> {
    const key = await this.trace.step(`Generate the device key (${this.config.keyAlgorithm}) on this machine`, () => generateLocalKey(this.config.keyAlgorithm),
      (k) => `key thumbprint ${k.thumbprint}`);
    this.creds.writeKey(key);
    return key;
  }

  private async enroll(org: OrgConfig, deviceId: string, previous: StoredCertificate | undefined): Promise<RunResult> {
    this.ensureWritable(org);
    const key = await this.newKey();
    try {
      const labPrincipal = this.labPrincipals(org);
      const iwa = new IwaClient({ http: this.http, org, trace: this.trace, labPrincipal });
      const deviceToken = await this.trace.step('Get a device token from the IWA web app (machine identity)',
        () => iwa.deviceToken({ kind: 'device', principal: this.config.devicePrincipal ?? `host/${this.config.deviceName}`, keytab: this.config.deviceKeytab }, { deviceId, deviceName: this.config.deviceName, keyThumbprint: key.thumbprint }),
        () => `from ${iwa.baseUrl}`);
      this.trace.secret('Device token', deviceToken);
      const userToken = await this.trace.step('Get a user token from the IWA web app (logged-on user)', () => iwa.userToken(deviceToken));
      this.trace.secret('User token', userToken);
      const csr = await this.trace.step('Create the certificate signing request', () => createCsr(key, `CN=${deviceId}`));
      const { data } = await this.trace.step('Ask the org to issue the certificate', () =>
        this.http.json(IssuedAnswerSchema, { url: `${this.orgUrl}/api/v1/device-trust/enroll`, method: 'POST', json: { userToken, csr }, what: 'the org' }));
      return await this.install(org, data, key, previous, 'enrolled');
    } catch (e) {
      this.creds.remove(key.thumbprint);
      throw e;
    }
  }

  private async renew(org: OrgConfig, deviceId: string, current: StoredCertificate, currentKey: LocalKey): Promise<RunResult> {
    this.ensureWritable(org);
    const key = await this.newKey();
    try {
      const renewalToken = await signRenewalToken({ currentKey, currentCertPem: current.pem, deviceId, newKeyThumbprint: key.thumbprint, now: this.now() });
      this.trace.secret('Renewal token (signed with the current key)', renewalToken);
      const csr = await this.trace.step('Create the certificate signing request', () => createCsr(key, `CN=${deviceId}`));
      const { data } = await this.trace.step('Ask the org to renew the certificate (no IWA needed)', () =>
        this.http.json(IssuedAnswerSchema, { url: `${this.orgUrl}/api/v1/device-trust/renew`, method: 'POST', json: { renewalToken, csr }, what: 'the org' }));
      return await this.install(org, data, key, current, 'renewed');
    } catch (e) {
      this.creds.remove(key.thumbprint);
      if (isAgentError(e) && e.failure === 'rejected') {
        this.trace.log(`Renewal was refused (${e.message}); enrolling afresh through the IWA web app.`);
        return this.enroll(org, deviceId, current);
      }
      throw e;
    }
  }

  private labPrincipals(org: OrgConfig): { device: string; user: string } | undefined {
    if (!this.config.labSignIn) return undefined;
    if (!labSignInAllowed(org)) {
      throw new AgentError('config', 'LAB_SIGN_IN_REFUSED', 'labSignIn is set, but this org is not a lab org on this machine; the lab-only sign-in is never used with a real org.',
        'Remove labSignIn from the configuration: real orgs use Kerberos (integrated Windows authentication).');
    }
    this.trace.log('LAB-ONLY SIGN-IN: no Kerberos; the lab org accepts a declared principal. Never used with a real org.');
    const user = process.env.USER || 'alice';
    return { device: `host/${this.config.deviceName}.lab.test@LAB.TEST`, user: `${user}@LAB.TEST` };
  }

  private async install(org: OrgConfig, answer: IssuedAnswer, key: LocalKey, previous: StoredCertificate | undefined, how: 'enrolled' | 'renewed'): Promise<RunResult> {
    const info = await this.trace.step('Check the issued certificate (key, issuer, chain, clientAuth, validity)', async () =>
      checkIssuedCertificate(answer.certificate, { key, caChainPem: org.ca.chainPem, issuerCN: org.ca.issuerCN, now: this.now() }),
      (i) => `serial ${i.serialNumber}, valid until ${i.notAfter}`);
    this.creds.writeCertificate(key.thumbprint, answer.certificate, org.ca.chainPem);
    const oldTp = previous ? await thumbprintOf(previous) : undefined;
    // The previous certificate goes first (NSS files same-subject certificates under one nickname); if
    // anything below fails it is put back from the agent's own copy, so the device never ends up with none.
    const restorePrevious = async () => {
      const cred = oldTp && this.creds.complete().find((c) => c.thumbprint === oldTp);
      if (cred) await this.installCredential(cred.thumbprint, cred.certPem, cred.chainPem).catch(() => undefined);
    };
    if (previous) await this.trace.step(`Remove the previous certificate ${previous.info.serialNumber} from the store`, () => this.platform.store.remove(previous.id));
    let stored: StoredCertificate;
    try {
      stored = await this.trace.step(`Install into the ${this.platform.store.description}`, () => this.installCredential(key.thumbprint, answer.certificate, org.ca.chainPem),
        (s) => `as "${s.id}"`);
    } catch (e) {
      await restorePrevious();
      throw e;
    }
    try {
      this.state = {
        ...this.state,
        deviceId: info.subjectCN && /^[0-9a-f-]{36}$/.test(info.subjectCN) ? info.subjectCN : this.state.deviceId,
        current: { thumbprint: key.thumbprint, serialNumber: info.serialNumber, storeId: stored.id, subject: info.subject, issuer: info.issuer, notBefore: info.notBefore, notAfter: info.notAfter, sha256: info.sha256, enrolledAt: this.now().toISOString(), how,
          renewFrom: new Date(Date.parse(info.notAfter) - org.certificate.renewalWindowSeconds * 1000).toISOString() },
      };
      saveState(this.config.stateDir, this.state);
    } catch (e) {
      await this.platform.store.remove(stored.id).catch(() => undefined);
      await restorePrevious();
      throw new AgentError('local', 'STATE_WRITE_FAILED', `The new certificate could not be recorded (${(e as Error).message}); it was removed again and the previous one kept.`,
        'Check free disk space and permissions of the state directory, then run again.', { cause: e });
    }
    if (oldTp && oldTp !== key.thumbprint) this.creds.remove(oldTp);
    const browserPolicy = this.configureBrowsers(org);
    const event = how === 'enrolled' ? 'ENROLLED' : 'RENEWED';
    this.events.record(event, `Certificate ${info.serialNumber} ${how} for device ${info.subjectCN}, valid until ${info.notAfter}, installed in ${this.platform.store.description}.`,
      { serialNumber: info.serialNumber, notAfter: info.notAfter, store: this.platform.store.description, ...(previous ? { replaced: previous.info.serialNumber } : {}) });
    return {
      outcome: how,
      message: `Certificate ${how}: serial ${info.serialNumber}, issued by ${info.issuerCN}, valid until ${info.notAfter}.`,
      deviceId: this.state.deviceId,
      certificate: this.installed(stored, key.thumbprint),
      warnings: this.warnings,
      ...(browserPolicy ? { browserPolicy } : {}),
    };
  }

  private configureBrowsers(org: OrgConfig): PolicyResult | undefined {
    if (this.config.skipBrowserSetup) {
      this.trace.log('Browser setup skipped (SkipBrowserSetup=true).');
      return undefined;
    }
    const res = this.platform.configureBrowsers(org.mtls.hostPatterns, org.ca.issuerCN);
    this.trace.log(`Browser policy: written ${res.written.join(', ') || 'nowhere'}${res.skipped.length ? `; skipped ${res.skipped.map((s) => `${s.dir} (${s.reason})`).join(', ')}` : ''}`);
    if (res.written.length === 0 && res.skipped.length > 0) {
      this.warn('BROWSER_SETUP_SKIPPED', `The browser policy could not be written (${res.skipped.map((s) => `${s.dir}: ${s.reason}`).join('; ')}); browsers will ask which certificate to present. The device task (run as root) writes it.`);
    }
    return res;
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

export function runTask(opts: RunOptions): Promise<RunResult> {
  return new EnrollmentTask(opts).run();
}
