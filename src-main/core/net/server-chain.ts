/**
 * The org publishes the CAs that issue its own TLS certificates (discovery `serverTls`, PROTOCOL §1). A chain
 * presented for the org host or the mTLS host that contains none of them is TLS interception — also by a CA this
 * machine trusts (enterprises install their inspection CA), which verification alone cannot see. This works on
 * every route (direct, explicit proxy, PAC, CONNECT) because it looks at the chain the agent's own TLS received,
 * and it needs no client certificate (the device key may be in a token only the browsers can present).
 */
import { AgentError } from '../../base/errors.js';
import type { HttpClient } from './http.js';
import type { OrgConfig } from '../enrollment/protocol.js';
import type { RememberedPins } from '../state/state.js';
import { exemptPatterns, issuerName, type InterceptionFinding } from '../proxy/diagnose.js';
import type { PresentedCertificate } from '../proxy/connect.js';

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
  /** Where the pins come from, in words (default: the org's published TLS issuers). */
  basis?: string | undefined;
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
      `A TLS-intercepting proxy or security product sits between this device and ${ctx.host} (${ctx.what}): the certificate presented for ${ctx.host} is issued by "${issuer}" (${presentingCa}), not by ${ctx.basis ?? 'a CA the org publishes for its TLS servers'}${ctx.route ? ` (route chosen by ${ctx.route})` : ''}. This machine trusts that CA, so TLS succeeds, but mutual TLS (the device certificate) cannot pass through it: sign-ins that need device trust fail. The device certificate itself is fine and nothing was changed.`,
      `Exempt ${exempt.join(', ')} from TLS inspection on the proxy or security product whose CA is "${issuer}": mutual TLS (device trust) cannot work through inspection.`),
  };
}

/**
 * Compares the chains this client saw for the org host and the mTLS host with the org's published TLS issuers.
 * With `reach`, the mTLS host is asked once without a client certificate so that its chain is seen at all. Each
 * mismatch is recorded once (TLS_INTERCEPTED) and returned, the mTLS host first.
 */
