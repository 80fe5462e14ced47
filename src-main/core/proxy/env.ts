import { redactUrl } from '../../base/safe-text.js';
import { AgentError } from '../../base/errors.js';

/** The conventional proxy variables; the lower-case name wins when both are set (curl's rule). */
export interface EnvProxy {
  https?: { url: URL; variable: string };
  http?: { url: URL; variable: string };
  noProxy: string[];
}

function pick(env: NodeJS.ProcessEnv, names: string[]): { value: string; variable: string } | undefined {
  for (const n of names) {
    const v = env[n];
    if (v !== undefined && v.trim() !== '') return { value: v.trim(), variable: n };
  }
  return undefined;
}

/** Parses a proxy given as `host:port` or `http(s)://[user:pass@]host:port`; refuses anything else. */
export function parseProxyUrl(value: string, origin: string): URL {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(value) ? value : `http://${value}`;
  let u: URL;
  try {
    u = new URL(withScheme);
  } catch {
    throw new AgentError('config', 'PROXY_INVALID', `The proxy ${JSON.stringify(redactUserInfo(value))} in ${origin} is not a valid URL.`,
      'Give the proxy as http://host:port (or http://user:password@host:port).');
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    throw new AgentError('config', 'PROXY_UNSUPPORTED', `The proxy ${redactUserInfo(value)} in ${origin} uses ${u.protocol.replace(':', '')}, which the agent does not support.`,
      'Use an HTTP or HTTPS proxy (SOCKS is not supported).');
  }
  return u;
}

/** A proxy URL as it may be shown: the one URL redaction (base/safe-text.ts), from parsing. */
export function redactUserInfo(s: string): string {
  return redactUrl(s);
}

export function envProxy(env: NodeJS.ProcessEnv): EnvProxy {
  const out: EnvProxy = { noProxy: [] };
  const https = pick(env, ['https_proxy', 'HTTPS_PROXY']);
  if (https) out.https = { url: parseProxyUrl(https.value, `the environment (${https.variable})`), variable: https.variable };
  // HTTP_PROXY in upper case can be set by a web server from a request header (httpoxy); the agent is not a
  // CGI program, so it is honoured, as curl does only for the lower-case name when it runs as CGI.
  const http = pick(env, ['http_proxy', 'HTTP_PROXY']);
  if (http) out.http = { url: parseProxyUrl(http.value, `the environment (${http.variable})`), variable: http.variable };
  const no = pick(env, ['no_proxy', 'NO_PROXY']);
  if (no) out.noProxy = no.value.split(/[,\s]+/).filter(Boolean);
  return out;
}
