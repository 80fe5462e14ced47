/**
 * Client side of HTTP `Negotiate` (SPNEGO/Kerberos, RFC 4559) for the IWA web app, on the MIT/Heimdal
 * GSS-API through the optional native module `kerberos`.
 *
 * Two identities:
 *  - the logged-on user: the default credential cache (KRB5CCNAME or the system default), as `kinit` left it
 *    (KRB5_CLIENT_KTNAME is ignored for it, so a device keytab in the environment never stands in for the user);
 *  - another principal, e.g. the device `host/ws01.lab.test@LAB.TEST`: its key must be in a client keytab
 *    (`clientKeytab`, else KRB5_CLIENT_KTNAME, else MIT's default client keytab). Tickets are obtained from that
 *    keytab without any kinit and kept in a private in-process `MEMORY:` ccache, so the user's ccache is never
 *    read or written for it.
 *
 * The native module only takes the ccache and client keytab from the environment, so calls switch
 * `process.env.KRB5CCNAME` / `KRB5_CLIENT_KTNAME` for their duration; all calls of this module are serialized.
 */
import { createHash } from 'node:crypto';

export type KerberosErrorKind =
  | 'no-credentials'
  | 'kdc-unreachable'
  | 'unknown-service'
  | 'clock-skew'
  | 'not-installed'
  | 'other';

export class KerberosError extends Error {
  readonly kind: KerberosErrorKind;
  /** The GSS-API / krb5 message as the library reported it (for logs and support). */
  readonly gssMessage: string | undefined;

  constructor(kind: KerberosErrorKind, message: string, gssMessage?: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'KerberosError';
    this.kind = kind;
    this.gssMessage = gssMessage;
  }
}

export interface NegotiateOptions {
  /** The IWA URL; the Kerberos service is HTTP@<hostname of the URL>. */
  url: string;
  /** Act as this principal (e.g. the device's host/… principal) instead of the default ccache's one. */
  principal?: string;
  /** Keytab holding `principal`'s key (path or TYPE:residual). Default: KRB5_CLIENT_KTNAME / MIT's default client keytab. */
  clientKeytab?: string;
}

export const KERBEROS_NOT_INSTALLED =
  'Kerberos support is not installed: install libkrb5-dev (Debian), then run npm install again in the agent\'s checkout (npm leaves out an optional add-on it could not build)';

// The subset of the `kerberos` module used here; declared locally so this compiles when the optional
// dependency is absent.
interface KerberosClientLike {
  step(challenge: string): Promise<string>;
}
interface KerberosModuleLike {
  initializeClient(service: string, options?: { principal?: string; mechOID?: number }): Promise<KerberosClientLike>;
  GSS_MECH_OID_KRB5: number;
  GSS_MECH_OID_SPNEGO: number;
}

let loaded: Promise<KerberosModuleLike> | undefined;

function loadKerberos(): Promise<KerberosModuleLike> {
  loaded ??= (async () => {
    const name = 'kerberos'; // a variable, so neither tsc nor a bundler insists on it
    try {
      const m = (await import(name)) as { default?: KerberosModuleLike } & KerberosModuleLike;
      const mod = m.default ?? m;
      if (typeof mod.initializeClient !== 'function') throw new Error('unexpected kerberos module shape');
      return mod;
    } catch (e) {
      const detail = e instanceof Error ? e.message : String(e);
      throw new KerberosError('not-installed', KERBEROS_NOT_INSTALLED, detail, { cause: e });
    }
  })();
  return loaded;
}

/** Whether the Kerberos library can be used on this machine (it says nothing about tickets). */
export async function kerberosAvailable(): Promise<{ ok: boolean; reason?: string }> {
  try {
    await loadKerberos();
    return { ok: true };
  } catch (e) {
    const ke = e as KerberosError;
    return { ok: false, reason: ke.gssMessage ? `${ke.message} (${ke.gssMessage})` : ke.message };
  }
}

/** GSS host-based service name for an IWA URL: `HTTP@host`. */
export function serviceForUrl(url: string): string {
  let host: string;
  try {
    host = new URL(url).hostname;
  } catch {
    throw new KerberosError('other', `The IWA URL ${JSON.stringify(url)} is not a valid URL`);
  }
  if (!host) throw new KerberosError('other', `The IWA URL ${url} has no host name`);
  return `HTTP@${host.replace(/^\[|\]$/g, '')}`;
}

// All GSS calls go through here, one at a time: they read process-wide environment variables that
// principal-specific calls change temporarily.
let queue: Promise<unknown> = Promise.resolve();
function serialized<T>(fn: () => Promise<T>): Promise<T> {
  const run = queue.then(fn, fn);
  queue = run.catch(() => undefined);
  return run;
}

