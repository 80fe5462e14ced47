import { KerberosError, negotiateAuthorization } from './negotiate.js';
import { AgentError, isAgentError } from '../../base/errors.js';
import type { HttpClient } from '../net/http.js';
import { DeviceTokenAnswerSchema, UserTokenAnswerSchema, type OrgConfig } from '../enrollment/protocol.js';
import type { Trace } from '../../base/trace.js';
import { serverText } from '../../base/safe-text.js';
import { identityRefusal } from '../enrollment/refusal.js';

export type Identity = { kind: 'device'; principal: string; keytab: string } | { kind: 'user' };

export interface IwaOptions {
  http: HttpClient;
  org: OrgConfig;
  trace: Trace;
  /** Lab-only sign-in principal (see PROTOCOL §8); undefined means real Kerberos. */
  labPrincipal?: { device: string; user: string } | undefined;
}

const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]', '::1']);

/** The lab-only sign-in is honoured only for a lab org whose IWA is on this machine. */
export function labSignInAllowed(org: OrgConfig): boolean {
  if (!org.lab) return false;
  return [org.iwa.primary, ...org.iwa.backups].every((u) => LOOPBACK.has(new URL(u).hostname));
}

/** The IWA web apps to try, in order, as the org's failover mode says. */
export function iwaCandidates(org: OrgConfig): string[] {
  return org.iwa.failoverMode === 'REDIRECT_TO_BACKUP' ? [org.iwa.primary, ...org.iwa.backups] : [org.iwa.primary];
}

/** Kerberos failures in the agent's words: which ones wait for the network, which need a person. */
function kerberosFailure(e: unknown, identity: Identity): AgentError {
  if (!(e instanceof KerberosError)) return new AgentError('local', 'KERBEROS_FAILED', `Kerberos failed: ${(e as Error).message}`, undefined, { cause: e });
  const who = identity.kind === 'device' ? `the device (${identity.principal})` : 'the logged-on user';
  switch (e.kind) {
    case 'no-credentials':
      return new AgentError('retry-later', 'KERBEROS_NO_TICKET', `No Kerberos ticket could be had for ${who}: ${e.message}`,
        identity.kind === 'device'
          ? `Check that the device is joined to the domain and that its keytab (${identity.keytab}) holds ${identity.principal}.`
          : 'Sign in to the domain on the corporate network or VPN (klist shows a ticket); the agent tries again later.');
    case 'kdc-unreachable':
      return new AgentError('retry-later', 'KDC_UNREACHABLE', `The domain controller (KDC) cannot be reached: ${e.message}`,
        'Connect to the corporate network or VPN; the agent tries again later.');
    case 'clock-skew':
      return new AgentError('local', 'CLOCK_SKEW', `This device's clock differs too much from the domain controller's for Kerberos: ${e.message}`,
        'Fix the system clock (enable time synchronisation), then run again.');
    case 'unknown-service':
      return new AgentError('rejected', 'IWA_SPN_UNKNOWN', e.message,
        'Ask the directory admin to register the IWA server\'s HTTP service principal (setspn) for the host name in the org\'s IWA URL.');
    case 'not-installed':
      return new AgentError('local', 'KERBEROS_NOT_INSTALLED', e.message, 'Install the Kerberos libraries and reinstall the agent.');
    default:
      return new AgentError('local', 'KERBEROS_FAILED', e.message);
  }
}

/** Talks to the IWA web app with integrated Windows auth (HTTP Negotiate), failing over as the org says. */
export class IwaClient {
  private chosen: string | undefined;

  constructor(private readonly opts: IwaOptions) {}

  get baseUrl(): string | undefined {
    return this.chosen;
  }

  private async authorization(url: string, identity: Identity): Promise<string> {
    const lab = this.opts.labPrincipal;
    if (lab) {
      const principal = identity.kind === 'device' ? lab.device : lab.user;
      return `LabSignIn ${Buffer.from(JSON.stringify({ principal })).toString('base64')}`;
    }
    try {
      return await negotiateAuthorization({ url, ...(identity.kind === 'device' ? { principal: identity.principal, clientKeytab: identity.keytab } : {}) });
    } catch (e) {
      throw kerberosFailure(e, identity);
    }
  }

