/**
 * The org publishes the CAs that issue its own TLS certificates (discovery `serverTls`, PROTOCOL §1). A chain
 * presented for the org host or the mTLS host that contains none of them is TLS interception — also by a CA this
 * machine trusts (enterprises install their inspection CA), which verification alone cannot see. This works on
 * every route (direct, explicit proxy, PAC, CONNECT) because it looks at the chain the agent's own TLS received,
 * and it needs no client certificate (the device key may be in a token only the browsers can present).
 */
import { AgentError } from '../base/errors.js';
import type { HttpClient } from './http.js';
import type { OrgConfig } from './protocol.js';
import { exemptPatterns, issuerName, type InterceptionFinding } from './proxy/diagnose.js';
import type { PresentedCertificate } from './proxy/connect.js';

export interface ChainMismatch {
  host: string;
  what: string;
  error: AgentError;
  interception: InterceptionFinding;
}

/** True when some certificate of `chain` has a published SPKI pin. */
export function chainIsPublished(chain: readonly PresentedCertificate[], pins: readonly string[]): boolean {
  return chain.some((c) => c.spkiSha256 !== undefined && pins.includes(c.spkiSha256));
}

/** The interception finding for a chain with none of the published pins; undefined when it has one (or nothing was seen). */
export function unpublishedChainFinding(ctx: {
  host: string;
  what: string;
  chain: PresentedCertificate[] | undefined;
  pins: readonly string[];
  exemptHosts?: readonly string[];
  route?: string | undefined;
}): ChainMismatch | undefined {
  const chain = ctx.chain ?? [];
  if (!ctx.pins.length || !chain.length || chainIsPublished(chain, ctx.pins)) return undefined;
  const issuer = issuerName(chain);
  const presentingCa = chain[0]!.issuer || issuer;
  const exempt = exemptPatterns(ctx.host, ctx.exemptHosts);
  const interception: InterceptionFinding = { host: ctx.host, what: ctx.what, issuer, chain, exempt, route: ctx.route, code: 'CHAIN_NOT_PUBLISHED' };
  return {
    host: ctx.host,
    what: ctx.what,
    interception,
    error: new AgentError('bad-answer', 'TLS_INTERCEPTED',
      `A TLS-intercepting proxy or security product sits between this device and ${ctx.host} (${ctx.what}): the certificate presented for ${ctx.host} is issued by "${issuer}" (${presentingCa}), not by a CA the org publishes for its TLS servers${ctx.route ? ` (route chosen by ${ctx.route})` : ''}. This machine trusts that CA, so TLS succeeds, but mutual TLS (the device certificate) cannot pass through it: sign-ins that need device trust fail. The device certificate itself is fine and nothing was changed.`,
      `Exempt ${exempt.join(', ')} from TLS inspection on the proxy or security product whose CA is "${issuer}": mutual TLS (device trust) cannot work through inspection.`),
  };
}

/**
 * Compares the chains this client saw for the org host and the mTLS host with the org's published TLS issuers.
 * With `reach`, the mTLS host is asked once without a client certificate so that its chain is seen at all. Each
 * mismatch is recorded once (TLS_INTERCEPTED) and returned, the mTLS host first.
 */
export async function checkPublishedChains(http: HttpClient, org: { mtlsUrl: string; pins: readonly string[] | undefined }, orgUrl: string, opts: { reach?: boolean; exemptHosts?: readonly string[] } = {}): Promise<ChainMismatch[]> {
  const pins = org.pins ?? [];
  if (!pins.length) return [];
  const mtlsHost = new URL(org.mtlsUrl).host;
  const orgHost = new URL(orgUrl).host;
  if (opts.reach && !http.presentedChain(mtlsHost)) {
    // Only the handshake matters; the answer (no certificate presented) and any failure are for other checks.
    await http.send({ url: org.mtlsUrl, what: 'the mTLS endpoint' }).catch(() => undefined);
  }
  const exemptHosts = [...(opts.exemptHosts ?? []), orgHost, mtlsHost];
  const out: ChainMismatch[] = [];
  for (const [host, what, url] of [[mtlsHost, 'the mTLS endpoint', org.mtlsUrl], [orgHost, 'the org', orgUrl]] as const) {
    if (out.some((m) => m.host === host)) continue;
    const rule = await http.decide(url).then((d) => d.rule, () => undefined);
    const found = unpublishedChainFinding({ host, what, chain: http.presentedChain(host), pins, exemptHosts, route: rule });
    if (!found) continue;
    http.noteInterception(found.interception, found.error.message);
    out.push(found);
  }
  return out;
}

/** The published TLS issuer pins of a discovery answer (empty from an org that does not publish them). */
export function publishedPins(org: Pick<OrgConfig, 'serverTls'>): string[] {
  return org.serverTls?.issuerSpkiSha256 ?? [];
}
