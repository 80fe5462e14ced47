/**
 * Server side of HTTP `Negotiate` (SPNEGO/Kerberos) for the lab IWA web app.
 *
 * The GSS library takes its settings from the environment, which the caller must set in `process.env`
 * before the first request (e.g. `Object.assign(process.env, kdc.serverEnv())`):
 *   KRB5_CONFIG    the lab realm's krb5.conf
 *   KRB5_KTNAME    the keytab holding the service key (HTTP/<host>@REALM)
 *   KRB5RCACHEDIR  optional; where the replay cache goes (default /var/tmp)
 */

export type NegotiateResult =
  | { ok: true; principal: string; mutualToken?: string }
  | { ok: false; reason: string };

const NOT_INSTALLED = 'Kerberos support is not installed: install libkrb5-dev (Debian) and run npm rebuild kerberos';

// Declared locally: `kerberos` is an optionalDependency and may be absent.
interface KerberosServerLike {
  step(token: string): Promise<string>;
  username: string;
  response: string;
  contextComplete: boolean;
}
interface KerberosModuleLike {
  initializeServer(service: string): Promise<KerberosServerLike>;
}

let loaded: Promise<KerberosModuleLike> | undefined;

function loadKerberos(): Promise<KerberosModuleLike> {
  loaded ??= (async () => {
    const name = 'kerberos';
    try {
      const m = (await import(name)) as { default?: KerberosModuleLike } & KerberosModuleLike;
      const mod = m.default ?? m;
      if (typeof mod.initializeServer !== 'function') throw new Error('unexpected kerberos module shape');
      return mod;
    } catch (e) {
      throw new Error(NOT_INSTALLED, { cause: e });
    }
  })();
  return loaded;
}

/** The `WWW-Authenticate` value of a 401 asking for Kerberos. */
export function negotiateChallengeHeader(): string {
  return 'Negotiate';
}

/**
 * Checks an `Authorization: Negotiate <token>` header.
 * `{ ok: false }` for anything the client got wrong (no/other scheme, NTLM, bad or replayed token, wrong
 * service); throws when the server itself cannot do Kerberos (module not installed, no key in KRB5_KTNAME).
 */
export async function acceptNegotiate(
  authorizationHeader: string | undefined,
  opts: { service?: string } = {},
): Promise<NegotiateResult> {
  if (!authorizationHeader) return { ok: false, reason: 'no Authorization header' };
  const m = /^Negotiate(?:\s+(\S+))?\s*$/i.exec(authorizationHeader.trim());
  if (!m) return { ok: false, reason: `Authorization scheme is not Negotiate: ${authorizationHeader.split(/\s/)[0] ?? ''}` };
  const token = m[1];
  if (!token) return { ok: false, reason: 'Negotiate header without a token' };
  // What a browser sends when it has no Kerberos ticket and falls back to NTLM ("NTLMSSP\0").
  if (token.startsWith('TlRMTVNTUA')) {
    return { ok: false, reason: 'the client offered NTLM, not Kerberos (no Kerberos ticket for this host on the client?)' };
  }

  const krb = await loadKerberos();
  const service = opts.service ?? 'HTTP@localhost';
  let server: KerberosServerLike;
  try {
    server = await krb.initializeServer(service);
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    throw new Error(`IWA cannot accept Kerberos for ${service} (check KRB5_KTNAME=${process.env.KRB5_KTNAME ?? '(unset)'}): ${msg}`, {
      cause: e,
    });
  }
  try {
    await server.step(token);
  } catch (e) {
    return { ok: false, reason: e instanceof Error ? e.message : String(e) };
  }
  if (!server.contextComplete || !server.username) {
    return { ok: false, reason: 'the Negotiate exchange needs more than one round trip, which the lab IWA does not support' };
  }
  return server.response
    ? { ok: true, principal: server.username, mutualToken: server.response }
    : { ok: true, principal: server.username };
}
