import crypto from 'node:crypto';
import type { RunResult } from '../../src-main/core/agent.js';
import { AgentError } from '../../src-main/base/errors.js';
import type { PassContext, PassLock, ScheduleStore } from '../../src-main/core/scheduler/engine.js';
import type { CertFacts, Snapshot } from '../../src-main/core/scheduler/plan.js';
import { emptyRecord, type ScheduleRecord, type Trigger } from '../../src-main/core/scheduler/record.js';

const DAY = 86_400_000;

/**
 * A stand-in for the org and the agent's pass, for the simulated year only (the real pass against the lab
 * org is exercised by the integration tests). It keeps the agent's contract: enroll when there is no valid
 * certificate, renew once the renewal moment the scheduler gives has come, "nothing to do" when the org is
 * unreachable but the certificate is still valid, and the same AgentError classes the agent throws.
 */
export class ModelWorld {
  orgDown = false;
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

  constructor(private readonly now: () => number, readonly validityMs = 365 * DAY, readonly windowMs = 30 * DAY) {}

  store: ScheduleStore = {
    load: (): Snapshot => ({ record: structuredClone(this.record), cert: this.cert && { ...this.cert }, configured: this.configured, configFingerprint: this.configFingerprint }),
    save: (r) => {
      this.record = structuredClone(r);
      this.stateWrites++;
    },
    changeToken: () => `${this.stateWrites}|${this.configFingerprint}|${this.cert?.sha256 ?? ''}`,
  };

  lock: PassLock = {
    tryAcquire: () => {
      if (this.locked) return { ok: false, holder: { pid: 1, host: 'model', since: '', purpose: 'model pass', nonce: 'x' } };
      this.locked = true;
      return { ok: true, release: () => (this.locked = false) };
    },
  };

  private issue(): CertFacts {
    const notAfter = this.now() + this.validityMs;
    return { sha256: crypto.randomBytes(32).toString('hex'), notAfter, windowStart: notAfter - this.windowMs };
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
        throw new AgentError('retry-later', 'UNREACHABLE', 'Cannot reach the org.');
      }
      if (this.cert && this.revoked.has(this.cert.sha256)) {
        record('failed', 'CERT_REVOKED');
        throw new AgentError('rejected', 'CERT_REVOKED', 'The device certificate has been revoked.', 'run --forceRenewal');
      }
      if (!valid) {
        this.cert = this.issue();
        record('enrolled');
        return this.result('enrolled', 'enrolled');
      }
      const renewAt = ctx.renewAt({ sha256: this.cert!.sha256, notAfter: new Date(this.cert!.notAfter), windowStart: new Date(this.cert!.windowStart) });
      if (at >= renewAt.getTime()) {
        this.cert = this.issue();
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
