import { X509Certificate } from 'node:crypto';
import { AgentError, isAgentError } from '../../base/errors.js';

/**
 * A SCEP CA that refuses a RenewalReq while the current certificate is valid is, almost always, a CA whose own
 * renewal window has not opened yet: micromdm's scepserver refuses a second certificate for the same subject
 * ("DN already exists") until -allowrenew days before the current one expires, and answers only failInfo
 * badRequest. Falling back to PKCSReq would be refused the same way and would blame the challenge. So this is a
 * named, non-stuck state: retried about daily (sooner near expiry) until the CA's window opens, with a remedy
 * that names both windows.
 */

export const SCEP_RENEWAL_REFUSED = 'SCEP_RENEWAL_REFUSED';
const HOUR = 3_600_000;
const DAY = 24 * HOUR;

export function scepRenewalRefusal(e: unknown, opts: { currentCertPem: string; windowDays: number; now: number; host: string }): AgentError | undefined {
  if (!isAgentError(e) || e.code !== 'SCEP_REJECTED' || /\bbadTime\b/.test(e.message)) return undefined;
  const cert = new X509Certificate(opts.currentCertPem);
  const notAfter = Date.parse(cert.validTo);
  const left = notAfter - opts.now;
  if (!(left > 0)) return undefined;
  const serial = cert.serialNumber.replace(/^0+(?=.)/, '').toLowerCase();
  const daysLeft = (left / DAY).toFixed(1);
  const err = new AgentError('retry-later', SCEP_RENEWAL_REFUSED,
    `The SCEP CA at ${opts.host} refused to renew certificate ${serial} (valid until ${new Date(notAfter).toISOString()}, ${daysLeft} days left; ${/failInfo \w+/.exec(e.message)?.[0] ?? 'no failInfo'}). `
    + `The agent's renewal window (scepRenewalWindowDays = ${opts.windowDays}) has opened, but the CA's has not: a CA that allows a second certificate for the same device only in the last days before expiry (scepserver: -allowrenew) answers "DN already exists". The current certificate stays in use.`,
    `Nothing to do on this device: the agent asks again about once a day (more often near expiry) until the CA's window opens. To renew earlier, the CA administrator sets the CA's renewal window (-allowrenew) to at least ${opts.windowDays} days, or set scepRenewalWindowDays to no more than the CA's -allowrenew.`,
    { cause: e });
  err.retryAfterMs = Math.max(HOUR, Math.min(DAY, left / 8));
  return err;
}