async function withEnv<T>(overrides: Record<string, string | undefined>, fn: () => Promise<T>): Promise<T> {
  const saved: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(overrides)) {
    saved[k] = process.env[k];
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  try {
    return await fn();
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

/** Private ccache per (principal, keytab, krb5 config): tickets from one lab realm are never offered to another. */
function privateCcache(principal: string, keytab: string | undefined): string {
  const h = createHash('sha256')
    .update(`${principal}\0${keytab ?? ''}\0${process.env.KRB5_CONFIG ?? ''}`)
    .digest('hex')
    .slice(0, 24);
  return `MEMORY:device-trust-agent-${h}`;
}

async function firstToken(krb: KerberosModuleLike, service: string, principal: string | undefined, mechOID: number): Promise<string> {
  const client = await krb.initializeClient(service, principal ? { principal, mechOID } : { mechOID });
  return client.step('');
}

/**
 * `Authorization` header value (`Negotiate <base64 SPNEGO token>`) for the IWA at `opts.url`.
 * Throws KerberosError with a help-desk sentence; `kind` says what went wrong, `gssMessage` what GSS said.
 */
export async function negotiateAuthorization(opts: NegotiateOptions): Promise<string> {
  const krb = await loadKerberos();
  const service = serviceForUrl(opts.url);
  const principal = opts.principal?.trim() || undefined;

  return serialized(() => {
    // Read the environment only inside the queue: a running call may have it switched.
    const keytab = opts.clientKeytab ?? process.env.KRB5_CLIENT_KTNAME;
    // Without a principal, hide KRB5_CLIENT_KTNAME: otherwise, with an empty user ccache, MIT would silently
    // authenticate as the keytab's (device) principal and store that TGT in the user's ccache.
    const overrides: Record<string, string | undefined> = principal
      ? { KRB5CCNAME: privateCcache(principal, keytab), KRB5_CLIENT_KTNAME: keytab }
      : { KRB5_CLIENT_KTNAME: undefined };
    return withEnv(overrides, async () => {
      try {
        const token = await firstToken(krb, service, principal, krb.GSS_MECH_OID_SPNEGO);
        if (!token) throw new Error('the GSS library produced an empty token');
        return `Negotiate ${token}`;
      } catch (e) {
        let gss = e instanceof Error ? e.message : String(e);
        // SPNEGO hides why no mechanism was usable; the bare krb5 mech tells (no ccache, ticket expired…).
        if (/cannot find mechanisms to negotiate/i.test(gss)) {
          try {
            await firstToken(krb, service, principal, krb.GSS_MECH_OID_KRB5);
          } catch (e2) {
            gss = e2 instanceof Error ? e2.message : String(e2);
          }
        }
        throw toKerberosError(gss, { service, principal, keytab }, e);
      }
    });
  });
}

/** Which kind of failure a GSS/krb5 message describes (MIT and Heimdal wording). */
export function classifyKerberosMessage(gss: string): KerberosErrorKind {
  if (/clock skew|KRB_AP_ERR_SKEW|time.*out of bounds/i.test(gss)) return 'clock-skew';
  if (/cannot contact any KDC|cannot find KDC|cannot resolve network address for KDC|unable to reach any KDC|KDC.*unreachable/i.test(gss)) {
    return 'kdc-unreachable';
  }
  if (/Server .* not found in Kerberos database|S_PRINCIPAL_UNKNOWN|Server not found in Kerberos database/i.test(gss)) {
    return 'unknown-service';
  }
  if (/not installed/i.test(gss)) return 'not-installed';
  if (
    /No Kerberos credentials available|No credentials cache|credentials cache file .* not found|can't find client principal|cannot find mechanisms to negotiate|ticket expired|credentials have expired|does not match desired name|Client .* not found in Kerberos database|C_PRINCIPAL_UNKNOWN|Preauthentication failed|Password incorrect|Decrypt integrity check failed|Key table entry not found|Key table file .* not found|No credentials were supplied/i.test(
      gss,
    )
  ) {
    return 'no-credentials';
  }
  return 'other';
}

function toKerberosError(
  gss: string,
  ctx: { service: string; principal: string | undefined; keytab: string | undefined },
  cause: unknown,
): KerberosError {
  const kind = classifyKerberosMessage(gss);
  const spn = ctx.service.replace('@', '/');
  const who = ctx.principal ?? 'the current user';
  let sentence: string;
  switch (kind) {
    case 'clock-skew':
      sentence = "This computer's clock differs too much from the domain controller's: correct the time (NTP) and try again";
      break;
    case 'kdc-unreachable': {
      const realm = /realm ['"]([^'"]+)['"]/.exec(gss)?.[1];
      const forRealm = realm ? ` for ${realm}` : '';
      sentence = /cannot find KDC/i.test(gss)
        ? `No Kerberos domain controller (KDC) is configured or discoverable${forRealm}: check krb5.conf (or the DNS SRV records) and that this machine is joined to the domain`
        : `Cannot reach a Kerberos domain controller (KDC)${forRealm}: check the network or VPN connection`;
      break;
    }
    case 'unknown-service':
      sentence = `The IWA server's service principal ${spn} is not known to the directory: the IWA URL must use the host name the IWA is registered under (not an IP address or alias)`;
      break;
    case 'not-installed':
      sentence = KERBEROS_NOT_INSTALLED;
      break;
    case 'no-credentials':
      if (/Client .* not found in Kerberos database|C_PRINCIPAL_UNKNOWN/i.test(gss)) {
        sentence = `${who} is not known to the directory: the account was removed or this machine is not joined to the domain`;
      } else if (/Preauthentication failed|Password incorrect|Decrypt integrity check failed/i.test(gss)) {
        sentence = ctx.principal
          ? `The key for ${ctx.principal} in the keytab no longer matches the directory (machine password changed?): re-join the machine or refresh the keytab`
          : 'The password of the current user was rejected by the directory';
      } else if (/expired/i.test(gss)) {
        sentence = `The Kerberos ticket of ${who} has expired: sign in again (or run kinit)`;
      } else if (ctx.principal) {
        sentence = `No Kerberos key for ${ctx.principal}: the keytab ${ctx.keytab ? `(${ctx.keytab}) ` : ''}is missing, unreadable or does not contain it; is this machine joined to the domain?`;
      } else {
        sentence = 'No Kerberos ticket for the current user: are you on the corporate network and signed in to the domain? (kinit / klist)';
      }
      break;
    default:
      sentence = `Kerberos authentication to ${spn} as ${who} failed`;
  }
  return new KerberosError(kind, `${sentence} (Kerberos: ${gss})`, gss, { cause });
}