export async function checkPublishedChains(http: HttpClient, org: { mtlsUrl: string; pins: readonly string[] | PinSet | undefined }, orgUrl: string, opts: { reach?: boolean; exemptHosts?: readonly string[] } = {}): Promise<ChainMismatch[]> {
  const set = org.pins && !Array.isArray(org.pins) ? org.pins as PinSet : undefined;
  const pins = set ? set.pins : (org.pins as readonly string[] | undefined) ?? [];
  const basis = set ? pinBasis(set) : undefined;
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
    if (set?.hosts && !set.hosts.includes(host)) continue;
    const rule = await http.decide(url).then((d) => d.rule, () => undefined);
    const found = unpublishedChainFinding({ host, what, chain: http.presentedChain(host), pins, exemptHosts, route: rule, basis });
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

/**
 * Server TLS issuer pins by where they come from: the org's discovery answer (serverTls), the managed configuration
 * (serverTlsPins: an org that publishes none, pinned by its admin), or remembered (pins the org published before and
 * withdrew; or, on first use — TOFU — the CAs of the chain each org host presented the first time this device saw
 * it). Only the lab publishes pins, and never the SCEP backend: without the other sources a trusted interceptor
 * would go unseen wherever the mTLS check itself cannot run. TOFU trusts the first pass: an interceptor already in
 * place then is learnt (the mTLS check, which presents the key, still sees it strip the certificate).
 */
export type PinSource = 'published' | 'managed' | 'formerly-published' | 'first-use';
export interface PinSet {
  pins: string[];
  source: PinSource;
  /** When they were remembered. */
  since?: string | undefined;
  /** First use: the hosts whose chains were learnt (another host is learnt, not judged, the first time). */
  hosts?: string[] | undefined;
}


export function pinBasis(set: PinSet): string {
  if (set.source === 'managed') return 'a CA the managed configuration pins for the org (serverTlsPins)';
  if (set.source === 'first-use') return `the CA this device saw for that host on first use (${set.since ?? 'an earlier pass'})`;
  if (set.source === 'formerly-published') return `a CA the org published for its TLS servers until ${set.since ?? 'recently'}`;
  return 'a CA the org publishes for its TLS servers';
}

/** The pins in force: published, else managed, else remembered; undefined when there are none yet. */
export function effectivePins(published: readonly string[], managed: readonly string[], remembered: RememberedPins | undefined): PinSet | undefined {
  if (published.length) return { pins: [...published], source: 'published' };
  if (managed.length) return { pins: [...managed], source: 'managed' };
  if (!remembered) return undefined;
  return remembered.source === 'published' ? { pins: remembered.pins, source: 'formerly-published', since: remembered.at }
    : { pins: remembered.pins, source: 'first-use', since: remembered.at, hosts: remembered.hosts };
}

/** The CA certificates of a chain (leaf excluded: it is renewed often), as pins. */
export function chainPins(chain: readonly PresentedCertificate[] | undefined): string[] {
  return [...new Set((chain ?? []).slice(1).map((c) => c.spkiSha256).filter((x): x is string => Boolean(x)))];
}

/**
 * A change of the pins themselves is a finding, never silence: pins the org published before and no longer
 * publishes (which is also what a rewriting interceptor would do), or published pins sharing nothing with the
 * ones remembered.
 */
export function pinChangeFinding(published: readonly string[], remembered: RememberedPins | undefined, orgHost: string): AgentError | undefined {
  if (!remembered || remembered.source !== 'published') return undefined;
  if (!published.length) {
    return new AgentError('bad-answer', 'SERVER_PINS_WITHDRAWN',
      `The org at ${orgHost} published the CAs of its TLS servers (discovery serverTls) on ${remembered.at} and no longer does. Either the org changed this, or something between this device and the org rewrites its answers; the pins remembered then are still checked.`,
      'Ask the org admin whether serverTls was withdrawn on purpose; if so, an admin puts the current pins in the managed configuration (serverTlsPins). Otherwise check this network for TLS inspection.');
  }
  if (!published.some((p) => remembered.pins.includes(p))) {
    return new AgentError('bad-answer', 'SERVER_PINS_CHANGED',
      `The org at ${orgHost} now publishes other CAs for its TLS servers (discovery serverTls) than those remembered on ${remembered.at}: none is the same. The new ones are checked from now on.`,
      'Nothing to do if the org replaced the CA of its TLS servers; otherwise ask the org admin and check this network for TLS inspection.');
  }
  return undefined;
}

/**
 * What to remember after a pass: the published pins when there are some; pins the org withdrew stay as they were;
 * otherwise the CAs of each host's chain the first time the host is seen (first use).
 */
export function pinsToRemember(published: readonly string[], remembered: RememberedPins | undefined, chains: Record<string, readonly PresentedCertificate[] | undefined>, now: Date): RememberedPins | undefined {
  if (published.length) {
    const same = remembered?.source === 'published' && remembered.pins.length === published.length && published.every((p) => remembered.pins.includes(p));
    return same ? undefined : { pins: published.slice(0, 40), source: 'published', at: now.toISOString(), hosts: [] };
  }
  if (remembered?.source === 'published') return undefined;
  const pins = new Set(remembered?.pins ?? []);
  const hosts = [...(remembered?.hosts ?? [])];
  for (const [host, chain] of Object.entries(chains)) {
    const learnt = chainPins(chain);
    if (hosts.includes(host) || !learnt.length || hosts.length >= 10) continue;
    hosts.push(host);
    for (const p of learnt) pins.add(p);
  }
  if (hosts.length === (remembered?.hosts.length ?? 0)) return undefined;
  return { pins: [...pins].slice(0, 40), source: 'first-use', at: remembered?.at ?? now.toISOString(), hosts };
}

/** The pins in force for an org: its published ones, else the managed serverTlsPins, else those remembered in state. */
export function pinsInForce(org: Pick<OrgConfig, 'serverTls'>, config: { serverTlsPins: string[] }, managed: boolean, remembered: RememberedPins | undefined): PinSet | undefined {
  return effectivePins(publishedPins(org), managed ? config.serverTlsPins : [], remembered);
}

/** unpublishedChainFinding against a pin set (a host not learnt yet on first use is not judged). */
export function chainFinding(ctx: { host: string; what: string; chain: PresentedCertificate[] | undefined; set: PinSet | undefined; exemptHosts?: readonly string[]; route?: string | undefined }): ChainMismatch | undefined {
  if (!ctx.set || (ctx.set.hosts && !ctx.set.hosts.includes(ctx.host))) return undefined;
  return unpublishedChainFinding({ host: ctx.host, what: ctx.what, chain: ctx.chain, pins: ctx.set.pins, exemptHosts: ctx.exemptHosts, route: ctx.route, basis: pinBasis(ctx.set) });
}
