import { isIP } from 'node:net';
import { registrableDomain } from '../../base/public-suffix.js';
import { requireOrgUrl, type LoadedConfig } from '../config.js';

/**
 * Host patterns from the server (discovery's mtls.hostPatterns) decide to which sites browsers present the
 * device certificate without asking. A hostile or broken answer must not widen that: each pattern is checked
 * before any browser policy is written (docs/PROTOCOL.md, "Host patterns").
 *
 * Accepted: `https://host[:port][/path]` or `https://[*.]host…`, where host is inside the org's registrable domain
 * (by the Public Suffix List, its ICANN and private sections: tldts) or a domain of the admin's
 * `hostPatternAllowList`. Refused: any other scheme, a `*` anywhere but the leading `[*.]`, a wildcard over a
 * top-level domain or an address, a host that is itself a public suffix (`github.io`, `s3.amazonaws.com`,
 * `co.uk`: every tenant there is a stranger) unless that very suffix is allow-listed in managed configuration,
 * and hosts outside those domains.
 */
export interface RefusedPattern {
  pattern: string;
  reason: string;
}

export interface HostPatternCheck {
  accepted: string[];
  refused: RefusedPattern[];
}

export interface HostPatternOptions {
  orgUrl: string;
  allowList?: string[];
  /** hostPatternAllowList came from managed configuration: only an admin may admit a public suffix. */
  allowListManaged?: boolean;
}

const PATTERN = /^https:\/\/(\[\*\.\])?([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::(\d{1,5}))?(\/[^\s*]*)?$/;

const bare = (host: string) => host.toLowerCase().replace(/^\[|\]$/g, '').replace(/\.$/, '');

/** A name of two or more labels that the Public Suffix List lists as a suffix (nobody's own domain). */
export function isPublicSuffix(host: string): boolean {
  const h = bare(host);
  return !isIP(h) && h.includes('.') && registrableDomain(h) === null;
}

/**
 * The org's domain: the registrable domain of its host by the Public Suffix List (acme.okta.com → okta.com,
 * acme.github.io → acme.github.io, id.acme.co.uk → acme.co.uk). An IP address, a single-label host (localhost)
 * or a host that is itself a suffix is its own domain.
 */
export function orgDomain(orgUrl: string): string {
  const host = bare(new URL(orgUrl).hostname);
  if (isIP(host) || !host.includes('.')) return host;
  return registrableDomain(host) ?? host;
}

function within(host: string, domain: string): boolean {
  return host === domain || host.endsWith(`.${domain}`);
}

export function checkHostPatterns(patterns: string[], opts: HostPatternOptions): HostPatternCheck {
  const allow = (opts.allowList ?? []).map((d) => bare(d.replace(/^(\[\*\.\]|\*\.)/, '')));
  const managed = opts.allowListManaged === true;
  // A suffix in an allow list the user (not an admin) wrote admits nothing: it would cover every tenant there.
  const domains = [orgDomain(opts.orgUrl), ...allow.filter((d) => managed || !isPublicSuffix(d))];
  const accepted: string[] = [];
  const refused: RefusedPattern[] = [];
  for (const pattern of patterns) {
    const why = problem(pattern, domains, managed ? allow : []);
    if (why) refused.push({ pattern, reason: why });
    else accepted.push(pattern);
  }
  return { accepted, refused };
}

function problem(pattern: string, domains: string[], adminSuffixes: string[]): string | undefined {
  const p = pattern.trim();
  if (!/^https:\/\//i.test(p)) return 'not an https:// pattern (the certificate is only ever offered over https)';
  const m = PATTERN.exec(p);
  if (!m) return p.includes('*') ? 'a bare wildcard (only a leading [*.] before a domain is allowed)' : 'not a valid https://host pattern';
  const wildcard = Boolean(m[1]);
  const host = bare(m[2]!);
  if (m[3] && Number(m[3]) > 65535) return 'not a valid port';
  if (wildcard && (isIP(host) || host.split('.').length < 2)) return `a wildcard over a whole top-level domain or address ([*.]${host})`;
  if (isPublicSuffix(host)) {
    if (adminSuffixes.includes(host)) return undefined;
    return `${host} is a public suffix (Public Suffix List): its sites belong to many unrelated owners; only an admin can allow it, by listing "${host}" in hostPatternAllowList in the managed configuration`;
  }
  if (!domains.some((d) => within(host, d))) return `the host ${host} is outside the org's domain (${domains[0]}) and not in hostPatternAllowList`;
  return undefined;
}

/** The options a run and `browser-setup` check the org's patterns with: the allow list and whether an admin set it. */
export function hostPatternOptions(loaded: LoadedConfig): HostPatternOptions {
  return { orgUrl: requireOrgUrl(loaded.config), allowList: loaded.config.hostPatternAllowList, allowListManaged: loaded.sources.hostPatternAllowList === 'managed' };
}
