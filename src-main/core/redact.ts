/** Tokens and keys never reach a log unless the user asked to see them (`--debug --show-tokens`). */
const JWT = /\beyJ[\w-]{5,}\.[\w-]{5,}\.[\w-]{5,}\b/g;
const NEGOTIATE = /\b(Negotiate|LabSignIn|Bearer|Basic|SSWS)\s+[A-Za-z0-9+/=._~-]{8,}/g;
/** A password in a URL's user-info (a proxy given as http://user:password@host:port). */
const URL_PASSWORD = /\b([a-z][a-z0-9+.-]*:\/\/[^\s:/@]*):[^\s@/]*@/gi;
const PRIVATE_KEY = /-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----/g;

export function redactToken(token: string): string {
  return `${token.slice(0, 6)}…(redacted, ${token.length} chars)`;
}

export function redact(text: string): string {
  return text
    .replace(PRIVATE_KEY, '[private key redacted]')
    .replace(NEGOTIATE, (_m, scheme: string) => `${scheme} [redacted]`)
    .replace(JWT, (m) => redactToken(m))
    .replace(URL_PASSWORD, '$1:[redacted]@');
}
