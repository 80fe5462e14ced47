import { createRequire } from 'node:module';

/**
 * The registrable domain of a host name by the Public Suffix List (its ICANN and private sections), or null when
 * the name is itself a public suffix. tldts (the list, ~150 KiB of code) is loaded on the first call, not with its
 * importers: `status` and most passes never ask, and compiling it was about a tenth of `status`'s start-up.
 */
export function registrableDomain(host: string): string | null {
  tldts ??= createRequire(import.meta.url)('tldts') as typeof import('tldts');
  return tldts.getDomain(host, { allowPrivateDomains: true });
}

let tldts: typeof import('tldts') | undefined;
