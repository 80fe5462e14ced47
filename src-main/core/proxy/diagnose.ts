/**
 * Route and TLS failures in the user's words: which proxy, which rule chose it, what to do. The TLS
 * interception diagnosis lives here: a certificate that does not chain to the trust anchors, presented for
 * the identity provider's host, is what a TLS-inspecting proxy or endpoint-security product does.
 */
import { AgentError } from '../../base/errors.js';
import { PresentedChainError, ProxyAuthError, ProxyRefusedError, ProxyUnreachableError, type PresentedCertificate } from './connect.js';
import { proxyKey, type RouteDecision } from './types.js';

/** Verification failures that mean "issued by a CA you do not trust" — the signature of interception. */
const UNKNOWN_ISSUER = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'CERT_UNTRUSTED',
  'CERT_SIGNATURE_FAILURE',
]);

/** The identity provider's own domains (from the vendor's allow-list guidance): exempt them as wildcards. */
const IDP_DOMAINS = ['okta.com', 'okta-emea.com', 'okta-gov.com', 'oktapreview.com', 'okta-mil.com'];

export function exemptPatterns(host: string, extra: readonly string[] = []): string[] {
  const out: string[] = [];
  for (const h of [host, ...extra]) {
    const name = h.replace(/:\d+$/, '').replace(/^\[|\]$/g, '').toLowerCase();
    const idp = IDP_DOMAINS.find((d) => name === d || name.endsWith(`.${d}`));
    const pattern = idp ? `*.${idp}` : name;
    if (pattern && !out.includes(pattern)) out.push(pattern);
  }
  return out;
}

function findIn<T>(e: unknown, cls: abstract new (...a: never[]) => T): T | undefined {
  let cur: unknown = e;
  for (let i = 0; i < 5 && cur; i++) {
    if (cur instanceof cls) return cur;
    cur = (cur as { cause?: unknown }).cause;
  }
  return undefined;
}

export interface InterceptionFinding {
  host: string;
  what: string;
  issuer: string;
  chain: PresentedCertificate[];
  exempt: string[];
  route: string | undefined;
  code: string;
}

export function issuerName(chain: PresentedCertificate[]): string {
  const leaf = chain[0];
  if (!leaf) return 'an unknown issuer';
  const top = chain[chain.length - 1]!;
  const leafIssuer = leaf.issuerCN || leaf.issuer;
  const root = top.issuerCN || top.issuer;
  return root && root !== leafIssuer ? `${leafIssuer} (under ${root})` : leafIssuer;
}

