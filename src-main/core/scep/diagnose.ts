/**
 * Diagnostics for the SCEP backend: is the CA reachable, is it the CA we pinned, what does it support, and what
 * happened to this device's last request. Read-only: it sends GetCACert and GetCACaps, never a PKIOperation
 * (that would spend a challenge or create a request), so a wrong challenge is found from the last run's answer.
 */
import type { X509Certificate } from 'node:crypto';
import { scepSettings, type ScepSettings } from '../backends/scep.js';
import type { LoadedConfig } from '../config.js';
import type { NetworkContext } from '../context.js';
import { isAgentError } from '../../base/errors.js';
import { HttpClient } from '../net/http.js';
import { loadState, type AgentState } from '../state/state.js';
import { Trace, monotonicMs } from '../../base/trace.js';
import { colonHex, pinCaBundle, sha256Of } from './ca.js';
import { chooseAlgorithms, type Capabilities } from './capabilities.js';
import { ScepClient } from './client.js';
import { httpOptionsFor } from '../proxy/options.js';

export type Severity = 'ok' | 'info' | 'warning' | 'error';

/** One finding: what was seen, what it means, what to do. The general diagnostics engine shows these. */
export interface Finding {
  severity: Severity;
  title: string;
  evidence: string;
  cause?: string;
  remedy?: string;
}

export interface ScepDiagnosis {
  findings: Finding[];
  /** Facts for a dashboard: the CA as presented, its capabilities, timings. */
  ca?: { subject: string; sha256: string; notAfter: string; pinned: boolean; ra: number };
  capabilities?: string[];
  reachableMs?: number;
}

const describe = (c: X509Certificate) => c.subject.split('\n').join(', ') || '(no subject)';

