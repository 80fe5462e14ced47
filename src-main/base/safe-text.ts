/**
 * The one output-safety layer. Every sink (terminal, --json, state.json, the event log, platform logs, the
 * support bundle, IPC answers and so the dashboard) passes what it writes through `safeText`/`safeJson`;
 * server-provided text is also passed through `serverText` where it enters (answers, error bodies).
 *
 * It does three things:
 *  - control characters: ANSI CSI/OSC sequences are removed, every other C0/C1 control (BEL, ESC, CR…) and the
 *    bidirectional overrides are shown as a visible escape (`\x07`), so nothing a server sends can move the
 *    cursor, retitle a window, ring a bell or reorder text on a terminal or in a log viewer;
 *  - length: server text is capped (SERVER_TEXT_MAX characters), any string a sink writes at SINK_TEXT_MAX;
 *  - secrets: redacted by shape (JWTs, bearer/SSWS/Basic/Negotiate tokens, URL passwords, PEM private keys) and
 *    by value (every value registered with `registerSecret`: the configuration marks its secrets, the keyring
 *    registers the admin token it hands out).
 * It lives in base/ so the platform layer's sinks use the same function as core's.
 */

export const SERVER_TEXT_MAX = 2000;
export const SINK_TEXT_MAX = 8000;

const JWT = /\beyJ[\w-]{5,}\.[\w-]{5,}\.[\w-]{5,}\b/g;
const AUTH_SCHEME = /\b(Negotiate|LabSignIn|Bearer|Basic|SSWS|NTLM|Digest)\s+[A-Za-z0-9+/=._~-]{8,}/g;
/** Header-style secrets: `authorization: …`, `"token": "…"` — whatever the scheme. */
const AUTH_HEADER = /\b((?:proxy-)?authorization\s*[:=]\s*)(?!\[redacted\]|(?:Negotiate|LabSignIn|Bearer|Basic|SSWS|NTLM|Digest)\b)[^\s,;"']{8,}/gi;
/** A password in a URL's user-info (a proxy given as http://user:password@host:port). */
const URL_PASSWORD = /\b([a-z][a-z0-9+.-]*:\/\/[^\s:/@"']*):[^\s@/"']*@/gi;
const PRIVATE_KEY = /-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)/g;
/** Okta-style API tokens (00 + 40 characters) seen without their SSWS scheme. */
const API_TOKEN = /\b00[A-Za-z0-9_-]{40}\b/g;

/* eslint-disable no-control-regex */
const CSI = /\x1b\[[0-?]*[ -/]*[@-~]|\x9b[0-?]*[ -/]*[@-~]/g;
const OSC = /\x1b\][^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?|\x9d[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?/g;
const OTHER_ESC = /\x1b[@-Z\\-_]|\x1b[ -/]+[0-~]/g;
const CONTROLS_MULTILINE = /[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\u200e\u200f]/g;
const CONTROLS_ONE_LINE = /[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\u200e\u200f]/g;
/* eslint-enable no-control-regex */

const secretValues = new Set<string>();

/**
 * Registers a value that must never appear in any sink (the SCEP challenge, a proxy password, an admin token).
 * Values shorter than SECRET_MIN_LENGTH are not registered: replacing them would garble ordinary text (and JSON).
 */
export const SECRET_MIN_LENGTH = 6;

export function registerSecret(value: string | undefined | null): void {
  if (!value || value.length < SECRET_MIN_LENGTH) return;
  secretValues.add(value);
  // The same secret as it appears inside a URL or a form body, and inside JSON text (a `"` or `\` escaped).
  const encoded = encodeURIComponent(value);
  if (encoded !== value) secretValues.add(encoded);
  const inJson = JSON.stringify(value).slice(1, -1);
  if (inJson !== value) secretValues.add(inJson);
}

const HAS_SCHEME = /^[a-z][a-z0-9+.-]*:\/\//i;

/**
 * A URL as the agent accepts it: with a scheme, or a proxy's `[user:pass@]host:port` without one (read as http).
 * Parsed by the WHATWG parser, so a password holding `@`, `"` or `:` is found whole (the last `@` ends it).
 */
function parseLooseUrl(value: string): { url: URL; scheme: boolean } | undefined {
  const v = value.trim();
  const scheme = HAS_SCHEME.test(v);
  try {
    return { url: new URL(scheme ? v : `http://${v}`), scheme };
  } catch {
    return undefined;
  }
}

/** The password in a URL's user-info (decoded), with or without a scheme; undefined when there is none. */
export function urlPassword(value: string | undefined | null): string | undefined {
  if (!value) return undefined;
  const p = parseLooseUrl(value);
  if (!p || !p.url.password) return undefined;
  try {
    return decodeURIComponent(p.url.password);
  } catch {
    return p.url.password;
  }
}

/**
 * The one redaction of a URL (a proxy, a PAC location): its user-info password replaced, from parsing, with or
 * without a scheme. Every sink that shows a configured or environment URL shows this form; text that is not a
 * URL is left to `redact`.
 */
export function redactUrl(value: string): string {
  const p = parseLooseUrl(value);
  if (!p) {
    // Not a URL the parser takes: still nothing before its last `@` is shown.
    const at = value.lastIndexOf('@');
    if (at < 0) return value;
    const scheme = /^[a-z][a-z0-9+.-]*:\/\//i.exec(value)?.[0] ?? '';
    return `${scheme}[redacted]@${value.slice(at + 1)}`;
  }
  if (!p.url.password && !p.url.username) return value;
  const u = p.url;
  const user = u.username ? `${u.username}:` : '';
  const info = u.password ? `${user}[redacted]@` : `${u.username}@`;
  const tail = `${u.pathname === '/' ? '' : u.pathname}${u.search}${u.hash}`;
  return `${p.scheme ? `${u.protocol}//` : ''}${info}${u.host}${tail}`;
}

/** For tests: forget every registered value. */
export function clearSecrets(): void {
  secretValues.clear();
}

export function redactToken(token: string): string {
  return `${token.slice(0, 6)}…(redacted, ${token.length} chars)`;
}

/** Secrets by shape and by registered value; nothing else changes. */
export function redact(text: string): string {
  let out = text
    .replace(PRIVATE_KEY, '[private key redacted]')
    .replace(AUTH_SCHEME, (_m, scheme: string) => `${scheme} [redacted]`)
    .replace(AUTH_HEADER, '$1[redacted]')
    .replace(JWT, (m) => redactToken(m))
    // Our own remedies show the form `http://user:password@host`: that placeholder is not a secret.
    .replace(URL_PASSWORD, (m, prefix: string) => (/:\/\/user:password@$/i.test(m) ? m : `${prefix}:[redacted]@`))
    .replace(API_TOKEN, '[token redacted]');
  if (secretValues.size) {
    // Longest first, so a value that contains another is replaced whole.
    for (const s of [...secretValues].sort((a, b) => b.length - a.length)) if (out.includes(s)) out = out.split(s).join('[secret redacted]');
  }
  return out;
}

function escapeControl(c: string): string {
  const code = c.charCodeAt(0);
  return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `<U+${code.toString(16).toUpperCase().padStart(4, '0')}>`;
}

/** Removes terminal escape sequences and shows every other control character as a visible escape. */
export function stripControls(text: string, opts: { multiline?: boolean } = {}): string {
  const out = text.replace(OSC, '').replace(CSI, '').replace(OTHER_ESC, '');
  if (opts.multiline) return out.replace(/\r\n/g, '\n').replace(CONTROLS_MULTILINE, escapeControl);
  return out.replace(/\r?\n|\t/g, ' ').replace(CONTROLS_ONE_LINE, escapeControl);
}

export function capText(text: string, max: number): string {
  if (text.length <= max) return text;
  return `${text.slice(0, max)}… [${text.length - max} more characters cut]`;
}

export interface SafeTextOptions {
  /** Longest string written (default SINK_TEXT_MAX); 0 for no cap (whole command output). */
  max?: number;
  /** Keep line breaks and tabs (reports, help text); otherwise one line. */
  multiline?: boolean;
  /** Only for `--debug --show-tokens`: controls are still removed, secrets are left. */
  keepSecrets?: boolean;
}

/** What every sink calls on every string it writes. */
export function safeText(text: string, opts: SafeTextOptions = {}): string {
  const max = opts.max ?? SINK_TEXT_MAX;
  const stripped = stripControls(String(text), { multiline: opts.multiline ?? false });
  const clean = opts.keepSecrets ? stripped : redact(stripped);
  return max > 0 ? capText(clean, max) : clean;
}

/** Text from a server (an error summary, a body excerpt), where it enters: one line, capped, cleaned, redacted. */
export function serverText(text: unknown, max = SERVER_TEXT_MAX): string {
  return safeText(typeof text === 'string' ? text : String(text ?? ''), { max, multiline: false });
}

/** `safeText` applied to every string in a JSON-like value (keys included); numbers, booleans and null pass. */
export function safeJson<T>(value: T, opts: SafeTextOptions = {}): T {
  const walk = (v: unknown, depth: number): unknown => {
    if (typeof v === 'string') return safeText(v, { multiline: true, ...opts });
    if (depth > 64 || v === null || typeof v !== 'object') return v;
    if (Array.isArray(v)) return v.map((x) => walk(x, depth + 1));
    if (v instanceof Date) return v;
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
      if (x === undefined) continue;
      out[safeText(k, { max: 200 })] = walk(x, depth + 1);
    }
    return out;
  };
  return walk(value, 0) as T;
}

/** JSON text: a control character escaped as \u001b would come back raw when parsed; it is shown as text instead. */
export function neutralizeJsonControls(s: string): string {
  return s.replace(/(?<=(?:^|[^\\])(?:\\\\)*)\\u(00[01][0-9a-fA-F]|007[fF]|00[89][0-9a-fA-F]|202[a-eA-E]|206[6-9])/g, '\\\\u$1');
}

/** Whether text would pass a sink unchanged (no control character, no known secret): for checks and tests. */
export function hasRawControl(text: string): boolean {
  return /[\x00-\x08\x0b-\x1f\x7f-\x9f]/.test(text.replace(/\r\n/g, '\n'));
}