/** AgentErrors for failures found on a route; undefined when `e` is not a route or TLS failure. */
export function diagnoseRouteFailure(
  e: unknown,
  ctx: { what: string; host: string; decision?: RouteDecision | undefined; exemptHosts?: readonly string[]; anchors: string },
): { error: AgentError; interception?: InterceptionFinding } | undefined {
  const via = ctx.decision ? ` (route chosen by ${ctx.decision.rule})` : '';
  const tls = findIn(e, PresentedChainError);
  if (tls) {
    const code = tls.code ?? 'TLS';
    if (UNKNOWN_ISSUER.has(code)) {
      const issuer = issuerName(tls.presented);
      const exempt = exemptPatterns(ctx.host, ctx.exemptHosts);
      const finding: InterceptionFinding = { host: ctx.host, what: ctx.what, issuer, chain: tls.presented, exempt, route: ctx.decision?.rule, code };
      return {
        interception: finding,
        error: new AgentError('bad-answer', 'TLS_INTERCEPTED',
          `A TLS-intercepting proxy or security product sits between this device and ${ctx.host} (${ctx.what}): the certificate presented for ${ctx.host} could not be verified (${code}); it is issued by "${issuer}", which is not among the trust anchors (${ctx.anchors})${via}. Nothing was changed on this device.`,
          `Exempt ${exempt.join(', ')} from TLS inspection on the proxy or security product that inspects TLS here: mutual TLS to the identity provider cannot work through inspection. If nothing inspects TLS on this network, check the trust anchors (tlsCaFile) and the system clock.`,
          { cause: e }),
      };
    }
    const issuer = issuerName(tls.presented);
    return {
      error: new AgentError('bad-answer', 'TLS_UNTRUSTED',
        `The TLS certificate presented for ${ctx.host} (${ctx.what}) could not be verified (${code}; issued by "${issuer}")${via}.`,
        'Check the system clock and the server\'s certificate; if a proxy or security product inspects TLS on this network, exempt the identity provider\'s hosts from inspection.',
        { cause: e }),
    };
  }
  const auth = findIn(e, ProxyAuthError);
  if (auth) {
    const p = proxyKey(auth.proxy);
    if (auth.reason === 'no-credentials') {
      return {
        error: new AgentError('config', 'PROXY_AUTH_REQUIRED',
          `The proxy ${p} requires authentication (${auth.schemes.join(', ') || 'no scheme offered'}) to reach ${ctx.what} at ${ctx.host}, and no proxy credentials are configured${via}.`,
          auth.schemes.some((s) => /^basic$/i.test(s))
            ? `Give the proxy's user name and password in the proxy URL: HttpProxy=http://user:password@${p} (or HTTPS_PROXY); the password is never logged.`
            : `The proxy offers only ${auth.schemes.join(', ')}; the agent answers Basic and Negotiate (Kerberos). Ask the network admin to enable one of them for this device.`,
          { cause: e }),
      };
    }
    return {
      error: new AgentError('rejected', 'PROXY_AUTH_FAILED',
        `The proxy ${p} refused this device's credentials for ${ctx.what} at ${ctx.host}: ${auth.message}${via}.`,
        auth.reason === 'negotiate-failed'
          ? 'Sign in to the domain (klist shows a ticket) so that Kerberos can answer the proxy, or give Basic credentials in HttpProxy=http://user:password@host:port.'
          : 'Check the proxy user name and password (HttpProxy=http://user:password@host:port), or the Kerberos ticket (klist).',
        { cause: e }),
    };
  }
  const refused = findIn(e, ProxyRefusedError);
  if (refused) {
    const retry = refused.status >= 500;
    return {
      error: new AgentError(retry ? 'retry-later' : 'rejected', retry ? 'PROXY_UPSTREAM_FAILED' : 'PROXY_REFUSED',
        `The proxy ${proxyKey(refused.proxy)} could not connect this device to ${ctx.what} at ${refused.target} (HTTP ${refused.status}${refused.detail ? `, ${refused.detail}` : ''})${via}.`,
        retry
          ? `The proxy could not reach ${refused.target}: the agent tries again later; if it persists, ask the network admin whether the proxy may reach it, or route it DIRECT in the PAC file.`
          : `Ask the network admin to allow CONNECT to ${refused.target} on the proxy, or route it DIRECT in the PAC file.`,
        { cause: e }),
    };
  }
  const unreachable = findIn(e, ProxyUnreachableError);
  if (unreachable) {
    return {
      error: new AgentError('retry-later', unreachable.silent ? 'PROXY_NO_ANSWER' : 'PROXY_UNREACHABLE',
        `Cannot reach ${ctx.what} at ${ctx.host}: ${unreachable.message}${via}.`,
        'Check the proxy setting (HttpProxy=, the PAC file, HTTPS_PROXY or the system proxy) and the network connection; the agent tries again later.',
        { cause: e }),
    };
  }
  return undefined;
}

/**
 * The signature of an interceptor the machine trusts (enterprises install its CA): TLS verifies, but the mTLS
 * endpoint saw no client certificate although one was presented — something terminated TLS on the way and
 * could not pass the certificate on. `chain` is what was presented for the mTLS host, naming the interceptor.
 */
export function strippedCertificateFinding(ctx: {
  host: string;
  serialNumber: string;
  chain: PresentedCertificate[] | undefined;
  exemptHosts?: readonly string[];
  route?: string | undefined;
}): { error: AgentError; interception: InterceptionFinding } {
  const chain = ctx.chain ?? [];
  const issuer = chain.length ? issuerName(chain) : 'an unknown issuer';
  const exempt = exemptPatterns(ctx.host, ctx.exemptHosts);
  const interception: InterceptionFinding = { host: ctx.host, what: 'the mTLS endpoint', issuer, chain, exempt, route: ctx.route, code: 'CLIENT_CERTIFICATE_STRIPPED' };
  return {
    interception,
    error: new AgentError('bad-answer', 'TLS_INTERCEPTED',
      `A TLS-intercepting proxy or security product sits between this device and ${ctx.host} (the mTLS endpoint): this device presented certificate ${ctx.serialNumber}, but the endpoint saw no client certificate. The certificate presented for ${ctx.host} is issued by "${issuer}"${ctx.route ? ` (route chosen by ${ctx.route})` : ''}; this machine trusts that CA, so the interception is otherwise invisible. The device certificate itself is fine and nothing was changed.`,
      `Exempt ${exempt.join(', ')} from TLS inspection on the proxy or security product whose CA is "${issuer}": mutual TLS (device trust) cannot work through inspection.`),
  };
}
