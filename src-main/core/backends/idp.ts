import crypto from 'node:crypto';
import { requireOrgUrl, type Config, type LoadedConfig } from '../config.js';
import { discoverOrg } from '../enrollment/discovery.js';
import { AgentError } from '../../base/errors.js';
import type { HttpClient } from '../net/http.js';
import { IwaClient, labSignInAllowed } from '../auth/iwa.js';
import { MAX_REQUEST_DEADLINE_MS, type DeviceChannel } from '../../platform/device-channel.js';
import { createCsr, type LocalKey } from '../keys/keys.js';
import { attestKey, withAttestationRemedy } from '../keys/attestation.js';
import { IssuedAnswerSchema, type OrgConfig } from '../enrollment/protocol.js';
import { checkHostPatterns, hostPatternOptions, type HostPatternOptions } from '../certificates/host-patterns.js';
import { signRenewalToken } from '../auth/renewal-token.js';
import { identityRefusal } from '../enrollment/refusal.js';
import type { Trace } from '../../base/trace.js';
import type { Authority, EnrollmentBackend, IssueRequest, Issued, RenewRequest } from './types.js';

export interface BackendDeps {
  config: Config;
  http: HttpClient;
  trace: Trace;
  now: () => Date;
  /**
   * The device side's channel (platform/device-channel.ts), handed in by the platform. Absent where the platform has
   * none: the process then uses the keytab itself, as the device side and the lab demo legitimately do.
   */
  deviceChannel?: DeviceChannel | undefined;
}

/**
 * The identity provider's flow (docs/PROTOCOL.md): org discovery; enrollment with a device token and a user
 * token from the IWA web app (Kerberos); renewal with a token signed by the current key, without IWA.
 */
export class IdpBackend implements EnrollmentBackend {
  readonly kind = 'idp' as const;
  readonly target = 'the org';
  readonly keyAlgorithm;
  readonly requestIdentity: string;
  /** The org's own answers (read-only, user not active) decide; the agent keeps its existing retry behaviour. */
  readonly holdAfterRejectionSeconds = 0;
  private readonly orgUrl: string;
  private org: OrgConfig | undefined;
  private readonly patternOptions: HostPatternOptions;

  constructor(private readonly deps: BackendDeps, loaded?: LoadedConfig) {
    this.orgUrl = requireOrgUrl(deps.config);
    this.patternOptions = loaded ? hostPatternOptions(loaded) : { orgUrl: this.orgUrl, allowList: deps.config.hostPatternAllowList };
    this.keyAlgorithm = deps.config.keyAlgorithm;
    this.requestIdentity = crypto.createHash('sha256').update(`idp\n${this.orgUrl}`).digest('hex');
  }

  async authority(): Promise<Authority> {
    const org = await this.deps.trace.step('Discover the org (IWA web apps, CA, mTLS host)', () => discoverOrg(this.deps.http, this.orgUrl),
      (o) => `IWA primary ${o.iwa.primary}, ${o.iwa.backups.length} backup(s), failover ${o.iwa.failoverMode}${o.readOnly ? ', READ-ONLY' : ''}`);
    this.org = org;
    const patterns = checkHostPatterns(org.mtls.hostPatterns, this.patternOptions);
    return {
      name: `the org ${this.orgUrl}`,
      summary: `org ${org.orgName}`,
      issuerCN: org.ca.issuerCN,
      issuerFilter: { CN: org.ca.issuerCN },
      owns: (info) => info.issuerCN === org.ca.issuerCN,
      chainPem: org.ca.chainPem,
      hostPatterns: patterns.accepted,
      refusedHostPatterns: patterns.refused,
      mtlsUrl: org.mtls.url,
      serverTlsPins: org.serverTls?.issuerSpkiSha256,
      renewalWindowSeconds: org.certificate.renewalWindowSeconds,
      maxValiditySeconds: org.certificate.validitySeconds,
      lifetimeSource: "the org advertises (discovery's certificate.validitySeconds)",
      crlUrl: org.crlUrl,
      readOnly: org.readOnly,
    };
  }

  private discovered(): OrgConfig {
    if (!this.org) throw new AgentError('internal', 'INTERNAL', 'The org was not discovered before enrollment.');
    return this.org;
  }

