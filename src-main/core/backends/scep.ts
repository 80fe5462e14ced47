import type { LoadedConfig } from '../config.js';
import { AgentError } from '../../base/errors.js';
import type { KeyAlgorithm } from '../keys/keys.js';
import { colonHex } from '../scep/ca.js';
import { keyedSettingsHash } from '../state/settings-key.js';
import { ScepClient } from '../scep/client.js';
import { scepRenewalRefusal } from '../scep/renewal-refusal.js';
import type { BackendDeps } from './idp.js';
import type { Authority, EnrollmentBackend, IssuerFilter, IssueRequest, Issued, RenewRequest } from './types.js';

/** After a SCEP rejection the same request is not resent for this long (a CA's answer rarely changes sooner). */
export const SCEP_REJECTION_HOLD_SECONDS = 6 * 3600;

export interface ScepSettings {
  url: string;
  caFingerprint: string;
  challenge: string | undefined;
  keyAlgorithm: KeyAlgorithm;
}

/** Checks the SCEP settings; the errors say which setting is missing and how to find its value. */
export function scepSettings(loaded: LoadedConfig): ScepSettings {
  const { config, sources } = loaded;
  if (!config.scepUrl) {
    throw new AgentError('config', 'NOT_CONFIGURED', 'The SCEP backend is selected (backend=scep) but no scepUrl is configured, so the agent does not know which CA to ask.',
      'Set scepUrl (e.g. http://ca.example.com/scep) in the managed configuration, the config file, or DTA_SCEP_URL.');
  }
  if (!config.scepCaFingerprint) {
    throw new AgentError('config', 'SCEP_PIN_MISSING', 'The SCEP backend needs scepCaFingerprint, the SHA-256 fingerprint of the CA certificate: without it anyone on the network path could pose as the CA.',
      'Ask the CA administrator for the fingerprint (on the CA: openssl x509 -in ca.pem -noout -fingerprint -sha256) and set scepCaFingerprint. A wrong pin is refused with the fingerprint the CA presented, to compare.');
  }
  // SCEP answers are encrypted to the requester's key with RSA key transport, so the device key must be RSA.
  if (config.keyAlgorithm !== 'RSA-2048' && sources.keyAlgorithm !== 'default') {
    throw new AgentError('config', 'SCEP_KEY_ALGORITHM', `keyAlgorithm=${config.keyAlgorithm} cannot be used with SCEP: the CA encrypts its answer to the device key, which needs RSA.`,
      'Remove keyAlgorithm (SCEP then uses RSA-2048) or set it to RSA-2048.');
  }
  return { url: config.scepUrl, caFingerprint: config.scepCaFingerprint, challenge: config.scepChallenge, keyAlgorithm: 'RSA-2048' };
}

async function issuerFilterOf(pem: string): Promise<IssuerFilter> {
  // Not loaded at start-up: the pass (when it will make a request) or the client has started loading it.
  const { x509 } = await import('../certificates/x509.js');
  const name = new x509.X509Certificate(pem).subjectName;
  const first = (field: string) => name.getField(field)[0];
  const cn = first('CN');
  if (cn) return { CN: cn };
  const filter: IssuerFilter = {};
  const o = first('O');
  const ou = first('OU');
  if (o) filter.O = o;
  if (ou) filter.OU = ou;
  return filter;
}

/**
 * SCEP (RFC 8894) against the organisation's own CA. There is no org discovery: the CA certificate (pinned,
 * from GetCACert) says who the issuer is and which chain to check; the configuration gives the browser host
 * patterns and the renewal window. Enrollment is PKCSReq with the challenge password; renewal is RenewalReq
 * signed with the current certificate.
 */
export class ScepBackend implements EnrollmentBackend {
  readonly kind = 'scep' as const;
  readonly target = 'the SCEP CA';
  readonly keyAlgorithm: KeyAlgorithm;
  readonly requestIdentity: string;
  readonly legacyRequestIdentity: string;
  readonly holdAfterRejectionSeconds = SCEP_REJECTION_HOLD_SECONDS;
  private readonly settings: ScepSettings;
  private readonly client: ScepClient;

  constructor(private readonly deps: BackendDeps, loaded: LoadedConfig) {
    this.settings = scepSettings(loaded);
    this.keyAlgorithm = this.settings.keyAlgorithm;
    // The challenge enters only as part of a keyed hash, so a changed challenge lifts a rejection hold without
    // being stored or guessable offline from state.json.
    const id = keyedSettingsHash(deps.config.stateDir, ['scep', this.settings.url, this.settings.caFingerprint, this.settings.challenge ?? '']);
    this.requestIdentity = id.current;
    this.legacyRequestIdentity = id.legacy;
    this.client = new ScepClient({
      http: deps.http, url: this.settings.url, caFingerprint: this.settings.caFingerprint, allowWeak: deps.config.scepAllowWeak,
      trace: deps.trace, pendingWaitMs: deps.config.scepPendingWaitSeconds * 1000,
    });
  }

  async authority(): Promise<Authority> {
    const { ca } = await this.client.connect();
    const issuing = ca.issuingCa;
    const issuerDn = issuing.subject.split('\n').join(', ');
    const chainPem = ca.chain.map((c) => c.toString());
    const filter = await issuerFilterOf(issuing.toString());
    const hostPatterns = this.deps.config.scepHostPatterns;
    if (hostPatterns.length === 0) {
      this.deps.trace.log('note: scepHostPatterns is empty, so no browser is told where to present the certificate (there is no org discovery with SCEP).');
    }
    return {
      name: `the SCEP CA at ${new URL(this.settings.url).host}`,
      summary: `SCEP CA "${issuerDn}" (pinned SHA-256 ${colonHex(this.settings.caFingerprint).slice(0, 23)}…)`,
      issuerCN: filter.CN ?? '',
      issuerFilter: filter,
      owns: (info) => info.issuer === issuerDn,
      chainPem,
      pinnedPem: ca.pinned.toString(),
      hostPatterns,
      renewalWindowSeconds: Math.round(this.deps.config.scepRenewalWindowDays * 86400),
      maxValiditySeconds: Math.round(this.deps.config.scepMaxValidityDays * 86400),
      lifetimeSource: 'scepMaxValidityDays allows (set it in the managed configuration if the CA is meant to issue longer certificates)',
      readOnly: false,
    };
  }

  async enroll({ key, deviceId }: IssueRequest): Promise<Issued> {
    const issued = await this.client.enroll({ key, subject: `CN=${deviceId}`, challenge: this.settings.challenge });
    return { certificatePem: issued.certificatePem };
  }

  async renew({ key, deviceId, currentCertPem, currentKey }: RenewRequest): Promise<Issued> {
    try {
      const issued = await this.client.renew({ key, subject: `CN=${deviceId}`, challenge: this.settings.challenge, currentCertPem, currentKey });
      return { certificatePem: issued.certificatePem };
    } catch (e) {
      throw scepRenewalRefusal(e, { currentCertPem, windowDays: this.deps.config.scepRenewalWindowDays, now: this.deps.now().getTime(), host: new URL(this.settings.url).host }) ?? e;
    }
  }

  async resume({ key, deviceId }: IssueRequest): Promise<Issued> {
    const issued = await this.client.resume({ key, subject: `CN=${deviceId}` });
    return { certificatePem: issued.certificatePem };
  }
}
