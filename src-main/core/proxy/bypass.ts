import net from 'node:net';

/**
 * Whether a host matches a bypass list (NO_PROXY, GNOME ignore-hosts, KDE NoProxyFor, Windows
 * ProxyOverride, macOS ExceptionsList). Understood entries: `*`; a domain (`corp.example`,
 * `.corp.example`, `*.corp.example`: the domain and its subdomains); `host:port`; an IP address; a CIDR
 * block (`10.0.0.0/8`); `<local>` (host names without a dot, Windows).
 * Loopback is not special: it is bypassed only when the list names it (see README, "Proxy and PAC").
 */
export function bypasses(hostname: string, port: string, entries: readonly string[]): string | undefined {
  const host = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  for (const raw of entries) {
    const entry = raw.trim().toLowerCase();
    if (!entry) continue;
    if (entry === '*') return raw;
    if (entry === '<local>') {
      if (!host.includes('.') && !net.isIP(host)) return raw;
      continue;
    }
    if (entry.includes('/')) {
      if (inCidr(host, entry)) return raw;
      continue;
    }
    let pattern = entry;
    let entryPort: string | undefined;
    const m = /^(\[[^\]]+\]|[^:]+):(\d+)$/.exec(entry);
    if (m && !net.isIPv6(entry)) {
      pattern = m[1]!;
      entryPort = m[2];
    }
    if (entryPort && entryPort !== port) continue;
    pattern = pattern.replace(/^\[|\]$/g, '');
    if (net.isIP(pattern)) {
      if (pattern === host) return raw;
      continue;
    }
    const domain = pattern.replace(/^\*?\./, '');
    if (host === domain || host.endsWith(`.${domain}`)) return raw;
  }
  return undefined;
}

function inCidr(host: string, cidr: string): boolean {
  const [base, bitsText] = cidr.split('/');
  const family = net.isIP(host);
  if (!base || !bitsText || !family || net.isIP(base) !== family) return false;
  const bits = Number(bitsText);
  const list = new net.BlockList();
  try {
    list.addSubnet(base, bits, family === 6 ? 'ipv6' : 'ipv4');
  } catch {
    return false;
  }
  return list.check(host, family === 6 ? 'ipv6' : 'ipv4');
}
