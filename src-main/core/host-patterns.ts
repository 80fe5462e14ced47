import { isIP } from 'node:net';

/**
 * Host patterns from the server (discovery's mtls.hostPatterns) decide to which sites browsers present the
 * device certificate without asking. A hostile or broken answer must not widen that: each pattern is checked
 * before any browser policy is written (docs/PROTOCOL.md, "Host patterns").
 *
 * Accepted: `https://host[:port][/path]` or `https://[*.]host…`, where host is the org's own domain (or below
 * it) or a domain of the admin's `hostPatternAllowList`. Refused: any other scheme, a `*` anywhere but the
 * leading `[*.]`, a wildcard over a top-level or public-suffix-like domain, and hosts outside those domains.
 */
export interface RefusedPattern {
  pattern: string;
  reason: string;
}

export interface HostPatternCheck {
  accepted: string[];
  refused: RefusedPattern[];
}

const PATTERN = /^https:\/\/(\[\*\.\])?([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::(\d{1,5}))?(\/[^\s*]*)?$/;

/**
 * The org's domain: the last two labels of its host (three when the second-to-last is a short label under a
 * two-letter country code, as in example.co.uk). An IP address or a single-label host is its own domain.
 */
export function orgDomain(orgUrl: string): string {
  const host = new URL(orgUrl).hostname.toLowerCase().replace(/^\[|\]$/g, '');
  if (isIP(host) || !host.includes('.')) return host;
  const labels = host.split('.');
  const take = labels.length >= 3 && labels.at(-1)!.length === 2 && labels.at(-2)!.length <= 3 ? 3 : 2;
  return labels.slice(-take).join('.');
}

function within(host: string, domain: string): boolean {
  return host === domain || host.endsWith(`.${domain}`);
}

export function checkHostPatterns(patterns: string[], opts: { orgUrl: string; allowList?: string[] }): HostPatternCheck {
  const domains = [orgDomain(opts.orgUrl), ...(opts.allowList ?? []).map((d) => d.toLowerCase().replace(/^(\[\*\.\]|\*\.)/, ''))];
  const accepted: string[] = [];
  const refused: RefusedPattern[] = [];
  for (const pattern of patterns) {
    const why = problem(pattern, domains);
    if (why) refused.push({ pattern, reason: why });
    else accepted.push(pattern);
  }
  return { accepted, refused };
}

function problem(pattern: string, domains: string[]): string | undefined {
  const p = pattern.trim();
  if (!/^https:\/\//i.test(p)) return 'not an https:// pattern (the certificate is only ever offered over https)';
  const m = PATTERN.exec(p);
  if (!m) return p.includes('*') ? 'a bare wildcard (only a leading [*.] before a domain is allowed)' : 'not a valid https://host pattern';
  const wildcard = Boolean(m[1]);
  const host = m[2]!.toLowerCase().replace(/^\[|\]$/g, '');
  if (m[3] && Number(m[3]) > 65535) return 'not a valid port';
  if (wildcard && (isIP(host) || host.split('.').length < 2)) return `a wildcard over a whole top-level domain or address ([*.]${host})`;
  if (!domains.some((d) => within(host, d))) return `the host ${host} is outside the org's domain (${domains[0]}) and not in hostPatternAllowList`;
  return undefined;
}
