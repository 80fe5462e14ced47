import crypto from 'node:crypto';
import type { RunResult } from '../../src-main/core/enrollment/pass.js';
import { AgentError } from '../../src-main/base/errors.js';
import type { PassContext, PassLock, ScheduleStore } from '../../src-main/core/scheduler/pass-engine.js';
import type { CertFacts, Snapshot } from '../../src-main/core/scheduler/plan.js';
import { emptyRecord, type ScheduleRecord, type Trigger } from '../../src-main/core/scheduler/record.js';
import { findClockAnomalies, repairRecord } from '../../src-main/core/scheduler/anomaly.js';
import { DEFAULT_POLICY } from '../../src-main/core/scheduler/policy.js';

const DAY = 86_400_000;

/**
 * A stand-in for the org and the agent's pass, for the simulated year only (the real pass against the lab
 * org is exercised by the integration tests). It keeps the agent's contract: enroll when there is no valid
 * certificate, renew once the renewal moment the scheduler gives has come, "nothing to do" when the org is
 * unreachable but the certificate is still valid, and the same AgentError classes the agent throws.
 */
export class ModelWorld {
  orgDown = false;
  /** The org answers 429/503 with this Retry-After while down (ms), as a capped org does. */
  retryAfterMs: number | undefined;
  /** Enrollment and renewal refused with "read-only" (retry-later). */
  readOnly = false;
  /** The CA refuses renewal while the certificate is valid (its own window has not opened): retry-later with Retry-After. */
  caRefusesRenewal = false;
  /** True time (the org's clock); the device's clock (`now`) may differ. Tokens and Kerberos fail beyond 5 minutes. */
  trueNow: () => number;
  /** Every certificate issued, in true time, with when (true time) it was replaced by a renewal. */
  issued: { sha256: string; windowStart: number; notAfter: number; renewedAt?: number }[] = [];
  revoked = new Set<string>();
  cert: CertFacts | undefined;
  record: ScheduleRecord = emptyRecord();
  configFingerprint = 'config-1';
  configured = true;
  locked = false;
  /** Every pass that ran, in order, with the outcome the agent reported. */
  passes: { at: number; trigger: Trigger; outcome: string; code?: string }[] = [];
  inFlight = 0;
  maxInFlight = 0;
  /** Called in the middle of each pass (to inject events while a pass runs). */
  duringPass: (() => void) | undefined;
  stateWrites = 0;

  constructor(private readonly now: () => number, readonly validityMs = 365 * DAY, readonly windowMs = 30 * DAY, trueNow?: () => number) {
    this.trueNow = trueNow ?? now;
  }

  store: ScheduleStore = {
    load: (): Snapshot => ({ record: structuredClone(this.record), cert: this.cert && { ...this.cert }, configured: this.configured, configFingerprint: this.configFingerprint }),
    save: (r) => {
      this.record = structuredClone(r);
      this.stateWrites++;
    },
    changeToken: () => `${this.stateWrites}|${this.configFingerprint}|${this.cert?.sha256 ?? ''}`,
    repairClock: (now) => {
      const found = findClockAnomalies(DEFAULT_POLICY, this.record, now);
      if (found.length) {
        this.record = repairRecord(this.record, found, now);
        this.stateWrites++;
        this.anomalies += found.length;
      }
      return found;
    },
  };
  anomalies = 0;

  lock: PassLock = {
    tryAcquire: () => {
      if (this.locked) return { ok: false, holder: { pid: 1, host: 'model', since: '', purpose: 'model pass', nonce: 'x' } };
      this.locked = true;
      return { ok: true, release: () => (this.locked = false) };
    },
  };

  private issue(): CertFacts {
    // The org stamps certificates with its own (true) clock.
    const notAfter = this.trueNow() + this.validityMs;
    const c = { sha256: crypto.randomBytes(32).toString('hex'), notAfter, windowStart: notAfter - this.windowMs };
    this.issued.push({ sha256: c.sha256, windowStart: c.windowStart, notAfter: c.notAfter });
    return c;
  }

  private replaceForRenewal(): void {
    const old = this.issued.find((c) => c.sha256 === this.cert?.sha256);
    if (old) old.renewedAt = this.trueNow();
    this.cert = this.issue();
  }

  /** The org's checks that depend on this device's clock (renewal token nbf/exp, Kerberos): 5 minutes ahead, 1 hour behind. */
  private clockRefusal(): AgentError | undefined {
    const skew = this.now() - this.trueNow();
    if (skew <= 5 * 60_000 && skew >= -3_600_000) return undefined;
    return new AgentError('retry-later', 'CLOCK_SKEW', `The org refused the request because of time: this device's clock is ${Math.round(skew / 1000)} s off.`, 'Fix the clock.');
  }

  private result(outcome: RunResult['outcome'], message: string): RunResult {
    return { outcome, backend: 'idp', message, deviceId: 'model-device', warnings: [] };
  }

  pass = async (ctx: PassContext): Promise<RunResult> => {
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    const at = this.now();
    const record = (outcome: string, code?: string) => this.passes.push({ at, trigger: ctx.trigger, outcome, ...(code ? { code } : {}) });
    try {
      await Promise.resolve();
      this.duringPass?.();
      await Promise.resolve();
      if (!this.configured) {
        record('failed', 'NOT_CONFIGURED');
        throw new AgentError('config', 'NOT_CONFIGURED', 'No org URL is configured.');
      }
      const valid = this.cert && this.cert.notAfter > at;
      if (this.orgDown) {
        if (valid) {
          record('nothing-to-do');
          return this.result('nothing-to-do', 'This device is enrolled; the org was not reachable for checks.');
        }
        record('failed', 'UNREACHABLE');
        const e = new AgentError('retry-later', 'UNREACHABLE', 'Cannot reach the org.');
        if (this.retryAfterMs) e.retryAfterMs = this.retryAfterMs;
        throw e;
      }
      if (this.cert && this.revoked.has(this.cert.sha256)) {
        record('failed', 'CERT_REVOKED');
        throw new AgentError('rejected', 'CERT_REVOKED', 'The device certificate has been revoked.', 'run --forceRenewal');
      }
      const refuse = (when: boolean, code: string, msg: string, retryAfterMs?: number) => {
        if (!when) return;
        record('failed', code);
        const e = new AgentError('retry-later', code, msg);
        if (retryAfterMs) e.retryAfterMs = retryAfterMs;
        throw e;
      };
      if (!valid) {
        refuse(this.readOnly, 'ORG_READ_ONLY', 'The org is read-only.');
        const clock = this.clockRefusal();
        if (clock) {
          record('failed', clock.code);
          throw clock;
        }
        if (this.cert) this.replaceForRenewal();
        else this.cert = this.issue();
        record('enrolled');
        return this.result('enrolled', 'enrolled');
      }
      const renewAt = ctx.renewAt({ sha256: this.cert!.sha256, notAfter: new Date(this.cert!.notAfter), windowStart: new Date(this.cert!.windowStart) });
      if (at >= renewAt.getTime()) {
        refuse(this.readOnly, 'ORG_READ_ONLY', 'The org is read-only.');
        const clock = this.clockRefusal();
        if (clock) {
          record('failed', clock.code);
          throw clock;
        }
        refuse(this.caRefusesRenewal, 'SCEP_RENEWAL_REFUSED', 'The CA refused the renewal (its window has not opened).', 12 * 3_600_000);
        this.replaceForRenewal();
        record('renewed');
        return this.result('renewed', 'renewed');
      }
      record('nothing-to-do');
      return this.result('nothing-to-do', 'valid');
    } finally {
      this.inFlight--;
    }
  };
}
