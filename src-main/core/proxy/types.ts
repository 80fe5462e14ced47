/** One way to reach a server: straight, or through an HTTP(S) proxy (CONNECT tunnel for https URLs). */
export type Route = { kind: 'direct' } | { kind: 'proxy'; proxy: URL };

/** Which rule of the documented precedence decided, for `proxy-check` and `--debug`. */
export type RuleSource = 'explicit' | 'pac' | 'env' | 'os' | 'none';

export interface RouteDecision {
  url: string;
  source: RuleSource;
  /** In words: "HttpProxy= (explicit)", "PAC http://…/proxy.pac returned \"PROXY a:3128; DIRECT\"", "NO_PROXY entry .corp". */
  rule: string;
  /** In the order to try them; a proxy that cannot be reached falls through to the next. */
  routes: Route[];
}

export interface ProxyCredentials {
  user: string;
  password: string;
}

/** `host:port` of a proxy URL, the key for credentials and the failed-proxy memory. */
export function proxyKey(u: URL): string {
  return `${u.hostname}:${u.port || (u.protocol === 'https:' ? '443' : '80')}`;
}

export function describeRoute(r: Route): string {
  return r.kind === 'direct' ? 'DIRECT' : `PROXY ${r.proxy.protocol === 'https:' ? 'https://' : ''}${proxyKey(r.proxy)}`;
}

/** A proxy URL without its user-info: credentials never travel in a Route, a rule text or a log line. */
export function stripCredentials(u: URL): { url: URL; credentials?: ProxyCredentials } {
  const url = new URL(u.href);
  let credentials: ProxyCredentials | undefined;
  if (url.username || url.password) credentials = { user: decodeURIComponent(url.username), password: decodeURIComponent(url.password) };
  url.username = '';
  url.password = '';
  return credentials ? { url, credentials } : { url };
}