export async function diagnoseScep(loaded: LoadedConfig, net: NetworkContext, opts: { http?: HttpClient; state?: AgentState; now?: Date } = {}): Promise<ScepDiagnosis> {
  const { config } = loaded;
  const findings: Finding[] = [];
  const out: ScepDiagnosis = { findings };
  const now = (opts.now ?? new Date()).getTime();

  let settings: ScepSettings | undefined;
  try {
    settings = scepSettings(loaded);
  } catch (e) {
    findings.push({ severity: 'error', title: 'The SCEP backend is not fully configured', evidence: (e as Error).message, cause: 'A required SCEP setting is missing or conflicts with another.', ...(isAgentError(e) && e.remedy ? { remedy: e.remedy } : {}) });
    if (!config.scepUrl) return out;
  }
  if (!config.scepChallenge) {
    findings.push({ severity: 'info', title: 'No SCEP challenge password is configured', evidence: 'scepChallenge is not set.', cause: 'Most SCEP CAs (NDES, Intune, micromdm with -challenge) refuse requests without one.', remedy: 'Set scepChallenge if the CA administrator issued one.' });
  }
  if (config.scepHostPatterns.length === 0) {
    findings.push({ severity: 'warning', title: 'No browser host patterns for the SCEP certificate', evidence: 'scepHostPatterns is empty.', cause: 'SCEP has no org discovery, so only the configuration says which sites want the certificate; browsers will ask the user instead of presenting it.', remedy: 'Set scepHostPatterns to the mTLS hosts, e.g. https://[*.]sso.example.com.' });
  }

  const http = opts.http ?? new HttpClient(httpOptionsFor(config, net));
  const client = new ScepClient({ http, url: config.scepUrl!, caFingerprint: settings?.caFingerprint ?? '', allowWeak: config.scepAllowWeak, trace: new Trace(undefined), pendingWaitMs: 0 });
  const host = new URL(config.scepUrl!).host;
  try {
    const t0 = monotonicMs();
    let certs: X509Certificate[];
    try {
      certs = await client.fetchCaCertificates();
      out.reachableMs = Math.round(monotonicMs() - t0);
      findings.push({ severity: 'ok', title: 'The SCEP CA is reachable', evidence: `GetCACert at ${config.scepUrl} answered in ${out.reachableMs} ms with ${certs.length} certificate(s).` });
    } catch (e) {
      findings.push({
        severity: 'error', title: 'The SCEP CA cannot be reached or did not answer GetCACert', evidence: (e as Error).message,
        cause: isAgentError(e) && e.failure === 'retry-later' ? 'The network path to the CA (VPN, firewall, proxy) or the CA service itself.' : 'The URL does not point at a SCEP service, or the answer was malformed.',
        remedy: isAgentError(e) && e.remedy ? e.remedy : 'Check scepUrl and the network path to the CA.',
      });
      return out;
    }

    if (settings) {
      try {
        const bundle = pinCaBundle(certs, settings.caFingerprint, host);
        const ca = bundle.pinned;
        out.ca = { subject: describe(ca), sha256: sha256Of(ca), notAfter: new Date(ca.validTo).toISOString(), pinned: true, ra: bundle.ra.length };
        findings.push({ severity: 'ok', title: 'The CA certificate matches the pinned fingerprint', evidence: `${describe(ca)}, SHA-256 ${colonHex(sha256Of(ca))}${bundle.ra.length ? `; ${bundle.ra.length} RA certificate(s) chained to it (requests are encrypted to the RA)` : ''}.` });
        if (bundle.ignored.length) {
          findings.push({ severity: 'warning', title: 'The CA sent certificates that do not chain to the pinned CA', evidence: bundle.ignored.map(describe).join('; '), cause: 'A misconfigured RA chain, or certificates of another CA.', remedy: 'They are ignored; ask the CA administrator to check the GetCACert chain.' });
        }
        const left = Date.parse(out.ca.notAfter) - now;
        if (left <= 0) {
          findings.push({ severity: 'error', title: 'The SCEP CA certificate has expired', evidence: `It expired on ${out.ca.notAfter}.`, cause: 'The CA was not renewed.', remedy: 'The CA administrator must renew the CA; then confirm its new fingerprint and update scepCaFingerprint.' });
        } else if (left < 30 * 86400_000) {
          findings.push({ severity: 'warning', title: 'The SCEP CA certificate expires soon', evidence: `It expires on ${out.ca.notAfter}.`, cause: 'Certificates it issues cannot outlive it.', remedy: 'Ask the CA administrator about the CA rollover and the new fingerprint.' });
        }
      } catch (e) {
        const presented = certs.map((c) => `${describe(c)} SHA-256 ${colonHex(sha256Of(c))}`).join('; ');
        findings.push({
          severity: 'error', title: 'CA certificate mismatch: the SCEP CA is not the pinned one',
          evidence: `Configured scepCaFingerprint ${colonHex(settings.caFingerprint)}; presented: ${presented}.`,
          cause: 'The CA was replaced (rollover), scepCaFingerprint is wrong, or something on the network path answers in the CA\'s place.',
          remedy: isAgentError(e) && e.remedy ? e.remedy : 'Confirm the fingerprint with the CA administrator by another channel.',
        });
        return out;
      }
    } else {
      findings.push({ severity: 'info', title: 'What the SCEP CA presents', evidence: certs.map((c) => `${describe(c)} SHA-256 ${colonHex(sha256Of(c))}`).join('; '), remedy: 'Compare with the fingerprint the CA administrator gives you before setting scepCaFingerprint.' });
      return out;
    }

    let caps: Capabilities;
    try {
      caps = await client.getCaCaps();
    } catch (e) {
      findings.push({ severity: 'error', title: 'The SCEP CA did not answer GetCACaps', evidence: (e as Error).message, ...(isAgentError(e) && e.remedy ? { remedy: e.remedy } : {}) });
      return out;
    }
    out.capabilities = caps.raw;
    try {
      const algs = chooseAlgorithms(caps, config.scepAllowWeak);
      findings.push({
        severity: algs.weak.length ? 'warning' : 'ok', title: algs.weak.length ? 'The SCEP CA only offers weak algorithms (allowed by scepAllowWeak)' : 'The SCEP CA offers strong algorithms',
        evidence: `Capabilities: ${caps.raw.join(', ') || '(none)'}; requests use ${algs.digest.toUpperCase()} and ${algs.cipher.toUpperCase()} over ${caps.postPkiOperation ? 'POST' : 'GET'}.`,
        ...(algs.weak.length ? { cause: `The CA lacks SHA-256/AES, so ${algs.weak.join(' and ')} are used.`, remedy: 'Ask the CA administrator to enable SHA-256 and AES (SCEPStandard).' } : {}),
      });
    } catch (e) {
      findings.push({ severity: 'error', title: 'The SCEP CA offers only algorithms the agent refuses', evidence: (e as Error).message, cause: 'An old SCEP service without SHA-256/AES.', ...(isAgentError(e) && e.remedy ? { remedy: e.remedy } : {}) });
    }
    if (!caps.postPkiOperation) {
      findings.push({ severity: 'info', title: 'The SCEP CA does not accept POST', evidence: 'POSTPKIOperation is not advertised, so requests travel in the URL (GET).', cause: 'An older SCEP service.', remedy: 'If a proxy limits URL length, requests may fail: ask for POSTPKIOperation.' });
    }
    if (!caps.renewal) {
      findings.push({ severity: 'info', title: 'The SCEP CA does not advertise renewal', evidence: 'Renewal is not in GetCACaps.', cause: 'Renewal then re-enrolls with the challenge password (PKCSReq).', remedy: 'Keep scepChallenge valid for renewals, or ask the CA administrator to enable RenewalReq.' });
    }
  } finally {
    if (!opts.http) await http.close();
  }

  const state = opts.state ?? loadState(config.stateDir).state;
  findings.push(...lastOutcomeFindings(state, now));
  return out;
}