  async enroll({ key, deviceId }: IssueRequest): Promise<Issued> {
    const { config, trace, http } = this.deps;
    const org = this.discovered();
    const iwa = new IwaClient({ http, org, trace, labPrincipal: this.labPrincipals(org) });
    const deviceToken = await this.deviceToken(iwa, deviceId, key);
    trace.secret('Device token', deviceToken);
    const userToken = await trace.step('Get a user token from the IWA web app (logged-on user)', () => iwa.userToken(deviceToken));
    trace.secret('User token', userToken);
    const csr = await trace.step('Create the certificate signing request', () => createCsr(key, `CN=${deviceId}`));
    const attempt = await attestKey(key, { http, orgUrl: this.orgUrl, trace });
    const { data } = await trace.step('Ask the org to issue the certificate', () =>
      http.json(IssuedAnswerSchema, { url: `${this.orgUrl}/api/v1/device-trust/enroll`, method: 'POST', json: { userToken, csr, ...(attempt.evidence ? { attestation: attempt.evidence } : {}) }, what: 'the org' })
        .catch((e: unknown) => { throw identityRefusal(withAttestationRemedy(e)); }));
    return { certificatePem: data.certificate, attestation: this.attestationRecord(key, attempt, data.keyAttested) };
  }

  async renew({ key, deviceId, currentCertPem, currentKey }: RenewRequest): Promise<Issued> {
    const { trace, http } = this.deps;
    const renewalToken = await signRenewalToken({ currentKey, currentCertPem, deviceId, newKeyThumbprint: key.thumbprint, now: this.deps.now() });
    trace.secret('Renewal token (signed with the current key)', renewalToken);
    const csr = await trace.step('Create the certificate signing request', () => createCsr(key, `CN=${deviceId}`));
    const attempt = await attestKey(key, { http, orgUrl: this.orgUrl, trace });
    const { data } = await trace.step('Ask the org to renew the certificate (no IWA needed)', () =>
      http.json(IssuedAnswerSchema, { url: `${this.orgUrl}/api/v1/device-trust/renew`, method: 'POST', json: { renewalToken, csr, ...(attempt.evidence ? { attestation: attempt.evidence } : {}) }, what: 'the org' })
        .catch((e: unknown) => { throw identityRefusal(withAttestationRemedy(e)); }));
    return { certificatePem: data.certificate, attestation: this.attestationRecord(key, attempt, data.keyAttested) };
  }

  /**
   * The machine's identity: from the device side over its channel, or — only where this process holds the machine
   * credentials itself (root, the keytab's owner, lab sign-in) — straight from the IWA web app with the keytab.
   */
  private async deviceToken(iwa: IwaClient, deviceId: string, key: LocalKey): Promise<string> {
    const { config, trace, deviceChannel } = this.deps;
    const direct = !deviceChannel || Boolean(config.labSignIn) || deviceChannel.holdsMachineCredentials(config.deviceKeytab);
    if (direct) {
      return trace.step('Get a device token from the IWA web app (machine identity)',
        () => iwa.deviceToken({ kind: 'device', principal: config.devicePrincipal ?? `host/${config.deviceName}`, keytab: config.deviceKeytab }, { deviceId, deviceName: config.deviceName, keyThumbprint: key.thumbprint }),
        () => `from ${iwa.baseUrl}`);
    }
    // The device side gets its own request deadline, a share of this pass's; it stops working on it by then.
    const deadlineMs = Math.max(1000, Math.min(MAX_REQUEST_DEADLINE_MS, 2 * config.requestTimeoutMs));
    const got = await trace.step('Get a device token from the device service (it alone holds the machine credentials)',
      () => deviceChannel.deviceToken({ orgUrl: this.orgUrl, deviceId, keyThumbprint: key.thumbprint, deadlineMs }),
      (t) => `from ${deviceChannel.description} (IWA ${t.iwaUrl})`);
    return got.deviceToken;
  }

  /** What `status` says about the key's attestation after the org's answer. */
  private attestationRecord(key: LocalKey, attempt: { evidence?: unknown; unattested?: string }, keyAttested: boolean | undefined): { attested: boolean; reason: string } {
    if (attempt.evidence && keyAttested) return { attested: true, reason: 'the org verified the TPM attestation (EK certificate, AK, TPM2_Certify over its nonce)' };
    if (attempt.evidence) return { attested: false, reason: 'the org did not confirm the TPM attestation it was sent' };
    return { attested: false, reason: attempt.unattested ?? (key.protection === 'tpm' ? 'no attestation was made' : 'the key is not in a TPM') };
  }

  private labPrincipals(org: OrgConfig): { device: string; user: string } | undefined {
    const { config, trace } = this.deps;
    if (!config.labSignIn) return undefined;
    if (!labSignInAllowed(org)) {
      throw new AgentError('config', 'LAB_SIGN_IN_REFUSED', 'labSignIn is set, but this org is not a lab org on this machine; the lab-only sign-in is never used with a real org.',
        'Remove labSignIn from the configuration: real orgs use Kerberos (integrated Windows authentication).');
    }
    trace.log('LAB-ONLY SIGN-IN: no Kerberos; the lab org accepts a declared principal. Never used with a real org.');
    const user = process.env.USER || 'alice';
    return { device: `host/${config.deviceName}.lab.test@LAB.TEST`, user: `${user}@LAB.TEST` };
  }
}