  private async post(path: string, body: unknown, identity: Identity, what: string) {
    const candidates = this.chosen ? [this.chosen] : iwaCandidates(this.opts.org);
    const failures: string[] = [];
    for (const base of candidates) {
      const url = `${base.replace(/\/+$/, '')}/${path}`;
      try {
        const authorization = await this.authorization(url, identity);
        this.opts.trace.log(`${what}: POST ${url} with ${authorization.split(' ')[0]} authentication`);
        const res = await this.opts.http.send({ url, method: 'POST', json: body, headers: { authorization }, what: 'the IWA web app' });
        if (res.status === 401) {
          throw new AgentError('rejected', 'IWA_AUTH_FAILED',
            `The IWA web app at ${new URL(base).host} did not accept this ${identity.kind === 'device' ? "device's" : "user's"} Windows/Kerberos credentials.`,
            identity.kind === 'device'
              ? 'Check that the device is joined to the domain and its machine account is enabled.'
              : 'Check that the user is signed in to the domain (klist shows a ticket) and is a member of it.');
        }
        this.chosen = base;
        return res;
      } catch (e) {
        if (isAgentError(e) && e.failure === 'retry-later') {
          failures.push(`${base} (${e.message})`);
          this.opts.trace.log(`IWA web app ${base} did not answer; ${candidates.length > 1 ? 'trying the next one' : 'no backup to try'}`);
          continue;
        }
        throw e;
      }
    }
    const mode = this.opts.org.iwa.failoverMode;
    throw new AgentError('retry-later', 'IWA_UNREACHABLE', `No IWA web app answered: ${failures.join('; ')}.`,
      mode === 'REDIRECT_TO_BACKUP'
        ? 'Connect to the corporate network or VPN; the agent tries again later.'
        : `Connect to the corporate network or VPN. The org's failover mode is ${mode}, so backup IWA servers are not used: ask an admin to check the primary IWA server.`);
  }

  async deviceToken(identity: Identity, body: { deviceId: string; deviceName: string; keyThumbprint: string }): Promise<string> {
    const res = await this.post('device-token', body, identity, 'Device token');
    return this.parse(res, DeviceTokenAnswerSchema, 'device token').deviceToken;
  }

  async userToken(deviceToken: string): Promise<string> {
    const res = await this.post('user-token', { deviceToken }, { kind: 'user' }, 'User token');
    return this.parse(res, UserTokenAnswerSchema, 'user token').userToken;
  }

  private parse<T extends typeof DeviceTokenAnswerSchema | typeof UserTokenAnswerSchema>(res: { status: number; body: Buffer }, schema: T, what: string) {
    if (res.status < 200 || res.status > 299) {
      let summary = '';
      let errorCode = '';
      try {
        // Cleaned and capped where it enters: an IWA's error text has no length limit of its own.
        const answer = JSON.parse(res.body.toString()) as { errorSummary?: unknown; errorCode?: unknown };
        summary = serverText(answer.errorSummary ?? '');
        errorCode = typeof answer.errorCode === 'string' && /^E0000_[A-Z_]{1,60}$/.test(answer.errorCode) ? answer.errorCode : '';
      } catch {
        /* not JSON */
      }
      const failure = res.status >= 500 ? 'retry-later' : 'rejected';
      throw identityRefusal(new AgentError(failure, `IWA_HTTP_${res.status}`, `The IWA web app refused the ${what} request (HTTP ${res.status})${summary ? `: "${summary}"` : ''}. Nothing was changed on this device.`,
        failure === 'retry-later'
          ? 'The agent tries again later; if it persists, ask the directory admin to check the IWA web app.'
          : 'Run with --debug and give the output to the directory or identity-provider admin.'), errorCode);
    }
    let raw: unknown;
    try {
      raw = JSON.parse(res.body.toString('utf8'));
    } catch {
      throw new AgentError('bad-answer', 'ANSWER_MALFORMED', `The IWA web app answered the ${what} request with something that is not JSON; it was refused and nothing was changed.`,
        'Check that nothing (a proxy, a captive portal) rewrites answers between this device and the IWA server, then try again.');
    }
    const parsed = schema.safeParse(raw);
    if (!parsed.success) {
      throw new AgentError('bad-answer', 'ANSWER_INVALID', `The IWA web app's ${what} answer has an unexpected shape; it was refused and nothing was changed.`,
        'Check that the org\'s IWA URL points at the IWA web app and that it is up to date.');
    }
    return parsed.data as ReturnType<T['parse']>;
  }
}