/** What the last requests' answers say: a rejection (most often the challenge), a request waiting for approval. */
export function lastOutcomeFindings(state: AgentState, now: number): Finding[] {
  const findings: Finding[] = [];
  const hold = state.hold && state.hold.backend === 'scep' ? state.hold : undefined;
  if (hold) {
    const active = Date.parse(hold.until) > now;
    const badRequest = /badRequest/.test(hold.message);
    findings.push({
      severity: active ? 'error' : 'warning',
      title: badRequest ? 'The CA rejected the last request (badRequest): most often a wrong or expired challenge password' : 'The CA rejected the last request',
      evidence: `${hold.message} (at ${hold.at}; ${active ? `not resent before ${hold.until}` : 'the hold has ended, the next run tries again'}).`,
      cause: badRequest ? 'The challenge password is wrong, single-use and already spent, or expired; or the CA\'s policy (e.g. a request verifier) refuses this device.' : 'The CA\'s answer says why (see evidence).',
      remedy: hold.remedy ?? 'Fix the cause with the CA administrator, then run: device-trust-agent run --forceRenewal',
    });
  }
  if (state.pending && state.pending.backend === 'scep') {
    findings.push({
      severity: 'warning', title: 'A certificate request is waiting for the CA administrator\'s approval (PENDING)',
      evidence: `Requested at ${state.pending.since}: ${state.pending.message}`,
      cause: 'The CA is configured for manual approval.',
      remedy: 'Ask the CA administrator to approve the request; the agent polls on each run and installs the certificate when it is issued.',
    });
  }
  if (state.lastRun?.code === 'SCEP_CA_MISMATCH') {
    findings.push({ severity: 'error', title: 'The last run refused the CA: its certificate did not match the pin', evidence: `${state.lastRun.at}: ${state.lastRun.message}`, cause: 'CA rollover, a wrong scepCaFingerprint, or interception.', remedy: 'Confirm the CA fingerprint with the CA administrator by another channel and update scepCaFingerprint.' });
  }
  return findings;
}
